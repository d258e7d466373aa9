"""What MLflow's sign-in costs a user, and what a flood of wrong passwords does to them.

MLflow's basic auth hashes the password (PBKDF2) of every request unless its
credential cache is on (the mlflow role's `mlflow_auth_cache_ttl`): measured
on the lab before the cache, an authenticated call cost 424-427 ms more than
/health, which needs no credential, and the UI makes dozens of such calls per
page. A wrong password is never cached: the role's failed sign-in limiter
(`mlflow_auth_failed_login_limit`) answers 429 without hashing once an
address has used its budget, and lets credentials already verified through.

Every call goes to the URL in client.env (through the edge when there is one)
with the user's CA bundle; the flood stays bounded (FLOOD_REQUESTS over
FLOOD_SECONDS, to the lab's own address only). Figures go to the report.
The flood spends this machine's sign-in budget on MLflow for a minute
(mlflow_auth_failed_login_window): credentials that signed in before keep
working, a first sign-in from here waits (429) until the window passes, so
this module runs last.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from conftest import median, percentile, report, tls_verify

PAIRS = 30
# An authenticated call may cost this much more than /health (median). Without
# the cache it costs one PBKDF2 hash more, ~425 ms measured on the lab.
HASH_FREE_BOUND_S = 0.100
# The UI's home page, signed in, lists the Default experiment within this.
UI_LOAD_BOUND_S = 30.0
FLOOD_REQUESTS = 200
FLOOD_SECONDS = 10.0
# Timings below this are scheduling noise on a shared 2-core lab machine (a
# loaded one measured a cached call's p95 moving between 16 and 58 ms with
# no flood): the flood's p95 bound is 2x the baseline p95, never below 2x this.
JITTER_FLOOR_S = 0.020
BASELINE_CALLS = 100
LAB_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _url(env, path: str) -> str:
    return env["MLFLOW_TRACKING_URI"].rstrip("/") + path


def _cheap_call(env, password: str | None = None) -> requests.Response:
    """An authenticated REST call that costs the server almost nothing but the sign-in:
    the Default experiment (id 0)."""
    return requests.get(
        _url(env, "/api/2.0/mlflow/experiments/get"),
        params={"experiment_id": "0"},
        auth=(env["MLFLOW_TRACKING_USERNAME"], password or env["MLFLOW_TRACKING_PASSWORD"]),
        verify=tls_verify(env),
        timeout=60,
    )


def _health(env) -> requests.Response:
    return requests.get(_url(env, "/health"), verify=tls_verify(env), timeout=60)


def _timed(call, *args, **kwargs) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    resp = call(*args, **kwargs)
    return time.perf_counter() - start, resp


def _warm_up(env) -> None:
    """Sign in a few times on fresh connections, so that every server worker has verified the
    credential once (each worker has its own cache)."""
    for _ in range(20):
        resp = _cheap_call(env)
        assert resp.status_code == 200, f"{resp.status_code} {resp.text[:300]}"


def test_an_authenticated_call_does_not_pay_the_password_hash(user_env):
    _warm_up(user_env)
    differences, health_times, call_times = [], [], []
    for _ in range(PAIRS):
        t_health, health = _timed(_health, user_env)
        t_call, call = _timed(_cheap_call, user_env)
        assert health.status_code == 200, health.text[:300]
        assert call.status_code == 200, call.text[:300]
        health_times.append(t_health)
        call_times.append(t_call)
        differences.append(t_call - t_health)
    extra = median(differences)
    report(
        f"MLflow sign-in cost over {PAIRS} pairs: /health median {median(health_times) * 1000:.1f} ms, "
        f"authenticated experiments/get median {median(call_times) * 1000:.1f} ms "
        f"(p95 {percentile(call_times, 95) * 1000:.1f} ms); the call costs {extra * 1000:.1f} ms more "
        f"(median of the differences; bound {HASH_FREE_BOUND_S * 1000:.0f} ms, ~425 ms with a hash per call)"
    )
    assert extra < HASH_FREE_BOUND_S, (
        f"an authenticated call costs {extra * 1000:.0f} ms more than /health: the password is hashed per "
        "request (mlflow_auth_cache_ttl)"
    )


def test_the_ui_home_page_signed_in(browser, user_env):
    """MLflow's UI in headless Chromium with the user's credentials (HTTP basic, as a browser
    sends them once asked): the home page until the Default experiment is listed."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        http_credentials={
            "username": user_env["MLFLOW_TRACKING_USERNAME"],
            "password": user_env["MLFLOW_TRACKING_PASSWORD"],
        },
    )
    api_calls: list[str] = []
    statuses: dict[int, int] = {}

    def on_response(response) -> None:
        if "/ajax-api/" in response.url or "/api/" in urlsplit(response.url).path:
            api_calls.append(response.url)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    try:
        page = context.new_page()
        page.on("response", on_response)
        page.set_default_timeout(UI_LOAD_BOUND_S * 2 * 1000)
        start = time.perf_counter()
        page.goto(_url(user_env, "/"), timeout=UI_LOAD_BOUND_S * 2 * 1000)
        page.get_by_role("link", name="Default", exact=True).first.wait_for()
        elapsed = time.perf_counter() - start
        report(
            f"MLflow UI (headless Chromium, signed in): home page with the Default experiment listed in "
            f"{elapsed:.2f} s, {len(api_calls)} API calls (statuses {dict(sorted(statuses.items()))}); "
            f"bound {UI_LOAD_BOUND_S:.0f} s"
        )
        assert statuses.get(200, 0) > 0, statuses
        assert not {s for s in statuses if s >= 500 or s == 429}, statuses
        assert elapsed < UI_LOAD_BOUND_S, f"the home page took {elapsed:.1f} s"
    finally:
        context.close()


