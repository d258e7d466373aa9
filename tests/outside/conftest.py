"""The platform as its users see it, from the control node only.

The suite knows nothing of the hosts: it reads the file site.yml writes for
users, `<inventory>/.secrets/client.env` (the same one docs/quickstart.md
tells a data scientist to source), and talks only to the URLs in it, with the
clients users have: MLflow's Python client with its default settings,
Airflow's REST API v2, curl, the serving API's documented calls and a
headless Chromium; every URL is https:// through the edge, trusted with the
CA bundle client.env names (the lab CA). In-process `requests` calls pass
verify= per request: this machine's REQUESTS_CA_BUNDLE would override a
Session's verify.

    OCI_MLOPS_INVENTORY   the inventory directory (default inventory/lab)

`make outside-test` runs it against the lab; molecule/site runs it against
the scenario's freshly converged platform. Every external call has a timeout:
a client that hangs fails the test instead of blocking it. Measured figures
go to artifacts/outside-report.txt.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import math
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = Path(os.environ.get("OCI_MLOPS_INVENTORY") or ROOT / "inventory" / "lab")
CLIENT_ENV = INVENTORY / ".secrets" / "client.env"
ARTIFACTS = ROOT / "artifacts"
REPORT = ARTIFACTS / "outside-report.txt"

# Variables a user's shell does not have: the suite must see the client's
# defaults, whatever the machine running it has set.
_NOT_THE_USERS = ("MLFLOW_", "AIRFLOW_", "OCI_MLOPS_API", "OCI_MLOPS_DASHBOARD", "AWS_")


def start_report(path: Path, suite: str) -> None:
    """Start a report of measured figures (artifacts/<name>.txt) for SUITE against INVENTORY."""
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_text(
        f"# {suite} against {INVENTORY}, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC: measured values\n",
        encoding="utf-8",
    )


def append_report(path: Path, line: str) -> None:
    """Append a measured figure to the report at PATH (and print it)."""
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    print(f"[{path.stem}] {line}")


def pytest_sessionstart(session):  # noqa: ARG001 (pytest hook signature)
    start_report(REPORT, "tests/outside")


def report(line: str) -> None:
    """Append a measured figure to artifacts/outside-report.txt (and print it)."""
    append_report(REPORT, line)


def base_env() -> dict[str, str]:
    """The environment of a user's fresh shell on this machine: no client settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_THE_USERS)}
    # `python` and `pip` are the suite's environment, as an activated venv would make them.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OCI_MLOPS_INVENTORY"] = str(INVENTORY)
    return env


def run(argv: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run a user's command; a command still running after `timeout` seconds is killed and fails the test."""
    try:
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        command = " ".join(argv)[:200]
        raise AssertionError(f"`{command}` hung: killed after {timeout:.0f} s\n{out[-3000:]}\n{err[-3000:]}") from exc


def python(code: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run a Python program in the suite's environment (the user's client), killed after `timeout` seconds."""
    return run([sys.executable, "-c", code], env, timeout)


def passed(result: subprocess.CompletedProcess, what: str) -> str:
    """stdout of a command that must have succeeded."""
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result.stdout


@pytest.fixture(scope="session")
def client_env() -> dict[str, str]:
    """What `source <inventory>/.secrets/client.env` gives a user's shell."""
    assert CLIENT_ENV.is_file(), f"{CLIENT_ENV} is missing: site.yml writes it (ansible/playbooks/client-env.yml)"
    mode = CLIENT_ENV.stat().st_mode & 0o777
    assert mode == 0o600, f"{CLIENT_ENV} holds credentials and is {oct(mode)}, not 0600"
    shell = run(["bash", "-c", 'set -euo pipefail; source "$1"; env -0', "bash", str(CLIENT_ENV)], base_env(), 30)
    before = base_env()
    exported = dict(item.split("=", 1) for item in passed(shell, "source client.env").split("\0") if "=" in item)
    values = {k: v for k, v in exported.items() if before.get(k) != v and k not in ("SHLVL", "_", "PWD", "OLDPWD")}
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "AIRFLOW_URL",
        "AIRFLOW_USERNAME",
        "AIRFLOW_PASSWORD",
        "OCI_MLOPS_API_URL",
        "OCI_MLOPS_API_KEY",
        "OCI_MLOPS_DASHBOARD_URL",
        "OCI_MLOPS_CA_BUNDLE",
    ):
        assert values.get(name), f"client.env does not set {name}"
    for name in ("MLFLOW_TRACKING_URI", "AIRFLOW_URL", "OCI_MLOPS_API_URL", "OCI_MLOPS_DASHBOARD_URL"):
        assert values[name].startswith("https://"), f"{name} is not through the edge: {values[name]}"
    assert Path(values["OCI_MLOPS_CA_BUNDLE"]).is_file(), "client.env names a CA bundle that does not exist"
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "MLFLOW_TRACKING_SERVER_CERT_PATH"):
        assert values.get(name) == values["OCI_MLOPS_CA_BUNDLE"], f"client.env does not point {name} at the CA bundle"
    assert not [k for k in values if k.startswith("MLFLOW_ENABLE_PROXY_MULTIPART")], (
        "client.env changes MLflow's defaults"
    )
    return values


@pytest.fixture(scope="session")
def user_env(client_env) -> dict[str, str]:
    """A user's shell after `source client.env`."""
    return {**base_env(), **client_env}


def wait_for(predicate, timeout: float, step: float = 2.0):
    """Seconds until predicate() was true, or None after timeout (exceptions count as false)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 (any failure means: not yet)
            pass
        time.sleep(step)
    return None


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- TLS: the platform's URLs may be https:// signed by the lab CA ------------

# Where client.env may name the CA bundle the platform's certificates verify
# against (requests, Python's ssl, MLflow's client).
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "MLFLOW_TRACKING_SERVER_CERT_PATH")


def tls_verify(env: dict[str, str]) -> str | bool:
    """requests' `verify=` for the platform's URLs: the CA bundle the user's environment names, else
    the system's. Pass it per request: REQUESTS_CA_BUNDLE would override a Session's verify."""
    for name in _CA_BUNDLE_VARIABLES:
        if env.get(name) and Path(env[name]).is_file():
            return env[name]
    return True


def _spki_pin(url: str, env: dict[str, str]) -> str | None:
    """base64(sha256(SubjectPublicKeyInfo)) of the certificate an https URL presents, once it verified
    against the user's CA bundle; None for http://."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    verify = tls_verify(env)
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    with context.wrap_socket(
        socket.create_connection((parts.hostname, parts.port or 443), timeout=30),
        server_hostname=parts.hostname,
    ) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der, f"{url}: no certificate"
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "no chromium on this machine: scripts/host-prereqs installs Debian's package"
    return path


@pytest.fixture(scope="module")
def browser(user_env):
    """The system's headless Chromium (Playwright). Chromium does not read a CA bundle file: the
    certificates the platform's https:// URLs present are verified here against the user's CA bundle
    (hostname included), then pinned by their public key (--ignore-certificate-errors-spki-list,
    honoured with Playwright's own profile directory), so the browser trusts exactly those."""
    from playwright.sync_api import sync_playwright

    urls = [user_env[name] for name in ("MLFLOW_TRACKING_URI", "AIRFLOW_URL", "OCI_MLOPS_DASHBOARD_URL")]
    pins = sorted({pin for url in urls if (pin := _spki_pin(url, user_env))})
    args = ["--no-sandbox"] + ([f"--ignore-certificate-errors-spki-list={','.join(pins)}"] if pins else [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=args)
        yield browser
        browser.close()
