"""The front door (the edge, issue #14) as users and attackers meet it, from the control node.

Everything users reach is https:// through the edge, trusted with the CA
bundle client.env names (the lab CA): the backends' own ports refuse the
control node, plain HTTP only redirects, TLS below 1.2 and weak TLS 1.2
ciphers are refused by the server, every response carries HSTS and the
security headers, a body above a route's cap gets 413, and the edge
certificate is re-issued and the edge converged under a bounded load loop
without losing a request or restarting nginx (a reload).

The backend addresses and the edge host come from the inventory's own files
(group -> hosts) and `docker inspect` (the lab's hosts are containers): this
module, unlike the others, looks behind the front door to check it is shut.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from conftest import INVENTORY, ROOT, report

TOPOLOGY = yaml.safe_load(
    (ROOT / "ansible/roles/platform_defaults/defaults/main/topology.yml").read_text(encoding="utf-8")
)["oci_mlops_topology"]
ROUTE_OPTIONS = yaml.safe_load(
    (ROOT / "ansible/roles/platform_defaults/defaults/main/edge.yml").read_text(encoding="utf-8")
)["oci_mlops_edge_route_options"]
SERVICES = TOPOLOGY["services"]
ROUTED = {name: svc for name, svc in SERVICES.items() if "route" in svc}
URL_VARS = {
    "mlflow": "MLFLOW_TRACKING_URI",
    "airflow": "AIRFLOW_URL",
    "api": "OCI_MLOPS_API_URL",
    "dashboard": "OCI_MLOPS_DASHBOARD_URL",
}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "strict-origin-when-cross-origin",
}
# Rotation under load: at least this many requests over at least this long.
LOAD_MIN_REQUESTS = 200
LOAD_MIN_SECONDS = 20.0
LOAD_MAX_SECONDS = 900.0


def _size(value: str) -> int:
    """nginx size (10m, 512k, 1g) in bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    value = str(value).lower()
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


@pytest.fixture(scope="module")
def edge(user_env):
    """The edge as client.env names it: (host, https port, http port, CA bundle)."""
    parts = {urlsplit(user_env[var]) for var in URL_VARS.values()}
    origins = {(p.scheme, p.hostname, p.port or 443) for p in parts}
    assert len(origins) == 1, f"the services are not behind one front door: {sorted(origins)}"
    scheme, host, port = origins.pop()
    assert scheme == "https"
    offset = port - SERVICES["edge"]["port"]
    return {
        "host": host,
        "https": port,
        "http": SERVICES["edge"]["http_port"] + offset,
        "ca": user_env["OCI_MLOPS_CA_BUNDLE"],
        "base": f"https://{host}{'' if port == 443 else f':{port}'}",
    }


