"""Services reach each other by private address, whatever the inventory calls the hosts.

Whatever the oracle.oci inventory names an instance by (Terraform's inventory
uses private IPs, an inventory with hostname_format public_ip the public
ones), it sets `private_ip` on it. The wiring must use the private addresses:
the NSGs open the service ports between hosts inside the VCN only. The
platform's variables are rendered with Ansible itself (a play
loading platform_defaults, conftest.ansible_debug) on a fake inventory of that shape.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, ROOT, ansible_debug

# Ports come from the topology (the wiring must not restate them).
SERVICES = yaml.safe_load(
    (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml").read_text(
        encoding="utf-8"
    )
)["oci_mlops_topology"]["services"]
MLFLOW_PORT, API_PORT, DB_PORT = (SERVICES[s]["port"] for s in ("mlflow", "api", "mysql"))

# Public IP -> (group, private IP): what oracle.oci gives with hostname_format public_ip.
HOSTS = {
    "203.0.113.10": ("mlflow", "10.0.1.10"),
    "203.0.113.11": ("airflow", "10.0.1.11"),
    "203.0.113.12": ("api", "10.0.1.12"),
    "203.0.113.13": ("edge", "10.0.1.13"),
}
INFRA = OCI_INFRA


def _render_hosts(tmp_path: Path, wanted: dict[str, list[str]], hosts: dict | None = None) -> dict[str, dict]:
    """{host: {name: value}} for each host of WANTED ({host: names}) on the
    inventory HOSTS (default: the module's), in one ansible-playbook."""
    children: dict[str, dict] = {}
    for public, (group, private) in (HOSTS if hosts is None else hosts).items():
        host_vars = {"private_ip": private, "public_ip": public, "wiring_names": wanted.get(public, [])}
        children.setdefault(group, {"hosts": {}})["hosts"][public] = host_vars
    inventory = {"all": {"vars": {"ansible_connection": "local", **INFRA}, "children": children}}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    result = ansible_debug(
        path,
        ",".join(wanted),
        "msg={{ dict(wiring_names | zip(query('ansible.builtin.vars', *wiring_names))) }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )
    if len(wanted) == 1:
        result = {next(iter(wanted)): result}
    return {host: result[host]["msg"] for host in wanted}


def _render(tmp_path: Path, host: str, names: list[str], hosts: dict | None = None) -> dict:
    return _render_hosts(tmp_path, {host: names}, hosts)[host]


def _pick(values: dict, names: list[str]) -> dict:
    return {n: values[n] for n in names}


# What the tests on the module's inventory (HOSTS) read, by host: rendered
# once for all of them (default_wiring).
DEFAULT_NAMES = {
    "203.0.113.10": [
        "mlflow_backend_store_uri",
        "mlflow_s3_endpoint_url",
        "mlflow_host",
        "mlflow_allowed_hosts",
        "mlflow_auth_trusted_proxies",
    ],
    "203.0.113.11": [
        "airflow_mlflow_tracking_uri",
        "airflow_database_url",
        "airflow_api_host",
        "airflow_base_url",
        "airflow_client_cidrs",
        "airflow_forwarded_allow_ips",
    ],
    "203.0.113.12": [
        "model_api_mlflow_tracking_uri",
        "dashboard_api_url",
        "dashboard_mlflow_tracking_uri",
        "model_api_root_path",
        "model_api_forwarded_allow_ips",
        "dashboard_base_path",
        "dashboard_forwarded_allow_ips",
        "model_api_client_cidrs",
        "model_api_restart_settle",
        "mlflow_restart_settle",
    ],
    "203.0.113.13": [
        "edge_routes",
        "oci_mlops_service_client_cidrs",
        "edge_landing_route",
        "oci_mlops_user_urls",
        "edge_peers_port",
        "edge_peers_client_cidrs",
    ],
}


@pytest.fixture(scope="module")
def default_wiring(tmp_path_factory):
    return _render_hosts(tmp_path_factory.mktemp("default"), DEFAULT_NAMES)


@pytest.fixture(scope="module")
def api_host(default_wiring):
    names = ["model_api_mlflow_tracking_uri", "dashboard_api_url", "dashboard_mlflow_tracking_uri"]
    return _pick(default_wiring["203.0.113.12"], names)


def test_the_api_reaches_mlflow_by_private_address(api_host):
    assert api_host["model_api_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"
    assert api_host["dashboard_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"


def test_the_dashboard_reaches_the_api_by_private_address(api_host):
    assert api_host["dashboard_api_url"] == f"http://10.0.1.12:{API_PORT}"


def test_airflow_and_mlflow_reach_the_db_system_and_object_storage(default_wiring):
    airflow = default_wiring["203.0.113.11"]
    assert airflow["airflow_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"
    assert f"@10.0.2.5:{DB_PORT}/airflow" in airflow["airflow_database_url"]
    mlflow = default_wiring["203.0.113.10"]
    assert f"@10.0.2.5:{DB_PORT}/mlflow" in mlflow["mlflow_backend_store_uri"]
    assert mlflow["mlflow_s3_endpoint_url"] == "https://nsx.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"


def test_no_public_address_is_wired(api_host):
    assert not [v for v in api_host.values() if "203.0.113." in v], api_host


ROUTED = ["mlflow", "airflow", "api", "dashboard"]


@pytest.fixture(scope="module")
def edge_wiring(default_wiring):
    """The front door's wiring as the edge host sees it, on the OCI inventory
    whose hostnames are public IPs."""
    return default_wiring["203.0.113.13"]


def test_the_edge_routes_each_service_to_its_private_address(edge_wiring):
    routes = {r["name"]: r for r in edge_wiring["edge_routes"]}
    assert list(routes) == ROUTED
    private = {group: ip for _, (group, ip) in HOSTS.items()}
    for name, route in routes.items():
        svc = SERVICES[name]
        assert route["path"] == svc["route"], name
        assert route["upstreams"] == [f"http://{private[svc['group']]}:{svc['port']}"], name
        assert "203.0.113." not in json.dumps(route), name
    # MLflow's REST API is at its root (only its UI moves with --static-prefix): stripped.
    assert routes["mlflow"]["strip_prefix"] is True
    assert routes["api"]["strip_prefix"] is True
    assert not routes["airflow"].get("strip_prefix") and not routes["dashboard"].get("strip_prefix")
    assert routes["dashboard"]["websocket"] is True and routes["dashboard"]["sticky"] is True
    # Predictions are retried on the next API host; MLflow's writes never are.
    assert routes["api"]["retry_non_idempotent"] is True
    assert not any(routes[n].get("retry_non_idempotent") for n in ("mlflow", "airflow", "dashboard"))
    assert set(routes["airflow"]["rate_limited_paths"]) == {"/airflow/auth/login", "/airflow/auth/token"}
    assert all(r.get("body_max") for r in routes.values())
    assert edge_wiring["edge_landing_route"] in routes


def test_routed_services_admit_only_their_clients_private_addresses(edge_wiring):
    cidrs = edge_wiring["oci_mlops_service_client_cidrs"]
    assert sorted(cidrs) == sorted(ROUTED)
    private = {group: ip for _, (group, ip) in HOSTS.items()}
    for name in ROUTED:
        want = sorted(f"{private[group]}/32" for group in SERVICES[name]["clients"] if group in private)
        assert sorted(cidrs[name]) == want, name
        assert f"{private['edge']}/32" in cidrs[name], name


def test_users_reach_every_routed_service_over_https_through_the_edge(edge_wiring):
    assert edge_wiring["oci_mlops_user_urls"] == {
        name: f"https://203.0.113.13{SERVICES[name]['route']}" for name in ROUTED
    }


def test_the_backends_listen_privately_and_trust_the_edge(default_wiring):
    api = default_wiring["203.0.113.12"]
    assert api["model_api_root_path"] == "/api" and api["dashboard_base_path"] == "/dashboard"
    assert api["model_api_forwarded_allow_ips"] == ["10.0.1.13"]
    assert api["dashboard_forwarded_allow_ips"] == ["10.0.1.13"]
    assert sorted(api["model_api_client_cidrs"]) == ["10.0.1.12/32", "10.0.1.13/32"]
    names = ["airflow_api_host", "airflow_base_url", "airflow_client_cidrs", "airflow_forwarded_allow_ips"]
    airflow = _pick(default_wiring["203.0.113.11"], names)
    assert airflow == {
        "airflow_api_host": "10.0.1.11",
        "airflow_base_url": "https://203.0.113.13/airflow",
        "airflow_client_cidrs": ["10.0.1.13/32"],
        "airflow_forwarded_allow_ips": ["10.0.1.13"],
    }
    mlflow = _pick(
        default_wiring["203.0.113.10"], ["mlflow_host", "mlflow_allowed_hosts", "mlflow_auth_trusted_proxies"]
    )
    assert mlflow == {
        "mlflow_host": "10.0.1.10",
        "mlflow_allowed_hosts": ["203.0.113.13"],
        # the edge, and the dashboard's host (it forwards the browser's address with each sign-in)
        "mlflow_auth_trusted_proxies": ["10.0.1.13", "10.0.1.12"],
    }


def test_without_an_edge_host_the_services_stay_as_they_were(tmp_path):
    """An inventory without an edge (the airflow molecule scenario): every
    address, the platform-wide client CIDRs, no base URL or prefix."""
    hosts = {public: spec for public, spec in HOSTS.items() if spec[0] != "edge"}
    got = _render(
        tmp_path,
        "203.0.113.11",
        [
            "airflow_api_host",
            "airflow_base_url",
            "airflow_forwarded_allow_ips",
            "airflow_client_cidrs",
            "oci_mlops_service_client_cidrs",
        ],
        hosts=hosts,
    )
    assert got == {
        "airflow_api_host": "0.0.0.0",
        "airflow_base_url": "",
        "airflow_forwarded_allow_ips": [],
        "airflow_client_cidrs": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        "oci_mlops_service_client_cidrs": {},
    }


def test_client_env_on_oci_gives_users_each_service_over_https_through_the_edge(tmp_path):
    """Users are outside the VCN: client.env names the edge as the inventory
    reaches it (here its public IP), each service under its route, and the CA
    bundle next to it."""
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **INFRA},
            "children": {
                group: {"hosts": {public: {"private_ip": private}}} for public, (group, private) in HOSTS.items()
            },
        }
    }
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    secrets = tmp_path / "secrets"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), OCI_MLOPS_SECRETS_DIR=str(secrets))
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(tmp_path / "hosts.json"),
            "-e",
            f"oci_mlops_secrets_dir={secrets}",
            str(ROOT / "ansible" / "playbooks" / "client-env.yml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (secrets / "client.env").read_text().splitlines()
        if line.startswith("export ")
    )
    expect = {
        "MLFLOW_TRACKING_URI": "https://203.0.113.13/mlflow",
        "AIRFLOW_URL": "https://203.0.113.13/airflow",
        "OCI_MLOPS_API_URL": "https://203.0.113.13/api",
        "OCI_MLOPS_DASHBOARD_URL": "https://203.0.113.13/dashboard/",
    }
    for var, url in expect.items():
        assert lines[var] == url, var
    assert not [line for line in lines.values() if line.startswith("http:")]
    bundle = secrets / "ca-bundle.pem"
    assert lines["OCI_MLOPS_CA_BUNDLE"] == str(bundle)
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "MLFLOW_TRACKING_SERVER_CERT_PATH"):
        assert lines[var] == '"$OCI_MLOPS_CA_BUNDLE"', var
    assert "BEGIN CERTIFICATE" in bundle.read_text()


