"""A client of the edge: HTTPS to an address and port with a given CA and
server name (SNI and Host), plain HTTP, and bare TLS handshakes with chosen
protocol versions. Standard library only; molecule/edge's tests and
tests/unit/test_edge.py (a local nginx) both use it."""

from __future__ import annotations

import http.client
import socket
import ssl
import warnings
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def header_count(self, name: str) -> int:
        return self._counts.get(name.lower(), 0)

    _counts: dict[str, int]


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ADDRESS, verifying the certificate for the name in `host`."""

    def __init__(self, address: str, name: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(name, port, context=context, timeout=timeout)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def _read(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict) -> Response:
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    joined: dict[str, str] = {}
    counts: dict[str, int] = {}
    for key, value in resp.getheaders():
        k = key.lower()
        joined[k] = f"{joined[k]}, {value}" if k in joined else value
        counts[k] = counts.get(k, 0) + 1
    conn.close()
    return Response(resp.status, joined, data, counts)


@dataclass
class Edge:
    address: str
    ca_file: str
    https_port: int = 443
    http_port: int = 80
    name: str = "localhost"
    timeout: float = 10.0

    def context(self, minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if minimum is not None or maximum is not None:
            # Let this client offer old protocols at all (OpenSSL 3's default
            # security level refuses TLS 1.0/1.1 on the client side): then a
            # refusal is the server's.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # TLSVersion.TLSv1/TLSv1_1 are deprecated: probing that they are refused is the point.
            warnings.simplefilter("ignore", DeprecationWarning)
            if minimum is not None:
                ctx.minimum_version = minimum
            if maximum is not None:
                ctx.maximum_version = maximum
        return ctx

    def https(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        conn = _Connection(self.address, self.name, self.https_port, self.context(), self.timeout)
        return _read(conn, method, path, body, {"Host": self.name, **(headers or {})})

    def http(self, method: str, path: str) -> Response:
        conn = http.client.HTTPConnection(self.address, self.http_port, timeout=self.timeout)
        return _read(conn, method, path, None, {"Host": self.name})

    def handshake(self, version: ssl.TLSVersion, ciphers: str | None = None) -> str:
        """Negotiate exactly VERSION (offering only CIPHERS, TLS 1.2 and older, if given);
        returns the protocol agreed, raises ssl.SSLError when refused."""
        ctx = self.context(minimum=version, maximum=version)
        if ciphers:
            ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        with socket.create_connection((self.address, self.https_port), self.timeout) as sock:
            with ctx.wrap_socket(sock, server_hostname=self.name) as tls:
                return str(tls.version())
