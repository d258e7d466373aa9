"""The MLflow server's failed sign-in limiter (ansible/roles/mlflow/files/oci_mlops_auth_throttle.py).

The limiter itself runs here as is. The authorization function runs against
stand-ins for the two things it calls in the server: Flask's request (the
credential, the peer, X-Forwarded-For) and MLflow's basic auth (a slow
"hash" that counts its calls, MLflow's credential cache). The end-to-end
check, a flood of wrong passwords against the real server, is
tests/outside/test_7_mlflow_auth.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import types
from dataclasses import dataclass, field

import pytest
from conftest import ROOT

MODULE = ROOT / "ansible" / "roles" / "mlflow" / "files" / "oci_mlops_auth_throttle.py"


def _load(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("oci_mlops_auth_throttle_under_test", MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_blocks_after_n_failures_and_reopens_after_the_window(monkeypatch):
    mod = _load(monkeypatch)
    clock = Clock()
    limiter = mod.FailedLoginLimiter(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.acquire("10.0.0.9") == 0.0
        limiter.release("10.0.0.9", failed=True)
        clock.now += 1
    wait = limiter.acquire("10.0.0.9")
    assert 55 <= wait <= 60, wait
    assert limiter.acquire("10.0.0.10") == 0.0, "another address is not affected"
    limiter.release("10.0.0.10", failed=False)
    clock.now += 58  # the first failure is 61 s old
    assert limiter.acquire("10.0.0.9") == 0.0


def test_successes_do_not_count_and_pending_verifications_do(monkeypatch):
    mod = _load(monkeypatch)
    limiter = mod.FailedLoginLimiter(limit=2, window=60, clock=Clock())
    for _ in range(10):
        assert limiter.acquire("a") == 0.0
        limiter.release("a", failed=False)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0, "two verifications in flight fill a limit of 2"
    limiter.release("a", failed=False)
    assert limiter.acquire("a") == 0.0


def test_a_limit_of_zero_never_blocks(monkeypatch):
    mod = _load(monkeypatch)
    limiter = mod.FailedLoginLimiter(limit=0, window=60, clock=Clock())
    for _ in range(100):
        assert limiter.acquire("a") == 0.0
        limiter.release("a", failed=True)


def test_the_state_is_bounded(monkeypatch):
    mod = _load(monkeypatch)
    monkeypatch.setattr(mod, "MAX_CLIENTS", 50)
    limiter = mod.FailedLoginLimiter(limit=1, window=600, clock=Clock())
    for i in range(500):
        limiter.acquire(f"10.1.{i // 256}.{i % 256}")
        limiter.release(f"10.1.{i // 256}.{i % 256}", failed=True)
    assert len(limiter._failures) == 50
    assert not limiter._pending


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "203.0.113.7", "10.0.0.2"),  # not a trusted proxy: the header is the client's claim
        ("10.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the proxy's own entry is the last
        ("10.0.0.1", "not-an-address", "10.0.0.1"),
        ("10.0.0.1", None, "10.0.0.1"),
    ],
)
def test_the_client_address(monkeypatch, peer, forwarded, expected):
    mod = _load(monkeypatch)
    assert mod.client_address(peer, forwarded, frozenset({"10.0.0.1"})) == expected


def test_settings_come_from_the_environment(monkeypatch):
    mod = _load(
        monkeypatch,
        OCI_MLOPS_AUTH_FAILED_LIMIT="4",
        OCI_MLOPS_AUTH_FAILED_WINDOW="30",
        OCI_MLOPS_AUTH_TRUSTED_PROXIES="10.0.0.1, fe80::1",
    )
    assert (mod.LIMITER.limit, mod.LIMITER.window) == (4, 30)
    assert mod.TRUSTED_PROXIES == frozenset({"10.0.0.1", "fe80::1"})


# --- the authorization function against stand-ins for Flask and MLflow -----


@dataclass
class Credentials:
    username: str
    password: str


@dataclass
class Response:
    body: str
    status_code: int
    headers: dict = field(default_factory=dict)


class FakeRequest:
    """Flask's request proxy: one value per thread, as Flask's context is."""

    def __init__(self) -> None:
        self._local = threading.local()

    def set(self, credentials, remote_addr, forwarded=None):
        self._local.value = (credentials, remote_addr, {"X-Forwarded-For": forwarded} if forwarded else {})

    @property
    def authorization(self):
        return self._local.value[0]

    @property
    def remote_addr(self):
        return self._local.value[1]

    @property
    def headers(self):
        return self._local.value[2]


class FakeMlflowAuth:
    """MLflow's basic auth: a slow check that counts its calls, and its credential cache."""

    def __init__(self, request: FakeRequest, password: str, ttl_cache: bool = True) -> None:
        self.request = request
        self.password = password
        self.hashes = 0
        self.lock = threading.Lock()
        self._USER_AUTH_CACHE: dict | None = {} if ttl_cache else None
        self._USER_AUTH_CACHE_LOCK = threading.Lock()

    def _auth_cache_key(self, username, password):
        return (username, password)

    def authenticate_request_basic_auth(self):
        creds = self.request.authorization
        if creds is None:
            return Response("not authenticated", 401, {"WWW-Authenticate": 'Basic realm="mlflow"'})
        key = (creds.username, creds.password)
        if self._USER_AUTH_CACHE is not None and key in self._USER_AUTH_CACHE:
            return creds
        with self.lock:
            self.hashes += 1
        time.sleep(0.01)
        if creds.password == self.password:
            if self._USER_AUTH_CACHE is not None:
                self._USER_AUTH_CACHE[key] = object()
            return creds
        return Response("not authenticated", 401, {"WWW-Authenticate": 'Basic realm="mlflow"'})


