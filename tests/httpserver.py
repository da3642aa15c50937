"""A real HTTP server on 127.0.0.1 for download tests, with routes that misbehave on purpose."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server:
    def __init__(self, routes: dict[str, bytes]):
        self.routes = routes
        self.stall_s = 5.0
        self.release = threading.Event()  # /hold/NAME: the first half, then the rest once this is set
        routes_ref, srv = self.routes, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                if path.startswith("/stall/"):
                    time.sleep(srv.stall_s)
                    return
                if path.startswith("/hold/"):
                    body = routes_ref.get("/" + path.split("/", 2)[2])
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    srv.release.wait(30)
                    self.wfile.write(body[len(body) // 2:])
                    return
                if path.startswith("/short/"):
                    body = routes_ref.get("/" + path.split("/", 2)[2])
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                body = routes_ref.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url() -> str:
    """An address on 127.0.0.1 where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/x.txt"
