"""A throwaway MLflow tracking server on loopback, for tests (standard library only).

The one implementation behind both suites that need a real MLflow: the app's
(app/tests/lab.py, the tests and the benchmark) and the DAGs' (tests/dags/
conftest.py, which loads this file by path: it runs in the Airflow and the
pipelines environments, where neither the app's test package nor httpx is
installed). The server is the real ``mlflow server`` of a given environment
with the basic-auth app, a sqlite backend and ``--serve-artifacts`` into a
local folder, all in a working directory; the caller chooses the default
permission and creates the users it needs.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_USER = "admin"
START_TIMEOUT_S = 120.0
MLFLOW_AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_logged_process(
    argv: list[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group with stdout+stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process group started for ``process``, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def _log_tail(log_path: Path | None) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return "\n" + log_path.read_text(errors="replace")[-3000:]


def wait_http_ok(
    url: str,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``url`` until it answers 200.

    Fails early if ``process`` exits; errors end with the tail of ``log_path``.
    """
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            code = process.returncode
            raise RuntimeError(
                f"process exited with {code} before {url} answered{_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except OSError as exc:  # refused, timed out, or an HTTP error status (HTTPError)
            last_error = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s: {last_error}{_log_tail(log_path)}")


@dataclass
class MlflowServer:
    """A running MLflow server with basic auth, and its admin's password.

    ``stop()`` and ``start()`` take it down and bring it back on the same address with the same
    data (an outage); ``process`` is the current server process.
    """

    uri: str
    workdir: Path
    admin_password: str
    process: subprocess.Popen[bytes]
    argv: list[str] = field(default_factory=list, repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def artifacts_dir(self) -> Path:
        return self.workdir / "artifacts"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mlflow-server.log"

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group); its port refuses connections."""
        stop_process(self.process)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the stopped server again with the same command line; wait for ``/health``."""
        if self.process.poll() is None:
            return
        self.process = start_logged_process(self.argv, self.env, self.log_path)
        wait_http_ok(f"{self.uri}/health", timeout_s, self.process, self.log_path)

    def call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        auth: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """A REST call as ``auth`` (user, password; the admin by default): the decoded JSON answer.

        GET sends ``payload`` as the query string, other methods as a JSON body;
        an error status raises urllib.error.HTTPError.
        """
        user, password = auth or (ADMIN_USER, self.admin_password)
        url, data = f"{self.uri}{path}", None
        if method == "GET" and payload:
            url += "?" + urllib.parse.urlencode(payload)
        elif payload is not None:
            data = json.dumps(dict(payload)).encode()
        request = urllib.request.Request(url, data=data, method=method)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def create_user(self, username: str) -> str:
        """Create a user with a random password (as the admin); its password."""
        password = secrets.token_urlsafe(18)
        self.call(
            "POST", "/api/2.0/mlflow/users/create", {"username": username, "password": password}
        )
        return password

    def grant(self, username: str, resource_type: str, resource_id: str, permission: str) -> None:
        """Give ``username`` ``permission`` on an experiment (id) or a registered model (name).

        ``resource_id`` ``*``: on all of them.
        """
        self.call(
            "POST",
            "/api/3.0/mlflow/users/permissions/grant",
            {
                "username": username,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "permission": permission,
            },
        )


@contextmanager
def running_mlflow(
    workdir: Path,
    *,
    mlflow_bin: Path,
    default_permission: str,
    start_timeout_s: float = START_TIMEOUT_S,
    authorization_function: str = MLFLOW_AUTHORIZATION_FUNCTION,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[MlflowServer]:
    """Run ``mlflow_bin server`` in ``workdir`` until the block exits.

    Basic auth with ``default_permission`` for users without a grant; ``authorization_function``
    and ``extra_env`` (added to the server's environment) to run another one, such as the
    platform's failed sign-in limiter.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    admin_password = secrets.token_urlsafe(18)
    auth_ini = workdir / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        f"authorization_function = {authorization_function}\n"
        # cache verified credentials: without it every request pays a PBKDF2 hash (~0.3 s)
        "auth_cache_ttl_seconds = 300\n"
    )
    auth_ini.chmod(0o600)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # basic-auth refuses to start without a static CSRF secret
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        **(extra_env or {}),
    }
    log_path = workdir / "mlflow-server.log"
    argv = [
        str(mlflow_bin),
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(workdir / "artifacts"),
    ]
    process = start_logged_process(argv, env, log_path)
    server = MlflowServer(
        f"http://127.0.0.1:{port}", workdir, admin_password, process, argv=argv, env=env
    )
    try:
        wait_http_ok(f"{server.uri}/health", start_timeout_s, process, log_path)
        yield server
    finally:
        stop_process(server.process)