class JsonResponse:
    """A Flask response with a JSON body (get_json/set_data, as flask.Response has them)."""

    def __init__(self, body: dict) -> None:
        self.data = json.dumps(body)

    def get_json(self, silent: bool = False):
        return json.loads(self.data)

    def set_data(self, data: str) -> None:
        self.data = data


class FakeFlaskApp:
    """MLflow's Flask app: its views by endpoint, /users/current as MLflow 3.17 answers it for a
    custom authorization_function."""

    def __init__(self) -> None:
        self.view_functions = {
            "get_current_user": lambda: JsonResponse(
                {"user": {"id": 1, "username": "data-scientist", "is_admin": False}, "is_basic_auth": False}
            )
        }


@pytest.fixture
def server(monkeypatch):
    """The module wired to the stand-ins; the edge (10.0.0.1) and a proxy on the host itself
    (127.0.0.2) are trusted proxies."""
    mod = _load(
        monkeypatch,
        OCI_MLOPS_AUTH_FAILED_LIMIT="5",
        OCI_MLOPS_AUTH_FAILED_WINDOW="60",
        OCI_MLOPS_AUTH_TRUSTED_PROXIES="10.0.0.1,127.0.0.2",
        OCI_MLOPS_AUTH_LOCAL_ADDRESSES="10.0.0.9",
    )
    request = FakeRequest()
    auth = FakeMlflowAuth(request, password="the-right-password")
    flask = types.ModuleType("flask")
    flask.request = request  # type: ignore[attr-defined]
    flask.make_response = lambda body, status: Response(body, status)  # type: ignore[attr-defined]
    flask.current_app = FakeFlaskApp()  # type: ignore[attr-defined]
    flask.json = json  # type: ignore[attr-defined]
    mlflow_server = types.ModuleType("mlflow.server")
    mlflow_server.auth = auth  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flask", flask)
    monkeypatch.setitem(sys.modules, "mlflow", types.ModuleType("mlflow"))
    monkeypatch.setitem(sys.modules, "mlflow.server", mlflow_server)
    monkeypatch.setitem(sys.modules, "mlflow.server.auth", auth)
    return mod, request, auth


def _call(server, password, remote="10.0.0.1", forwarded="203.0.113.7", user="data-scientist"):
    mod, request, _ = server
    request.set(Credentials(user, password), remote, forwarded)
    return mod.authenticate_request_basic_auth_throttled()


