"""A stand-in upstream for the edge's tests: answers every request with JSON
describing it (method, path, the headers it arrived with, body size), so a
test sees what the edge forwarded. Standard library only.

Usage: python3 echo_upstream.py PORT [ADDRESS]  (default 127.0.0.1)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = len(self.rfile.read(length)) if length else 0
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body_bytes": received,
                "port": self.connection.getsockname()[1],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # The edge must replace these with its own.
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Powered-By", "echo")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("echo_upstream: " + (format % args) + "\n")


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