def test_the_inventory_wins_over_the_platform_defaults(tmp_path):
    """The platform's settings are defaults (platform_defaults): an inventory's
    group_vars/all beats them, for a platform variable and for a role input
    the platform sets."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"ansible_connection": "local", **INFRA},
                    "children": {
                        group: {"hosts": {public: {"private_ip": private}}}
                        for public, (group, private) in HOSTS.items()
                    },
                }
            }
        )
    )
    (inventory / "group_vars" / "all" / "site.yml").write_text(
        yaml.safe_dump({"oci_mlops_s3_region": "from-the-inventory", "airflow_dag_sync_backend": "s3"})
    )
    got = ansible_debug(
        inventory,
        "203.0.113.11",
        "msg={{ [oci_mlops_s3_region, mlflow_s3_region, airflow_dag_sync_backend, airflow_dag_sync_bucket] }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )["msg"]
    # the overridden ones, one derived from the override, one left to the defaults
    assert got == ["from-the-inventory", "from-the-inventory", "s3", INFRA["infra_dags_bucket"]]


def test_the_lab_certificate_lookup_does_not_fail_before_the_lab_ca_exists(tmp_path):
    """Check mode on a never-converged lab: no lab CA yet, the certificate is
    empty (the edge role skips what needs it in check mode) rather than a
    failed lookup."""
    got = ansible_debug(
        ROOT / "inventory" / "lab",
        "localhost",
        "msg={{ [edge_tls_certificate, edge_tls_private_key, oci_mlops_lab_ca_dir] }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path),
    )["msg"]
    assert got == ["", "", f"{tmp_path}/lab-ca"]


# Two mlflow and two api hosts behind the edge (docs/scaling.md).
SCALED = {
    **HOSTS,
    "203.0.113.20": ("mlflow", "10.0.1.20"),
    "203.0.113.22": ("api", "10.0.1.22"),
}


# What the tests on SCALED read, by host: rendered once (scaled_wiring).
PEERS_NAMES = ["model_api_mlflow_tracking_uri", "dashboard_mlflow_tracking_uri", "dashboard_api_url"]
SETTLE_NAMES = ["model_api_restart_settle", "mlflow_restart_settle"]
MLFLOW_ONE_HOST_NAMES = ["mlflow_db_migration_host", "mlflow_gc_enabled", "mlflow_manage_users"]
SCALED_NAMES = {
    "203.0.113.10": MLFLOW_ONE_HOST_NAMES,
    "203.0.113.11": ["airflow_mlflow_tracking_uri"],
    "203.0.113.12": PEERS_NAMES,
    "203.0.113.13": [
        "edge_routes",
        "edge_peers_port",
        "edge_peers_address",
        "edge_peers_client_cidrs",
        "edge_peers_trusted_proxy_cidrs",
        "oci_mlops_unscalable_services",
    ],
    "203.0.113.20": [*MLFLOW_ONE_HOST_NAMES, "mlflow_allowed_hosts"],
    "203.0.113.22": PEERS_NAMES + SETTLE_NAMES,
}


@pytest.fixture(scope="module")
def scaled_wiring(tmp_path_factory):
    return _render_hosts(tmp_path_factory.mktemp("scaled"), SCALED_NAMES, hosts=SCALED)


@pytest.fixture(scope="module")
def scaled_edge(scaled_wiring):
    return scaled_wiring["203.0.113.13"]


def test_the_edge_balances_over_every_host_of_a_scaled_group(scaled_edge):
    upstreams = {r["name"]: r["upstreams"] for r in scaled_edge["edge_routes"]}
    assert upstreams == {
        "mlflow": [f"http://10.0.1.10:{MLFLOW_PORT}", f"http://10.0.1.20:{MLFLOW_PORT}"],
        "airflow": [f"http://10.0.1.11:{SERVICES['airflow']['port']}"],
        "api": [f"http://10.0.1.12:{API_PORT}", f"http://10.0.1.22:{API_PORT}"],
        "dashboard": [
            f"http://10.0.1.12:{SERVICES['dashboard']['port']}",
            f"http://10.0.1.22:{SERVICES['dashboard']['port']}",
        ],
    }
    assert scaled_edge["oci_mlops_unscalable_services"] == []


def test_the_peers_listener_opens_to_the_peers_only(scaled_edge):
    assert scaled_edge["edge_peers_port"] == SERVICES["edge"]["peers_port"]
    assert scaled_edge["edge_peers_address"] == "10.0.1.13"
    # MLflow's clients (airflow, api) and the API's (api); never the edge's own
    # group, never a public address.
    assert sorted(scaled_edge["edge_peers_client_cidrs"]) == ["10.0.1.11/32", "10.0.1.12/32", "10.0.1.22/32"]
    assert sorted(scaled_edge["edge_peers_trusted_proxy_cidrs"]) == ["10.0.1.12/32", "10.0.1.22/32"]


def test_one_host_per_group_keeps_the_peers_listener_off(edge_wiring):
    got = _pick(edge_wiring, ["edge_peers_port", "edge_peers_client_cidrs"])
    assert got == {"edge_peers_port": 0, "edge_peers_client_cidrs": []}


def test_peers_reach_a_scaled_service_through_the_edge_and_the_dashboard_its_own_api(scaled_wiring):
    front = f"http://10.0.1.13:{SERVICES['edge']['peers_port']}"
    for host in ("203.0.113.12", "203.0.113.22"):
        api = _pick(scaled_wiring[host], PEERS_NAMES)
        own = SCALED[host][1]
        assert api == {
            "model_api_mlflow_tracking_uri": f"{front}/mlflow",
            "dashboard_mlflow_tracking_uri": f"{front}/mlflow",
            "dashboard_api_url": f"http://{own}:{API_PORT}",
        }, host
    airflow = scaled_wiring["203.0.113.11"]
    assert airflow["airflow_mlflow_tracking_uri"] == f"{front}/mlflow"


def test_restarts_behind_the_edge_wait_for_it_to_take_the_host_back(scaled_wiring, default_wiring):
    """Several hosts: the next host restarts only once the edge (fail timeout
    10 s) has taken the previous one back; one host: no wait."""
    assert _pick(scaled_wiring["203.0.113.22"], SETTLE_NAMES) == {
        "model_api_restart_settle": 11,
        "mlflow_restart_settle": 11,
    }
    assert _pick(default_wiring["203.0.113.12"], SETTLE_NAMES) == {
        "model_api_restart_settle": 0,
        "mlflow_restart_settle": 0,
    }


def test_mlflow_accepts_the_peers_host_header_through_the_edge(scaled_wiring):
    """Peers reach a scaled MLflow through the edge's peers' listener by the
    edge's private address, which the edge passes on as Host."""
    got = scaled_wiring["203.0.113.20"]
    assert got["mlflow_allowed_hosts"] == ["203.0.113.13", "10.0.1.13"]


