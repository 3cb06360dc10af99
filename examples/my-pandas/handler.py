import pandas


def handle(context, payload):
    frame = pandas.DataFrame(payload.get("rows", []))
    return {"sum": {k: int(v) for k, v in frame.sum().items()}, "pandas": pandas.__version__}
