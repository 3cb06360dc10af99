import psycopg2


def handle(context, payload):
    # No database runs beside the function: connecting must fail cleanly, with psycopg2's error.
    try:
        psycopg2.connect(host="127.0.0.1", port=int(payload.get("port", 1)), dbname="x", connect_timeout=3)
        return {"connected": True}
    except psycopg2.OperationalError as error:
        return {"connected": False, "error": str(error).strip().splitlines()[0], "libpq": psycopg2.__libpq_version__}