def test_one_mlflow_host_migrates_collects_garbage_and_manages_the_users(scaled_wiring):
    first = _pick(scaled_wiring["203.0.113.10"], MLFLOW_ONE_HOST_NAMES)
    second = _pick(scaled_wiring["203.0.113.20"], MLFLOW_ONE_HOST_NAMES)
    assert first == {"mlflow_db_migration_host": "203.0.113.10", "mlflow_gc_enabled": True, "mlflow_manage_users": True}
    assert second == {
        "mlflow_db_migration_host": "203.0.113.10",
        "mlflow_gc_enabled": False,
        "mlflow_manage_users": False,
    }


@pytest.mark.parametrize(
    ("extra", "without_edge", "refused"),
    [
        (
            {"203.0.113.21": ("airflow", "10.0.1.21")},
            False,
            ["airflow (2 hosts in group airflow, which needs hosts in group airflow_worker)"],
        ),
        (
            {},
            True,
            ["mlflow (2 hosts in group mlflow)", "api (2 hosts in group api)", "dashboard (2 hosts in group api)"],
        ),
    ],
    ids=["airflow-without-workers", "no-edge"],
)
def test_several_hosts_where_the_platform_cannot_use_them_are_named(tmp_path, extra, without_edge, refused):
    hosts = {k: v for k, v in {**SCALED, **extra}.items() if not (without_edge and v[0] == "edge")}
    got = _render(tmp_path, "203.0.113.10", ["oci_mlops_unscalable_services"], hosts=hosts)
    assert got["oci_mlops_unscalable_services"] == refused


