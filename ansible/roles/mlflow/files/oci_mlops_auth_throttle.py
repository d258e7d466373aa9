"""MLflow basic auth with a failed-sign-in limiter (the platform's `authorization_function`).

MLflow's basic-auth app verifies the password of every request with PBKDF2
(about 0.4 s of CPU on the lab's hosts). Its credential cache
(`auth_cache_ttl_seconds`) makes a verified credential cheap for the TTL, but
a wrong password is never cached: every bad guess costs a full hash, so a
flood of wrong passwords starves the workers and every user with them.

This wraps MLflow's own `authenticate_request_basic_auth` (same checks, same
401) and counts, per client address and per worker process, the password
verifications that failed in the last `OCI_MLOPS_AUTH_FAILED_WINDOW` seconds
(verifications still running count too, so concurrent guesses cannot overrun
it). Once `OCI_MLOPS_AUTH_FAILED_LIMIT` is reached, a request from that
address is answered 429 with Retry-After **without hashing**, unless its
credential verified successfully in this worker within the last
GOOD_SECONDS: that one goes on to MLflow (free while in MLflow's cache, one
hash when the cache entry expired), so users who were signed in keep working
through a flood coming from their own address (a shared NAT, the edge). A
guess cannot pass for such a credential: they are remembered as an HMAC of
user and password under a random per-process key (as MLflow's cache does). A
credential never verified from a blocked address waits for the window like a
guess would (MLflow's Python client retries 429 by itself).

The client address is the TCP peer, or, when the peer is one of
`OCI_MLOPS_AUTH_TRUSTED_PROXIES` (comma-separated addresses: the edge, which
replaces X-Forwarded-For with the address it saw, and the dashboard, which
sends the address of the browser a sign-in comes from), the last
X-Forwarded-For entry. Peers on the host itself (loopback, or the host's own
address in `OCI_MLOPS_AUTH_LOCAL_ADDRESSES`: behind the edge MLflow listens
on the private address only) that are not trusted proxies are not limited:
the host's own processes (the mlflow role checks its users' passwords from
there; on a fresh platform every user's check fails once). A trusted proxy always is, per forwarded address or,
without one, under its own: a co-located edge must be one, or everything it
forwards would be exempt. MLflow runs this function for its FastAPI routes
(jobs, gateway, traces, artifact downloads and uploads) in a synthetic
request with no peer address: those share one "unknown" address. The state
lives in each worker (bounded: at most MAX_CLIENTS addresses, oldest
dropped), so with N workers an address gets at most N x the limit per
window.

Two things keep MLflow's UI working with this function in place. MLflow's
`/users/current` tells the UI whether the server runs basic auth (its
"Logout" entry and "Change password" button) by comparing
`authorization_function` with the name of its own function, so any wrapper
reads as "not basic auth": the first call of this function wraps that view
to report basic auth, which this is (MLflow's own check, 401 and
WWW-Authenticate). And the UI's Logout replaces the browser's credentials
with a throwaway pair (user and password both `mlflow-logged-out-<random>`,
MLflow 3.17's UI): that request goes to MLflow's own function uncounted, so
signing out neither spends the address's budget nor gets a 429.

Configured in /etc/mlflow/basic_auth.ini as
`authorization_function = oci_mlops_auth_throttle:authenticate_request_basic_auth_throttled`
(ansible/roles/mlflow; the module is on the server's PYTHONPATH).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

MAX_CLIENTS = 10_000
# How long a credential that verified successfully passes a blocked address.
GOOD_SECONDS = 3600
# The credential MLflow's UI signs out with (user and password alike, plus a random suffix).
LOGOUT_PREFIX = "mlflow-logged-out-"
# MLflow's "who am I" view (/api/2.0 and /ajax-api/2.0 .../mlflow/users/current).
CURRENT_USER_ENDPOINT = "get_current_user"


class FailedLoginLimiter:
    """At most `limit` failed (or pending) verifications per key within `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._pending: dict[str, int] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def acquire(self, key: str) -> float:
        """Reserve one verification for `key`: 0.0 if allowed, else the seconds to wait."""
        if self.limit <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            failures = self._prune(key, now)
            pending = self._pending.get(key, 0)
            if len(failures) + pending >= self.limit:
                if failures:
                    return max(failures[0] + self.window - now, 1.0)
                return 1.0
            self._pending[key] = pending + 1
            return 0.0

    def release(self, key: str, failed: bool) -> None:
        """End a verification reserved by acquire(); a failed one is remembered for the window."""
        if self.limit <= 0:
            return
        with self._lock:
            pending = self._pending.get(key, 0) - 1
            if pending > 0:
                self._pending[key] = pending
            else:
                self._pending.pop(key, None)
            if failed:
                failures = self._failures.setdefault(key, deque())
                failures.append(self._clock())
                self._failures.move_to_end(key)
                while len(self._failures) > MAX_CLIENTS:
                    self._failures.popitem(last=False)


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _addresses(variable: str) -> frozenset[str]:
    names = os.environ.get(variable, "")
    return frozenset(str(ipaddress.ip_address(n.strip())) for n in names.split(",") if n.strip())


def _trusted_proxies() -> frozenset[str]:
    return _addresses("OCI_MLOPS_AUTH_TRUSTED_PROXIES")


# The host's own addresses besides loopback (OCI_MLOPS_AUTH_LOCAL_ADDRESSES:
# the private address MLflow listens on behind the edge, where the mlflow
# role's own checks connect from). A connection from there is the host's own
# process: nobody else sends from this host's address (the VCN's and the lab
# network's source checks).
LOCAL_ADDRESSES = _addresses("OCI_MLOPS_AUTH_LOCAL_ADDRESSES")


LIMITER = FailedLoginLimiter(
    limit=_int_env("OCI_MLOPS_AUTH_FAILED_LIMIT", 3),
    window=_int_env("OCI_MLOPS_AUTH_FAILED_WINDOW", 60),
)
TRUSTED_PROXIES = _trusted_proxies()


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str:
    """The address a request came from: the peer, or what a trusted proxy says it saw."""
    peer = remote_addr or "unknown"
    if peer in trusted and forwarded_for:
        claimed = forwarded_for.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(claimed))
        except ValueError:
            return peer
    return peer


class GoodCredentials:
    """Credentials that verified successfully within `seconds`, as HMACs (bounded, oldest dropped)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._key, message, "sha256").digest()

    def add(self, username: str, password: str) -> None:
        with self._lock:
            digest = self._digest(username, password)
            self._seen[digest] = self._clock()
            self._seen.move_to_end(digest)
            while len(self._seen) > MAX_CLIENTS:
                self._seen.popitem(last=False)

    def discard(self, username: str, password: str) -> None:
        with self._lock:
            self._seen.pop(self._digest(username, password), None)

    def __contains__(self, credential: tuple[str, str]) -> bool:
        with self._lock:
            seen = self._seen.get(self._digest(*credential))
            return seen is not None and self._clock() - seen < self.seconds


GOOD = GoodCredentials(GOOD_SECONDS)


def _is_local(client: str) -> bool:
    try:
        return ipaddress.ip_address(client).is_loopback or str(ipaddress.ip_address(client)) in LOCAL_ADDRESSES
    except ValueError:
        return False


def _is_logout(username: str, password: str) -> bool:
    """The throwaway credential MLflow's UI sends to make the browser forget the real one."""
    return username.startswith(LOGOUT_PREFIX) and password == username


def report_basic_auth(flask_app: Any) -> None:
    """Make MLflow's `/users/current` report `is_basic_auth: true` (idempotent).

    MLflow sets it only when `authorization_function` names its own function,
    and its UI hides Logout and Change password otherwise. Flask looks the view
    up at dispatch, so replacing it during a request's authentication applies
    to that request already.
    """
    view = flask_app.view_functions.get(CURRENT_USER_ENDPOINT)
    if view is None or getattr(view, "reports_basic_auth", False):
        return
    from flask import json

    @functools.wraps(view)
    def current_user(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        body = response.get_json(silent=True) if hasattr(response, "get_json") else None
        if isinstance(body, dict) and body.get("is_basic_auth") is False:
            body["is_basic_auth"] = True
            response.set_data(json.dumps(body))
        return response

    current_user.reports_basic_auth = True  # type: ignore[attr-defined]
    flask_app.view_functions[CURRENT_USER_ENDPOINT] = current_user


def authenticate_request_basic_auth_throttled() -> Any:
    """MLflow's basic auth, with failed verifications limited per client address."""
    from flask import current_app, make_response, request
    from mlflow.server import auth

    report_basic_auth(current_app)
    credentials = request.authorization
    if credentials is None or LIMITER.limit <= 0:
        return auth.authenticate_request_basic_auth()
    credential = (credentials.username or "", credentials.password or "")
    if _is_logout(*credential):
        return auth.authenticate_request_basic_auth()  # MLflow's 401 (no such user), not a guess
    client = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), TRUSTED_PROXIES)
    if client == request.remote_addr and _is_local(client) and client not in TRUSTED_PROXIES:
        return auth.authenticate_request_basic_auth()  # the host's own processes
    wait = LIMITER.acquire(client)
    if wait:
        if credential in GOOD:
            result = auth.authenticate_request_basic_auth()
            if getattr(result, "status_code", None) == 401:
                GOOD.discard(*credential)  # changed or revoked since: a guess like any other now
            return result
        response = make_response(f"Too many failed sign-ins from {client}: retry in {math.ceil(wait)} s.\n", 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    failed = False
    try:
        result = auth.authenticate_request_basic_auth()
        # Success returns the Authorization, a wrong credential the 401 response.
        failed = getattr(result, "status_code", None) == 401
        if not failed and getattr(result, "username", None) == credential[0]:
            GOOD.add(*credential)
        return result
    finally:
        LIMITER.release(client, failed)