def _flood(env, stop: threading.Event, statuses: dict[int, int], lock: threading.Lock) -> float:
    """FLOOD_REQUESTS wrong passwords for the user of client.env, paced over FLOOD_SECONDS from
    8 threads; returns how long it took."""
    start = time.perf_counter()

    def guess(i: int) -> None:
        if stop.is_set():
            return
        try:
            status = _cheap_call(env, password=f"wrong-password-{i}").status_code
        except requests.RequestException:
            status = -1
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i in range(FLOOD_REQUESTS):
            pause = start + i * FLOOD_SECONDS / FLOOD_REQUESTS - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(guess, i)
    return time.perf_counter() - start


def test_a_flood_of_wrong_passwords_does_not_starve_a_signed_in_user(user_env):
    host = urlsplit(user_env["MLFLOW_TRACKING_URI"]).hostname
    if host not in LAB_HOSTS:
        pytest.skip(f"the flood runs against the lab's own address only, not {host}")
    _warm_up(user_env)
    baseline = []
    for _ in range(BASELINE_CALLS):
        elapsed, resp = _timed(_cheap_call, user_env)
        assert resp.status_code == 200, resp.text[:300]
        baseline.append(elapsed)

    stop, lock = threading.Event(), threading.Lock()
    flood_statuses: dict[int, int] = {}
    during: list[float] = []
    legit_statuses: dict[int, int] = {}
    result: dict[str, float] = {}
    flooder = threading.Thread(target=lambda: result.update(seconds=_flood(user_env, stop, flood_statuses, lock)))
    flooder.start()
    try:
        while flooder.is_alive():
            elapsed, resp = _timed(_cheap_call, user_env)
            legit_statuses[resp.status_code] = legit_statuses.get(resp.status_code, 0) + 1
            during.append(elapsed)
    finally:
        stop.set()
        flooder.join(timeout=120)

    p95_base, p95_flood = percentile(baseline, 95), percentile(during, 95)
    bound = 2 * max(p95_base, JITTER_FLOOR_S)
    report(
        f"MLflow wrong-password flood: {sum(flood_statuses.values())} requests in {result.get('seconds', 0):.1f} s "
        f"(statuses {dict(sorted(flood_statuses.items()))}); a signed-in user's experiments/get: baseline "
        f"p50 {median(baseline) * 1000:.1f} ms p95 {p95_base * 1000:.1f} ms ({len(baseline)} calls), during the "
        f"flood p50 {median(during) * 1000:.1f} ms p95 {p95_flood * 1000:.1f} ms ({len(during)} calls, statuses "
        f"{dict(sorted(legit_statuses.items()))}); bound {bound * 1000:.1f} ms"
    )
    assert set(legit_statuses) == {200}, f"the signed-in user was refused during the flood: {legit_statuses}"
    assert sum(flood_statuses.values()) == FLOOD_REQUESTS, flood_statuses
    assert set(flood_statuses) <= {401, 429}, f"a wrong password got something else: {flood_statuses}"
    assert p95_flood <= bound, (
        f"the flood slowed the signed-in user: p95 {p95_flood * 1000:.0f} ms > 2x baseline ({bound * 1000:.0f} ms)"
    )
    assert flood_statuses.get(429, 0) > 0, "no wrong password was throttled (mlflow_auth_failed_login_limit)"
    # The address's budget must not lock the user out afterwards either.
    assert _cheap_call(user_env).status_code == 200