# Airflow's CeleryExecutor: a broker host and two Celery workers.
CELERY = {
    **HOSTS,
    "203.0.113.30": ("broker", "10.0.1.30"),
    "203.0.113.31": ("airflow_worker", "10.0.1.31"),
    "203.0.113.32": ("airflow_worker", "10.0.1.32"),
}
CELERY_NAMES = ["airflow_executor", "airflow_celery_broker_url", "airflow_celery_log_server_port"]


def test_without_workers_airflow_runs_its_tasks_itself(tmp_path):
    got = _render(tmp_path, "203.0.113.11", ["airflow_executor", "airflow_celery_broker_url"])
    assert got == {"airflow_executor": "LocalExecutor", "airflow_celery_broker_url": ""}


def test_workers_switch_airflow_to_celery_on_the_brokers_private_address(tmp_path):
    wanted = {
        "203.0.113.11": [*CELERY_NAMES, "airflow_client_cidrs"],
        "203.0.113.31": [*CELERY_NAMES, "airflow_mlflow_tracking_uri", "oci_mlops_unscalable_services"],
    }
    got = _render_hosts(tmp_path, wanted, hosts=CELERY)
    password = (tmp_path / "secrets" / "broker_password").read_text(encoding="utf-8").strip()
    assert len(password) >= 16
    broker = f"redis://:{password}@10.0.1.30:{SERVICES['broker']['port']}/0"
    for host in wanted:
        assert got[host]["airflow_executor"] == "CeleryExecutor"
        assert got[host]["airflow_celery_broker_url"] == broker
        assert got[host]["airflow_celery_log_server_port"] == SERVICES["airflow_worker"]["port"]
    # The workers call the execution API on the airflow host: its firewall admits their /32s.
    assert {"10.0.1.31/32", "10.0.1.32/32"} <= set(got["203.0.113.11"]["airflow_client_cidrs"])
    # Two workers need no edge in front (nothing calls them but the api-server, by address).
    assert got["203.0.113.31"]["oci_mlops_unscalable_services"] == []
    assert got["203.0.113.31"]["airflow_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        (set(), []),
        ({"203.0.113.30"}, ["one host in group broker (has 0)"]),
        ({"203.0.113.11"}, ["a host in group airflow"]),
    ],
    ids=["complete", "no-broker", "no-airflow"],
)
def test_workers_without_a_broker_or_a_scheduler_are_named(tmp_path, drop, missing):
    """platform.yml's first play stops the run with these, before any change."""
    hosts = {k: v for k, v in CELERY.items() if k not in drop}
    got = _render(tmp_path, "203.0.113.31", ["oci_mlops_celery_missing"], hosts=hosts)
    assert got["oci_mlops_celery_missing"] == missing