def test_a_flood_of_wrong_passwords_is_refused_without_hashing(server):
    _, _, auth = server
    statuses = [getattr(_call(server, f"guess-{i}"), "status_code", 200) for i in range(100)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert auth.hashes == 5, "only the limit's worth of wrong passwords is hashed"
    refused = _call(server, "another-guess")
    assert int(refused.headers["Retry-After"]) > 0


def test_a_signed_in_user_keeps_working_through_a_flood_from_the_same_address(server):
    _, _, auth = server
    assert isinstance(_call(server, "the-right-password"), Credentials)
    for i in range(50):
        _call(server, f"guess-{i}")
    hashes = auth.hashes
    for _ in range(20):
        assert isinstance(_call(server, "the-right-password"), Credentials)
    assert auth.hashes == hashes


def test_a_signed_in_user_whose_cache_entry_expired_pays_one_hash_not_a_429(server):
    _, _, auth = server
    assert isinstance(_call(server, "the-right-password"), Credentials)
    for i in range(20):
        _call(server, f"guess-{i}")
    auth._USER_AUTH_CACHE.clear()  # MLflow's TTL ran out
    hashes = auth.hashes
    assert isinstance(_call(server, "the-right-password"), Credentials)
    assert isinstance(_call(server, "the-right-password"), Credentials)
    assert auth.hashes == hashes + 1


def test_a_revoked_credential_is_forgotten(server):
    _, _, auth = server
    assert isinstance(_call(server, "the-right-password"), Credentials)
    for i in range(20):
        _call(server, f"guess-{i}")
    auth._USER_AUTH_CACHE.clear()
    auth.password = "a-new-password"  # the admin changed it
    assert _call(server, "the-right-password").status_code == 401
    hashes = auth.hashes
    assert _call(server, "the-right-password").status_code == 429
    assert auth.hashes == hashes


def test_a_good_credential_is_remembered_per_user_and_password_only(monkeypatch):
    mod = _load(monkeypatch)
    clock = Clock()
    good = mod.GoodCredentials(3600, clock=clock)
    good.add("data-scientist", "the-right-password")
    assert ("data-scientist", "the-right-password") in good
    assert ("data-scientist", "the-right-password ") not in good
    assert ("admin", "the-right-password") not in good
    assert not [d for d in good._seen if b"the-right-password" in d], "stored as an HMAC only"
    clock.now += 3600
    assert ("data-scientist", "the-right-password") not in good


def test_an_unverified_credential_from_a_blocked_address_waits(server):
    for i in range(10):
        _call(server, f"guess-{i}")
    assert _call(server, "the-right-password").status_code == 429
    assert isinstance(_call(server, "the-right-password", forwarded="198.51.100.5"), Credentials), (
        "another client behind the same edge is not blocked"
    )


def test_a_client_cannot_escape_by_claiming_another_address(server):
    _, _, auth = server
    for i in range(30):
        _call(server, f"guess-{i}", remote="10.0.0.7", forwarded=f"198.51.100.{i}")
    assert auth.hashes == 5, "X-Forwarded-For from an untrusted peer is ignored"


def test_concurrent_guesses_cannot_overrun_the_limit(server):
    _, _, auth = server
    mod, request, _ = server
    barrier = threading.Barrier(40)

    def guess(i):
        request.set(Credentials("data-scientist", f"guess-{i}"), "10.0.0.1", "203.0.113.7")
        barrier.wait()
        mod.authenticate_request_basic_auth_throttled()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert auth.hashes == 5


def test_requests_without_credentials_are_mlflows_401_and_do_not_count(server):
    mod, request, auth = server
    request.set(None, "10.0.0.1", "203.0.113.7")
    for _ in range(50):
        assert mod.authenticate_request_basic_auth_throttled().status_code == 401
    assert _call(server, "one-guess").status_code == 401
    assert auth.hashes == 1


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.0.0.9"])
def test_the_hosts_own_processes_are_not_limited(server, peer):
    """From loopback, or from the host's own address (10.0.0.9: MLflow listens on
    the private address behind the edge; the role's user checks, which all fail
    once on a fresh platform, came from there and were refused 429 by a worker)."""
    _, _, auth = server
    for i in range(20):
        assert _call(server, f"guess-{i}", remote=peer, forwarded=None).status_code == 401
    assert auth.hashes == 20


@pytest.mark.parametrize("forwarded", [None, "198.51.100.5"])
def test_a_trusted_proxy_on_the_host_itself_is_limited(server, forwarded):
    """A co-located proxy (127.0.0.2 is trusted here) is limited per forwarded address, and
    without one under its own: it is not one of the host's own processes."""
    _, _, auth = server
    for i in range(20):
        _call(server, f"guess-{i}", remote="127.0.0.2", forwarded=forwarded)
    assert auth.hashes == 5


def test_another_hosts_address_is_limited(server):
    _, _, auth = server
    for i in range(20):
        _call(server, f"guess-{i}", remote="10.0.0.8", forwarded=None)
    assert auth.hashes == 5


def test_the_hosts_own_address_claimed_through_the_edge_is_not_exempt(server):
    _, _, auth = server
    for i in range(20):
        _call(server, f"guess-{i}", forwarded="10.0.0.9")
    assert auth.hashes == 5


def test_a_loopback_address_claimed_through_the_edge_is_not_exempt(server):
    _, _, auth = server
    for i in range(20):
        _call(server, f"guess-{i}", forwarded="127.0.0.1")
    # the edge replaces X-Forwarded-For: 127.0.0.1 there is a client on the edge host, limited like any other
    assert auth.hashes == 5


def test_the_uis_logout_is_mlflows_401_and_spends_nothing(server):
    """MLflow's UI signs out by sending a throwaway user whose password is its name: MLflow's own
    401 every time, even from a blocked address, and it does not count as a failure."""
    _, _, auth = server
    for i in range(20):
        logout = f"mlflow-logged-out-{i:04x}"
        assert _call(server, logout, user=logout).status_code == 401
    assert [_call(server, f"guess-{i}").status_code for i in range(6)] == [401] * 5 + [429]
    assert _call(server, "mlflow-logged-out-ffff", user="mlflow-logged-out-ffff").status_code == 401
    assert _call(server, "mlflow-logged-out-a", user="mlflow-logged-out-b").status_code == 429, (
        "only the UI's own pair (password = user) is passed"
    )


def test_current_user_reports_basic_auth(server):
    """MLflow reports is_basic_auth: false for any authorization_function but its own; the first
    authentication makes the view report the basic auth this is, once."""
    mod, _, _ = server
    app = sys.modules["flask"].current_app
    original = app.view_functions["get_current_user"]
    assert original().get_json()["is_basic_auth"] is False
    _call(server, "the-right-password")
    wrapped = app.view_functions["get_current_user"]
    body = wrapped().get_json()
    assert body == {"user": {"id": 1, "username": "data-scientist", "is_admin": False}, "is_basic_auth": True}
    _call(server, "the-right-password")
    assert app.view_functions["get_current_user"] is wrapped, "wrapped once"
    mod.report_basic_auth(types.SimpleNamespace(view_functions={}))  # another MLflow without the view: nothing
