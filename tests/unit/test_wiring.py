"""Services reach each other by private address, whatever the inventory calls the hosts.

With Terraform's public-IP hostname mode (inventory_hostname_format =
public_ip, the no-bastion option) the oracle.oci inventory names every
instance by its public IP and sets `private_ip` on it. The wiring must use the
private addresses: the NSGs open the service ports between hosts inside the
VCN only. The platform's variables are rendered with Ansible itself (ad-hoc
`debug` with the playbooks' group_vars) on a fake inventory of that shape.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Public IP -> (group, private IP): what oracle.oci gives with hostname_format public_ip.
HOSTS = {
    "203.0.113.10": ("mlflow", "10.0.1.10"),
    "203.0.113.11": ("airflow", "10.0.1.11"),
    "203.0.113.12": ("api", "10.0.1.12"),
}
INFRA = {
    "infra_region": "eu-frankfurt-1",
    "infra_namespace": "nsx",
    "infra_compartment_ocid": "ocid1.compartment.oc1..x",
    "infra_artifacts_bucket": "mlops-artifacts",
    "infra_dags_bucket": "mlops-dags",
    "infra_db_endpoint": "10.0.2.5",
    "infra_db_admin_user": "admin",
}


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
    env = dict(
        os.environ,
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    run = subprocess.run(
        [
            "ansible",
            host,
            "-i",
            str(path),
            "--playbook-dir",
            str(ROOT / "ansible" / "playbooks"),
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} }}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])  # after the timer callbacks' lines
    result = report["plays"][0]["tasks"][0]["hosts"][host]
    return result["msg"]


@pytest.fixture(scope="module")
def api_host(tmp_path_factory):
    return _render(
        tmp_path_factory.mktemp("api"),
        "203.0.113.12",
        ["model_api_mlflow_tracking_uri", "dashboard_api_url", "dashboard_mlflow_tracking_uri"],
    )


def test_the_api_reaches_mlflow_by_private_address(api_host):
    assert api_host["model_api_mlflow_tracking_uri"] == "http://10.0.1.10:5000"
    assert api_host["dashboard_mlflow_tracking_uri"] == "http://10.0.1.10:5000"


def test_the_dashboard_reaches_the_api_by_private_address(api_host):
    assert api_host["dashboard_api_url"] == "http://10.0.1.12:8000"


def test_airflow_and_mlflow_reach_the_db_system_and_object_storage(tmp_path):
    airflow = _render(tmp_path, "203.0.113.11", ["airflow_mlflow_tracking_uri", "airflow_database_url"])
    assert airflow["airflow_mlflow_tracking_uri"] == "http://10.0.1.10:5000"
    assert "@10.0.2.5:3306/airflow" in airflow["airflow_database_url"]
    mlflow = _render(tmp_path, "203.0.113.10", ["mlflow_backend_store_uri", "mlflow_s3_endpoint_url"])
    assert "@10.0.2.5:3306/mlflow" in mlflow["mlflow_backend_store_uri"]
    assert mlflow["mlflow_s3_endpoint_url"] == "https://nsx.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"


def test_no_public_address_is_wired(api_host):
    assert not [v for v in api_host.values() if "203.0.113." in v], api_host