# Two airflow hosts (HA schedulers, two api-servers behind the edge), which
# the topology allows with Celery workers only (scale_out_requires).
AIRFLOW_HA = {
    **CELERY,
    "203.0.113.21": ("airflow", "10.0.1.21"),
}


def test_two_airflow_hosts_with_workers_share_one_dag_processor_and_the_edge(tmp_path):
    names = [
        "oci_mlops_unscalable_services",
        "airflow_dag_processor_host",
        "airflow_db_migration_host",
        "airflow_restart_settle",
        "oci_mlops_service_urls",
        "edge_peers_client_cidrs",
    ]
    got = _render_hosts(
        tmp_path, {"203.0.113.11": names, "203.0.113.21": names, "203.0.113.13": ["edge_routes"]}, hosts=AIRFLOW_HA
    )
    for host in ("203.0.113.11", "203.0.113.21"):
        values = got[host]
        assert values["oci_mlops_unscalable_services"] == []
        # One dag-processor, one migration, on the first airflow host of the inventory, named the same on both.
        assert values["airflow_dag_processor_host"] == "203.0.113.11"
        assert values["airflow_db_migration_host"] == "203.0.113.11"
        # Restarts roll: the next host restarts once the edge took this one back.
        assert values["airflow_restart_settle"] == 11
        # The workers reach the execution API through the edge's peers' listener, which admits them.
        assert (
            values["oci_mlops_service_urls"]["airflow"] == f"http://10.0.1.13:{SERVICES['edge']['peers_port']}/airflow"
        )
        assert {"10.0.1.31/32", "10.0.1.32/32"} <= set(values["edge_peers_client_cidrs"])
    route = next(r for r in got["203.0.113.13"]["edge_routes"] if r["name"] == "airflow")
    assert route["upstreams"] == [
        f"http://10.0.1.11:{SERVICES['airflow']['port']}",
        f"http://10.0.1.21:{SERVICES['airflow']['port']}",
    ]
