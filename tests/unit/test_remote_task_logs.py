"""Airflow's remote task logs (#18): with Celery workers each task's log also
goes to the task logs bucket, where the api-server reads it, so the log of a
task that ran on a worker outlives the worker.

Rendered with Ansible itself on fake inventories (conftest.ansible_debug):
the lab's scale shape (workers and a broker) turns remote logging on, with
the object store's writer endpoint (the task logs bucket alone) and its own
key pair, read by Airflow's local-filesystem secrets backend from a
credential file, never from the environment or airflow.cfg; the small shape
leaves it off; OCI writes through its S3 compatibility endpoint with the
vault's key pair. tests/scale/test_celery.py reads the logs of a lost
worker's tasks through the REST API.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, PLATFORM_DEFAULTS, ROLES, ROOT, render_names

TOPOLOGY = yaml.safe_load((PLATFORM_DEFAULTS / "topology.yml").read_text(encoding="utf-8"))["oci_mlops_topology"]
DECLARED = {
    d["name"]: d
    for d in yaml.safe_load((PLATFORM_DEFAULTS / "secrets.yml").read_text(encoding="utf-8"))["oci_mlops_secrets"]
}
WRITER_ENV = ROLES / "object_store" / "templates" / "object-store-scoped.env.j2"
AIRFLOW = [
    "airflow_config",
    "airflow_credentials",
    "airflow_environment",
    "airflow_lock_file",
    "airflow_remote_logs",
]
STORE = [
    "object_store_buckets",
    "object_store_writer_buckets",
    "object_store_writer_port",
    "object_store_access_key",
    "object_store_secret_key",
    "object_store_readonly_access_key",
    "object_store_readonly_secret_key",
    "object_store_writer_access_key",
    "object_store_ports",
    "writer_env:lookup('template', '"
    + str(WRITER_ENV)
    + "', template_vars={'object_store_scoped': {'remote': 'writer', 'buckets': object_store_writer_buckets,"
    " 'access_key': object_store_writer_access_key, 'secret_key': object_store_writer_secret_key}})",
]


def _secrets(tmp: Path) -> dict[str, str]:
    return {
        p.name: p.read_text().split()[0] for p in (tmp / "secrets").iterdir() if p.is_file() and p.read_text().strip()
    }


def _lab(workers: bool) -> dict:
    children = {
        "db": {"hosts": {"lab-db": {"private_ip": "172.28.52.2"}}},
        "objectstore": {"hosts": {"lab-db": {}}},
        "mlflow": {"hosts": {"lab-mlflow": {"private_ip": "172.28.52.3"}}},
        "airflow": {"hosts": {"lab-airflow": {"private_ip": "172.28.52.4"}}},
    }
    if workers:
        children["broker"] = {"hosts": {"lab-db": {}}}
        children["airflow_worker"] = {"hosts": {"lab-worker": {"private_ip": "172.28.52.9"}}}
    return {"all": {"vars": {"ansible_connection": "local"}, "children": children}}


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    group_vars = ROOT / "inventory" / "lab" / "group_vars"
    hosts = render_names(tmp, _lab(True), "lab-airflow,lab-worker", AIRFLOW, group_vars)
    store = render_names(tmp, _lab(True), "lab-db", STORE, group_vars)
    return hosts, store, _secrets(tmp)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    group_vars = ROOT / "inventory" / "lab" / "group_vars"
    airflow = render_names(tmp, _lab(False), "lab-airflow", AIRFLOW, group_vars)
    store = render_names(tmp, _lab(False), "lab-db", STORE, group_vars)
    return airflow, store


def _connection(rendered: dict) -> dict:
    files = json.loads(rendered["airflow_config"]["secrets"]["backend_kwargs"])
    assert files == {"connections_file_path": "/etc/airflow/credentials/airflow_connections.json"}
    return json.loads(rendered["airflow_credentials"]["airflow_connections.json"])["oci_mlops_task_logs"]


@pytest.mark.parametrize("host", ["lab-airflow", "lab-worker"])
def test_with_workers_the_servers_and_the_workers_write_the_task_logs_bucket(scale, host):
    hosts, _, secrets = scale
    rendered = hosts[host]
    assert rendered["airflow_remote_logs"] is True
    logging = rendered["airflow_config"]["logging"]
    assert (logging["remote_logging"], logging["remote_base_log_folder"], logging["remote_log_conn_id"]) == (
        True,
        "s3://airflow-task-logs",
        "oci_mlops_task_logs",
    )
    # the servers' secrets backend (the api-server reading a log) and the workers' (the task
    # supervisor's upload) both read the connection from the credential file
    backend = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
    assert rendered["airflow_config"]["secrets"]["backend"] == backend
    assert rendered["airflow_config"]["workers"]["secrets_backend"] == backend
    assert (
        rendered["airflow_config"]["workers"]["secrets_backend_kwargs"]
        == rendered["airflow_config"]["secrets"]["backend_kwargs"]
    )
    conn = _connection(rendered)
    writer = TOPOLOGY["services"]["objectstore"]["writer_port"]
    assert conn == {
        "conn_type": "aws",
        "login": secrets["airflow_task_logs_access_key"],
        "password": secrets["airflow_task_logs_secret_key"],
        "extra_dejson": {
            "endpoint_url": f"http://172.28.52.2:{writer}",
            "region_name": "lab-1",
            "config_kwargs": {
                "s3": {"addressing_style": "path"},
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            },
        },
    }
    # the lock with the Amazon provider
    assert rendered["airflow_lock_file"] == "locks/airflow-3.3.2-celery-python3.11.txt"


def test_the_task_logs_key_is_in_no_environment_and_not_in_airflow_cfg(scale):
    hosts, _, secrets = scale
    for rendered in hosts.values():
        for where in ("airflow_environment", "airflow_config"):
            text = json.dumps(rendered[where])
            leaked = [n for n in ("airflow_task_logs_access_key", "airflow_task_logs_secret_key") if secrets[n] in text]
            assert not leaked, (where, leaked)


def test_the_lock_holds_the_amazon_provider():
    lock = (ROLES / "airflow" / "files" / "locks" / "airflow-3.3.2-celery-python3.11.txt").read_text(encoding="utf-8")
    assert "\napache-airflow-providers-amazon==" in lock
    assert "\nboto3==" in lock


def test_the_object_store_serves_the_task_logs_bucket_alone_on_the_writer_endpoint(scale):
    _, store, secrets = scale
    topology = TOPOLOGY["services"]["objectstore"]
    assert store["object_store_writer_buckets"] == ["airflow-task-logs"]
    assert "airflow-task-logs" in store["object_store_buckets"]
    assert int(store["object_store_writer_port"]) == topology["writer_port"]
    assert [int(p) for p in store["object_store_ports"]] == [
        topology["port"],
        topology["readonly_port"],
        topology["writer_port"],
    ]
    key = store["object_store_writer_access_key"]
    assert key == secrets["airflow_task_logs_access_key"]
    assert key not in (store["object_store_access_key"], store["object_store_readonly_access_key"])
    env = store["writer_env"]
    assert (
        f"RCLONE_AUTH_KEY='\"{secrets['airflow_task_logs_access_key']},{secrets['airflow_task_logs_secret_key']}\"'"
        in env
    )
    assert "RCLONE_CONFIG_WRITER_TYPE=combine\n" in env
    assert "RCLONE_CONFIG_WRITER_UPSTREAMS=airflow-task-logs=/var/lib/object-store/airflow-task-logs\n" in env
    assert secrets["s3_secret_key"] not in env and secrets["s3_dags_reader_secret_key"] not in env


def test_without_workers_the_airflow_host_keeps_its_logs(small):
    airflow, store = small
    assert airflow["airflow_remote_logs"] is False
    assert "remote_logging" not in airflow["airflow_config"]["logging"]
    assert "secrets" not in airflow["airflow_config"] and "workers" not in airflow["airflow_config"]
    assert "airflow_connections.json" not in airflow["airflow_credentials"]
    assert airflow["airflow_lock_file"] == "locks/airflow-3.3.2-python3.11.txt"
    assert store["object_store_writer_buckets"] == []
    assert "airflow-task-logs" not in store["object_store_buckets"]
    assert len(store["object_store_ports"]) == 2


def test_oci_writes_through_the_s3_compatibility_endpoint_with_the_vault_pair(tmp_path):
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                **OCI_INFRA,
                "vault_airflow_task_logs_access_key": "ocid1.credential.oc1..logs",
                "vault_airflow_task_logs_secret_key": "logs-secret-from-vault",
            },
            "children": {
                "mlflow": {"hosts": {"10.0.1.10": {"private_ip": "10.0.1.10"}}},
                "airflow": {"hosts": {"10.0.1.11": {"private_ip": "10.0.1.11"}}},
                "broker": {"hosts": {"10.0.1.12": {"private_ip": "10.0.1.12"}}},
                "airflow_worker": {"hosts": {"10.0.1.13": {"private_ip": "10.0.1.13"}}},
                "edge": {"hosts": {"10.0.1.14": {"private_ip": "10.0.1.14"}}},
            },
        }
    }
    rendered = render_names(tmp_path, inventory, "10.0.1.13", AIRFLOW)
    assert (
        rendered["airflow_config"]["logging"]["remote_base_log_folder"] == "s3://" + OCI_INFRA["infra_task_logs_bucket"]
    )
    conn = _connection(rendered)
    region = OCI_INFRA["infra_region"]
    assert conn["login"] == "ocid1.credential.oc1..logs" and conn["password"] == "logs-secret-from-vault"
    assert conn["extra_dejson"]["endpoint_url"] == (
        f"https://{OCI_INFRA['infra_namespace']}.compat.objectstorage.{region}.oraclecloud.com"
    )
    assert conn["extra_dejson"]["region_name"] == region


def test_the_task_logs_pair_is_held_by_the_object_store_and_the_airflow_hosts_only():
    for name in ("airflow_task_logs_access_key", "airflow_task_logs_secret_key"):
        declared = DECLARED[name]
        assert set(declared["groups"]) == {"objectstore", "airflow", "airflow_worker"}
        assert declared["needed_if"] == "airflow_remote_logging"
        # OCI issues it (a customer secret key): generated in the lab only
        assert declared["generated_if"] == "oci_mlops_generate_s3_keys"
