"""MySQL TLS probe, run on a service host with the service's own virtualenv
and environment (systemd-run -p EnvironmentFile=... -p User=...):

    python mysql_tls_probe.py mlflow|airflow

Prints one line per check, and nothing else on stdout (tests parse only these):
    SESSION <engine> <Ssl_version>     a session opened with the service's own
                                       configuration (empty: not TLS)
    REFUSED <engine> <case> <yes|no>   the same client configuration pointed at
                                       a fake server on 127.0.0.1: `no-tls`
                                       offers no TLS, `wrong-ca` presents a
                                       certificate of another CA; yes = the
                                       client refused before authenticating
mlflow: the backend store and auth database URIs (PyMySQL); airflow: both of
Airflow's engines (sync mysqlclient, async aiomysql) from airflow.settings.
"""

import asyncio
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import warnings

warnings.filterwarnings("ignore")
CLIENT_SSL = 0x800
# LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | PLUGIN_AUTH_LENENC_CLIENT_DATA
CAPS = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def _read(sock) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    head = exactly(4)
    return head[3], exactly(int.from_bytes(head[:3], "little"))


class FakeServer:
    """Handshake v10 offering TLS or not; records whether a login arrived in
    plaintext, over TLS, or never (the client gave up)."""

    def __init__(self, offer_tls: bool, context: ssl.SSLContext | None = None):
        self.offer_tls, self.context = offer_tls, context
        self.events: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        try:
            caps = CAPS | (CLIENT_SSL if self.offer_tls else 0)
            salt = b"abcdefghijklmnopqrst"
            hello = (
                b"\x0a8.0.99-fake\x00"
                + struct.pack("<I", 7)
                + salt[:8]
                + b"\x00"
                + struct.pack("<H", caps & 0xFFFF)
                + bytes([45])
                + struct.pack("<H", 2)
                + struct.pack("<H", caps >> 16)
                + bytes([21])
                + b"\x00" * 10
                + salt[8:]
                + b"\x00caching_sha2_password\x00"
            )
            conn.sendall(_packet(0, hello))
            seq, body = _read(conn)
            if struct.unpack("<I", body[:4])[0] & CLIENT_SSL and len(body) == 32 and self.context:
                conn = self.context.wrap_socket(conn, server_side=True)
                seq, body = _read(conn)
            self.events.append("login-over-tls" if isinstance(conn, ssl.SSLSocket) else "login-in-plaintext")
            conn.sendall(_packet(seq + 1, b"\xff" + struct.pack("<H", 1045) + b"#28000fake server"))
        except (OSError, EOFError, ssl.SSLError):
            self.events.append("no-login")
        finally:
            conn.close()


def _other_ca_context() -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 (another CA)."""
    tmp = tempfile.mkdtemp()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
        + ["-keyout", f"{tmp}/k.pem", "-out", f"{tmp}/c.pem", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{tmp}/c.pem", f"{tmp}/k.pem")
    return context


FAKES = {"no-tls": lambda: FakeServer(False), "wrong-ca": lambda: FakeServer(True, _other_ca_context())}


def _refused(attempt, name: str) -> None:
    """Run ATTEMPT(port) against each fake server: refused = no login reached it."""
    for case, make in FAKES.items():
        server = make()
        try:
            attempt(server.port)
        except Exception:  # noqa: BLE001, S110 - any failure; what counts is what reached the server
            pass
        logged_in = {"login-in-plaintext", "login-over-tls"} & set(server.events)
        print(f"REFUSED {name} {case} {'no' if logged_in else 'yes'}")


def _ssl_version(conn, sa) -> str:
    row = conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_version'")).one()
    return row[1] or ""


def mlflow() -> None:
    import sqlalchemy as sa

    uris = {"backend": os.environ["MLFLOW_BACKEND_STORE_URI"]}
    if os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
        import configparser

        ini = configparser.ConfigParser()
        ini.read(os.environ["MLFLOW_AUTH_CONFIG_PATH"])
        uris["auth"] = ini["mlflow"]["database_uri"]
    for name, uri in uris.items():
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            print(f"SESSION {name} {_ssl_version(conn, sa)}")
        engine.dispose()

        def attempt(port, uri=uri):
            fake = sa.create_engine(
                sa.engine.make_url(uri).set(host="127.0.0.1", port=port), poolclass=sa.pool.NullPool
            )
            try:
                fake.connect().close()
            finally:
                fake.dispose()

        _refused(attempt, name)


def airflow() -> None:
    import sqlalchemy as sa
    from airflow import settings

    with settings.engine.connect() as conn:
        print(f"SESSION sync {_ssl_version(conn, sa)}")

    async def async_session() -> None:
        async with settings.async_engine.connect() as conn:
            row = (await conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_version'"))).one()
            print(f"SESSION async {row[1] or ''}")
        await settings.async_engine.dispose()  # inside the loop: no MissingGreenlet traceback

    asyncio.run(async_session())

    def attempt_sync(port):
        url = sa.engine.make_url(settings.SQL_ALCHEMY_CONN).set(host="127.0.0.1", port=port)
        engine = settings.create_metadata_engine(
            url, engine_args={"poolclass": sa.pool.NullPool}, connect_args=settings._get_connect_args("sync")
        )
        try:
            engine.connect().close()
        finally:
            engine.dispose()

    def attempt_async(port):
        url = sa.engine.make_url(settings.SQL_ALCHEMY_CONN_ASYNC).set(host="127.0.0.1", port=port)

        async def go():
            engine = settings.create_async_metadata_engine(
                url, connect_args=settings._get_connect_args("async"), engine_args={"poolclass": sa.pool.NullPool}
            )
            try:
                async with engine.connect():
                    pass
            finally:
                await engine.dispose()

        asyncio.run(go())

    _refused(attempt_sync, "sync")
    _refused(attempt_async, "async")


if __name__ == "__main__":
    {"mlflow": mlflow, "airflow": airflow}[sys.argv[1]]()
