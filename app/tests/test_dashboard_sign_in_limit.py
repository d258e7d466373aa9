"""Failed dashboard sign-ins are limited per browser, not per dashboard host.

MLflow's failed sign-in limiter (the platform's authorization function,
ansible/roles/mlflow/files/oci_mlops_auth_throttle.py) counts wrong passwords per
client address. Every dashboard sign-in reaches MLflow from the dashboard's host,
so the dashboard tells MLflow which browser a sign-in comes from: the address the
edge forwarded (X-Forwarded-For from a trusted proxy, OCI_MLOPS_FORWARDED_ALLOW_IPS),
sent on as X-Forwarded-For, which MLflow trusts from the dashboard's host
(mlflow_auth_trusted_proxies). Here a real MLflow runs that limiter (3 failures per
address, one worker) and trusts the dashboard, which connects from 127.0.0.1.

AppTest cannot seed the browser's connection (st.context's headers and IP address
come from the session's client), so each "browser" is Streamlit's client context,
replaced for the test: the edge's address and the X-Forwarded-For it set.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import streamlit as st
from streamlit.runtime import context as st_context
from streamlit.testing.v1 import AppTest

from oci_mlops_app.cli import DASHBOARD_SCRIPT
from oci_mlops_app.dashboard import data
from tests import lab, mlflow_server

SIGN_IN = "FormSubmitter:sign_in-Sign in"
LIMITER_DIR = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "mlflow" / "files"
LIMIT = 3
EDGE = "10.0.0.5"
REFUSED = "Sign-in failed: unknown user or wrong password."


@dataclass
class Browser:
    """What Streamlit knows of a browser's connection (its ClientContext)."""

    remote_ip: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: dict[str, str] = field(default_factory=dict)


def through_edge(address: str) -> Browser:
    """A browser behind the edge: the edge connects and names the browser in X-Forwarded-For."""
    return Browser(EDGE, [("X-Forwarded-For", address)])


@pytest.fixture(scope="module")
def throttled_mlflow(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[mlflow_server.MlflowServer]:
    """MLflow with the platform's failed sign-in limiter, trusting the dashboard (127.0.0.1)."""
    with mlflow_server.running_mlflow(
        tmp_path_factory.mktemp("throttled-mlflow"),
        mlflow_bin=Path(lab.venv_bin("mlflow")),
        default_permission="NO_PERMISSIONS",
        authorization_function="oci_mlops_auth_throttle:authenticate_request_basic_auth_throttled",
        extra_env={
            "PYTHONPATH": str(LIMITER_DIR),
            "OCI_MLOPS_AUTH_FAILED_LIMIT": str(LIMIT),
            "OCI_MLOPS_AUTH_FAILED_WINDOW": "60",
            "OCI_MLOPS_AUTH_TRUSTED_PROXIES": "127.0.0.1",
        },
    ) as server:
        yield server


@pytest.fixture
def dashboard(
    monkeypatch: pytest.MonkeyPatch, throttled_mlflow: mlflow_server.MlflowServer
) -> Iterator[dict[str, Browser]]:
    """The dashboard against the throttled MLflow, behind the edge (EDGE is its trusted proxy).

    Yields the connection holder: set ``["browser"]`` before starting a session.
    """
    monkeypatch.setenv("MLFLOW_TRACKING_URI", throttled_mlflow.uri)
    monkeypatch.setenv("OCI_MLOPS_API_URL", f"http://127.0.0.1:{lab.free_port()}")
    monkeypatch.setenv("OCI_MLOPS_API_KEY", secrets.token_urlsafe(24))
    monkeypatch.setenv("OCI_MLOPS_FORWARDED_ALLOW_IPS", EDGE)
    monkeypatch.delenv("OCI_MLOPS_DASHBOARD_AUTH", raising=False)
    connection: dict[str, Browser] = {}
    monkeypatch.setattr(st_context, "_get_client_context", lambda: connection.get("browser"))
    st.cache_data.clear()
    yield connection
    st.cache_data.clear()


def sign_in(
    connection: dict[str, Browser], browser: Browser, username: str, password: str
) -> AppTest:
    """A new browser session (no per-session backoff yet) signing in once."""
    connection["browser"] = browser
    app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=90)
    app.run()
    app.text_input(key="sign_in_username").input(username)
    app.text_input(key="sign_in_password").input(password)
    app.button(key=SIGN_IN).click().run()
    assert not app.exception, app.exception
    return app