def _inventory_groups() -> dict[str, list[str]]:
    """{group: [hosts]} from the inventory directory's YAML files (hosts.yml, molecule's inventory)."""
    groups: dict[str, list[str]] = {}

    def walk(name: str, node: dict) -> None:
        node = node or {}
        groups.setdefault(name, [])
        groups[name] += [h for h in (node.get("hosts") or {}) if h not in groups[name]]
        for child, sub in (node.get("children") or {}).items():
            walk(child, sub)

    for path in sorted(INVENTORY.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, node in data.items():
            if isinstance(node, dict):
                walk(name, node)
    return groups


def _container_address(name: str) -> str:
    data = json.loads(subprocess.check_output(["docker", "inspect", name], timeout=30))[0]
    return next(iter(data["NetworkSettings"]["Networks"].values()))["IPAddress"]


@pytest.fixture(scope="module")
def hosts():
    if shutil.which("docker") is None:
        pytest.skip("no docker on this machine: the backend addresses are the lab containers'")
    groups = _inventory_groups()
    assert groups.get("edge"), f"{INVENTORY} has no edge host"
    return groups


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:  # refused, unreachable (firewalld's reject) or timed out (dropped)
        return False


def test_the_edge_is_reachable_on_its_private_address(hosts):
    """The probe below can connect: the edge's own 443 answers the control node."""
    address = _container_address(hosts["edge"][0])
    assert _connects(address, SERVICES["edge"]["port"]), f"the edge's {address}:443 refuses the control node"


@pytest.mark.parametrize("service", sorted(ROUTED))
def test_each_backend_port_refuses_the_control_node(hosts, edge, service):
    svc = ROUTED[service]
    offset = edge["https"] - SERVICES["edge"]["port"]
    assert hosts.get(svc["group"]), f"no {svc['group']} host"
    for host in hosts[svc["group"]]:
        address = _container_address(host)
        assert not _connects(address, svc["port"]), f"{service}: {host} {address}:{svc['port']} is reachable"
    # Nor published on the control node's loopback (as the lab did before the edge): the edge alone is.
    published = svc["port"] + offset
    assert not _connects("127.0.0.1", published), f"{service}: 127.0.0.1:{published} is published"


def test_http_only_redirects_to_https(edge):
    for name, svc in ROUTED.items():
        resp = requests.get(
            f"http://{edge['host']}:{edge['http']}{svc['route']}?x=1", allow_redirects=False, timeout=30
        )
        assert resp.status_code == 301, f"{name}: {resp.status_code}"
        assert resp.headers["location"] == f"{edge['base']}{svc['route']}?x=1", resp.headers["location"]


def test_every_route_sends_hsts_and_the_security_headers(edge, user_env):
    for name, var in URL_VARS.items():
        resp = requests.get(user_env[var].rstrip("/") + "/", timeout=60, verify=edge["ca"], allow_redirects=False)
        hsts = resp.headers.get("strict-transport-security", "")
        assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 15552000, (name, hsts)
        for header, value in SECURITY_HEADERS.items():
            assert resp.headers.get(header) == value, (name, header, resp.headers.get(header))
        assert "nginx/" not in resp.headers.get("server", ""), (name, resp.headers.get("server"))


def _handshake(edge, version: ssl.TLSVersion, ciphers: str | None = None) -> str:
    ctx = ssl.create_default_context(cafile=edge["ca"])
    # Let this client offer what the server must refuse (OpenSSL 3 refuses old versions itself).
    ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    with (
        socket.create_connection((edge["host"], edge["https"]), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=edge["host"]) as tls,
    ):
        return str(tls.version())


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_below_1_2_is_refused_by_the_server(edge, version):
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(edge, getattr(ssl.TLSVersion, version))
    # The server's protocol-version alert, not this client's own refusal.
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value) or "UNSUPPORTED_PROTOCOL" in str(refused.value)
    report(f"front door: {version} refused ({refused.value.reason})")


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_1_2_and_1_3_are_accepted_with_the_lab_ca(edge, version):
    assert _handshake(edge, getattr(ssl.TLSVersion, version)) == version.replace("_", ".")


@pytest.mark.parametrize(
    "ciphers",
    [
        "AES128-SHA",
        "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA",
        "DHE-RSA-AES128-GCM-SHA256",
        # CBC suites with the edge's own key type (only AEAD is served). Not RC4/3DES:
        # this client's OpenSSL refuses to offer them, so that case could not fail.
        "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256",
    ],
)
def test_weak_tls_1_2_ciphers_are_refused(edge, ciphers):
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(edge, ssl.TLSVersion.TLSv1_2, ciphers)
    assert "HANDSHAKE_FAILURE" in str(refused.value) or "NO_CIPHER" in str(refused.value), refused.value


