"""Kiln's Python function server: loads handle(context, payload) from the function directory
and serves it over HTTP with the standard library only, so an image needs nothing but python3."""

import importlib.util
import json
import os
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 6 * 1024 * 1024
FUNCTION_DIR = os.environ.get("KILN_FUNCTION_DIR", "/function")
MODULE = os.environ.get("KILN_FUNCTION_MODULE", "handler")
HANDLER = os.environ.get("KILN_FUNCTION_HANDLER", "handle")

_lock = threading.Lock()
_handle = None


def load_handler():
    """Imports the user's module once, on the first call, so a broken module fails requests
    with a clear error instead of keeping the server from starting."""
    global _handle
    with _lock:
        if _handle is None:
            path = os.path.join(FUNCTION_DIR, MODULE + ".py")
            if FUNCTION_DIR not in sys.path:
                sys.path.insert(0, FUNCTION_DIR)
            spec = importlib.util.spec_from_file_location(MODULE, path)
            if spec is None or spec.loader is None:
                raise ImportError("cannot load function module " + path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _handle = getattr(module, HANDLER)
        return _handle


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kiln-python"

    def reply(self, status, body, allow=None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        if allow:
            self.send_header("Allow", allow)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        else:
            self.refuse_method()

    def refuse_method(self):
        # The function answers POST / only; another method there is the wrong method, not a
        # missing page. A body sent along is not read, so the connection cannot be reused.
        self.close_connection = True
        if self.path.split("?", 1)[0] == "/":
            self.reply(405, {"error": "the function answers POST / with a JSON body"}, allow="POST")
        else:
            self.reply(404, {"error": "not found"})

    do_PUT = do_DELETE = do_PATCH = refuse_method

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/":
            self.reply(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.close_connection = True
            self.reply(400, {"error": "bad Content-Length"})
            return
        if length > MAX_BODY:
            # The body is not read, so the connection cannot be reused.
            self.close_connection = True
            self.reply(413, {"error": "body larger than %d bytes" % MAX_BODY})
            return
        try:
            request = json.loads(self.rfile.read(length) or b"null")
            if not isinstance(request, dict):
                raise ValueError("body must be a JSON object with context and payload")
        except ValueError as error:
            self.reply(400, {"error": "bad JSON body: %s" % error})
            return
        try:
            result = load_handler()(request.get("context"), request.get("payload"))
            self.reply(200, result)
        except Exception as error:  # noqa: BLE001 - any handler failure is the caller's 500
            traceback.print_exc(file=sys.stderr)
            self.reply(500, {"error": str(error), "type": type(error).__name__})

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main():
    host = os.environ.get("KILN_LISTEN_HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("kiln function server listening on %s:%d\n" % (host, port))
    sys.stderr.flush()
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