def errors(app: AppTest) -> list[str]:
    return [e.value for e in app.error]


def new_user(server: mlflow_server.MlflowServer) -> tuple[str, str]:
    """A user that has never signed in (MLflow's limiter lets a verified credential through)."""
    username = f"analyst-{secrets.token_hex(4)}"
    return username, server.create_user(username)


def test_wrong_passwords_from_one_browser_do_not_lock_out_the_others(
    dashboard: dict[str, Browser], throttled_mlflow: mlflow_server.MlflowServer
) -> None:
    user, password = new_user(throttled_mlflow)
    attacker, colleague = through_edge("203.0.113.7"), through_edge("198.51.100.9")
    for attempt in range(LIMIT):
        app = sign_in(dashboard, attacker, user, f"wrong-password-{attempt}")
        assert errors(app) == [REFUSED]
    # the attacker's browser is at MLflow's limit: even the right password waits, unchecked
    app = sign_in(dashboard, attacker, user, password)
    assert "mlflow_user" not in app.session_state
    [message] = errors(app)
    assert message.startswith("Too many failed sign-ins from your address: try again in "), message
    assert 1 <= int(message.rsplit(" ", 2)[1]) <= 60, message
    # another browser behind the same edge signs in
    app = sign_in(dashboard, colleague, user, password)
    # (the page then asks the serving API, which this module does not run, what it serves)
    assert not [e for e in errors(app) if e == REFUSED or e.startswith("Too many")], errors(app)
    assert app.session_state["mlflow_user"].username == user


def test_a_browser_cannot_choose_the_address_it_is_counted_under(
    dashboard: dict[str, Browser], throttled_mlflow: mlflow_server.MlflowServer
) -> None:
    """Reached directly (not through a trusted proxy), the X-Forwarded-For a client sends is
    ignored: its own address counts, whatever it claims."""
    user, password = new_user(throttled_mlflow)
    for attempt in range(LIMIT):
        claim = Browser("203.0.113.60", [("X-Forwarded-For", f"192.0.2.{attempt + 1}")])
        assert errors(sign_in(dashboard, claim, user, f"wrong-password-{attempt}")) == [REFUSED]
    claim = Browser("203.0.113.60", [("X-Forwarded-For", "192.0.2.200")])
    [message] = errors(sign_in(dashboard, claim, user, password))
    assert message.startswith("Too many failed sign-ins from your address"), message
    app = sign_in(dashboard, Browser("203.0.113.61"), user, password)
    assert app.session_state["mlflow_user"].username == user


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        (EDGE, ["203.0.113.7"], EDGE, "203.0.113.7"),
        # the proxy's own entry is the last one; repeated headers count in order
        (EDGE, ["198.51.100.1, 203.0.113.7"], "10.0.0.0/24", "203.0.113.7"),
        (EDGE, ["198.51.100.1", "203.0.113.7"], "*", "203.0.113.7"),
        ("203.0.113.60", ["192.0.2.1"], EDGE, "203.0.113.60"),  # not the edge: a claim, ignored
        ("203.0.113.60", ["192.0.2.1"], None, "203.0.113.60"),  # no proxy trusted
        (EDGE, [], EDGE, EDGE),  # the edge without a header: itself
        (EDGE, ["not-an-address"], EDGE, EDGE),
        ("fd00::5", ["2001:db8::7"], "fd00::/64", "2001:db8::7"),
        (None, ["203.0.113.7"], "*", None),  # Streamlit reports no address for loopback
    ],
)
def test_the_browser_address(
    peer: str | None, forwarded: list[str], trusted: str | None, expected: str | None
) -> None:
    assert data.browser_address(peer, forwarded, trusted) == expected