def test_a_body_above_the_routes_cap_gets_413(edge, user_env):
    """The edge refuses a body over the route's cap (10 MB) with its own 413; under it the API's
    own, smaller cap (model_api_max_body_bytes, 2 MiB) answers: a JSON 413 that says the limit."""
    cap = _size(ROUTE_OPTIONS["api"]["body_max"])
    api_cap = int(
        yaml.safe_load((ROOT / "ansible/roles/model_api/defaults/main.yml").read_text(encoding="utf-8"))[
            "model_api_max_body_bytes"
        ]
    )
    assert api_cap < cap // 2
    url = f"{user_env['OCI_MLOPS_API_URL']}/predict/iris-classifier/champion"
    headers = {"Content-Type": "application/json", "X-API-Key": user_env["OCI_MLOPS_API_KEY"]}
    small = requests.post(url, data=b" " * (api_cap // 2), headers=headers, timeout=120, verify=edge["ca"])
    assert small.status_code == 422, small.status_code  # read and decoded: blanks are no JSON
    under = requests.post(url, data=b" " * (cap // 2), headers=headers, timeout=120, verify=edge["ca"])
    assert under.status_code == 413, under.status_code
    assert f"limit of {api_cap} bytes" in under.json()["detail"], under.text[:300]
    over = requests.post(url, data=b" " * (cap + 1024), headers=headers, timeout=120, verify=edge["ca"])
    assert over.status_code == 413, over.status_code
    assert not over.headers.get("content-type", "").startswith("application/json"), "not the edge's 413"
    report(
        f"front door: api body caps: edge {ROUTE_OPTIONS['api']['body_max']}, API {api_cap} B: "
        f"{api_cap // 2} B -> {small.status_code}, {cap // 2} B -> 413 (API), {cap + 1024} B -> 413 (edge)"
    )


def test_the_dashboard_asks_for_a_sign_in_then_shows_the_models(browser, user_env):
    """Through the edge (base path, websocket): the sign-in form, then the models table.
    (conftest's browser trusts exactly the certificates the user's CA bundle verifies.)"""
    import test_5_dashboard as dash

    page = dash._fresh_page(browser, user_env)
    try:
        assert page.url.startswith("https://") and "/dashboard" in page.url, page.url
        assert page.get_by_role("tab").count() == 0
        assert page.locator("[data-testid='stDataFrame']").count() == 0
        dash._sign_in(page, user_env["MLFLOW_TRACKING_USERNAME"], user_env["MLFLOW_TRACKING_PASSWORD"])
        page.get_by_role("tab", name="Registered models").wait_for()
        page.locator("[data-testid='stDataFrame']").first.wait_for(state="attached")
    finally:
        page.context.close()


def _ansible_playbook() -> str:
    local = ROOT / ".venv" / "bin" / "ansible-playbook"
    return str(local) if local.exists() else (shutil.which("ansible-playbook") or "ansible-playbook")


def _nginx_master_pid(container: str) -> int:
    pid = subprocess.run(
        ["docker", "exec", container, "cat", "/run/nginx/nginx.pid"], capture_output=True, text=True, timeout=30
    )
    assert pid.returncode == 0, pid.stderr
    return int(pid.stdout.strip())


def _peer_certificate(edge) -> bytes:
    ctx = ssl.create_default_context(cafile=edge["ca"])
    with (
        socket.create_connection((edge["host"], edge["https"]), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=edge["host"]) as tls,
    ):
        cert = tls.getpeercert(binary_form=True)
    assert cert
    return cert


def test_certificate_rotation_under_load_loses_no_request(edge, hosts, user_env):
    """Re-issue the edge certificate from the lab CA and converge the edge while a bounded
    loop of new HTTPS connections (lab addresses only) runs: no failed request, and the same
    nginx master (a reload, not a restart)."""
    assert edge["host"] in ("localhost", "127.0.0.1"), f"the load loop runs on lab addresses only, not {edge['host']}"
    container = hosts["edge"][0]
    lab_ca = INVENTORY / ".secrets" / "lab-ca"
    assert (lab_ca / "edge.crt").is_file(), f"no lab edge certificate in {lab_ca}"
    pid_before = _nginx_master_pid(container)
    cert_before = _peer_certificate(edge)
    url = f"{user_env['OCI_MLOPS_API_URL']}/health"
    results: list[tuple[float, int | str]] = []
    converged = threading.Event()

    def load() -> None:
        start = time.monotonic()
        while time.monotonic() - start < LOAD_MAX_SECONDS:
            done = converged.is_set() and len(results) >= LOAD_MIN_REQUESTS
            if done and time.monotonic() - start >= LOAD_MIN_SECONDS:
                return
            t0 = time.monotonic()
            try:
                # A new connection (and TLS handshake) per request: each one meets the current certificate.
                with requests.Session() as session:
                    status: int | str = session.get(url, timeout=30, verify=edge["ca"]).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            results.append((time.monotonic() - t0, status))
            time.sleep(0.05)

    loader = threading.Thread(target=load, daemon=True)
    started = time.monotonic()
    loader.start()
    time.sleep(2)
    # Re-issue: the lab CA issues a missing certificate; the edge installs it and reloads.
    (lab_ca / "edge.crt").unlink()
    # As an operator runs it (molecule/site's sitekit.playbook too).
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(ROOT / "ansible" / "roles"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"),
    )
    converge = subprocess.run(
        [_ansible_playbook(), "-i", str(INVENTORY), "site.yml", "--tags", "edge", "--limit", container],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    converged.set()
    loader.join(LOAD_MAX_SECONDS + 60)
    seconds = time.monotonic() - started
    assert converge.returncode == 0, converge.stdout[-5000:] + converge.stderr[-3000:]
    failed = [status for _, status in results if status != 200]
    latencies = sorted(latency for latency, _ in results)
    pid_after = _nginx_master_pid(container)
    cert_after = _peer_certificate(edge)
    report(
        f"front door: certificate rotation under load: {len(results)} requests over {seconds:.1f} s, "
        f"{len(failed)} failed {failed[:10]}; latency median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
        f"nginx master PID {pid_before} -> {pid_after}; certificate changed: {cert_after != cert_before}"
    )
    assert len(results) >= LOAD_MIN_REQUESTS and seconds >= LOAD_MIN_SECONDS, (len(results), seconds)
    assert not failed, f"{len(failed)} of {len(results)} requests failed during the rotation: {failed[:20]}"
    assert cert_after != cert_before, "the edge still serves the old certificate"
    assert pid_after == pid_before, "nginx was restarted, not reloaded"
