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
}
INFRA = OCI_INFRA


def _render(tmp_path: Path, host: str, names: list[str]) -> dict[str, str]:
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **INFRA},
            "children": {
                group: {"hosts": {public: {"private_ip": private, "public_ip": public}}}
                for public, (group, private) in HOSTS.items()
            },
        },
    }
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    result = ansible_debug(
        path,
        host,
        "msg={{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )
    return result["msg"]


@pytest.fixture(scope="module")
def api_host(tmp_path_factory):
    return _render(
        tmp_path_factory.mktemp("api"),
        "203.0.113.12",
        ["model_api_mlflow_tracking_uri", "dashboard_api_url", "dashboard_mlflow_tracking_uri"],
    )


def test_the_api_reaches_mlflow_by_private_address(api_host):
    assert api_host["model_api_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"
    assert api_host["dashboard_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"


def test_the_dashboard_reaches_the_api_by_private_address(api_host):
    assert api_host["dashboard_api_url"] == f"http://10.0.1.12:{API_PORT}"


def test_airflow_and_mlflow_reach_the_db_system_and_object_storage(tmp_path):
    airflow = _render(tmp_path, "203.0.113.11", ["airflow_mlflow_tracking_uri", "airflow_database_url"])
    assert airflow["airflow_mlflow_tracking_uri"] == f"http://10.0.1.10:{MLFLOW_PORT}"
    assert f"@10.0.2.5:{DB_PORT}/airflow" in airflow["airflow_database_url"]
    mlflow = _render(tmp_path, "203.0.113.10", ["mlflow_backend_store_uri", "mlflow_s3_endpoint_url"])
    assert f"@10.0.2.5:{DB_PORT}/mlflow" in mlflow["mlflow_backend_store_uri"]
    assert mlflow["mlflow_s3_endpoint_url"] == "https://nsx.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"


def test_no_public_address_is_wired(api_host):
    assert not [v for v in api_host.values() if "203.0.113." in v], api_host


def test_client_env_on_oci_gives_users_each_published_service_at_the_topology_port(tmp_path):
    """Users are outside the VCN: client.env names the hosts as the inventory
    reaches them (here their public IPs) with the topology's ports."""
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
    public = {group: ip for ip, (group, _) in HOSTS.items()}
    expect = {
        "MLFLOW_TRACKING_URI": "mlflow",
        "AIRFLOW_URL": "airflow",
        "OCI_MLOPS_API_URL": "api",
        "OCI_MLOPS_DASHBOARD_URL": "dashboard",
    }
    for var, service in expect.items():
        svc = SERVICES[service]
        assert lines[var] == f"http://{public[svc['group']]}:{svc['port']}", var


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
