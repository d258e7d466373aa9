"""DAG authors' tasks get none of the platform's secrets; the airflow hosts only read the DAG bucket (#15.3).

What can be checked without a lab, rendered with Ansible itself on fake
inventories (conftest.ansible_debug): the environment every Airflow unit
starts with (airflow.env, which every task process inherits) holds no
secret; airflow.cfg reads each secret option through `<option>_cmd` from its
credential file; the lab's airflow hosts get the object store's read-only
endpoint and key pair, the controller's publish the read-write ones; OCI's
airflow hosts sync with their instance principal and publish from the
controller's own OCI identity. molecule/site (tests/test_1d_task_secrets.py)
checks the same on the running platform with a real task.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, PLATFORM_DEFAULTS, ROLES, ROOT, render_names

TOPOLOGY = yaml.safe_load((PLATFORM_DEFAULTS / "topology.yml").read_text(encoding="utf-8"))["oci_mlops_topology"]
DECLARED = yaml.safe_load((PLATFORM_DEFAULTS / "secrets.yml").read_text(encoding="utf-8"))["oci_mlops_secrets"]
# The options Airflow 3.3.2 marks `sensitive: true` (airflow/config_templates/config.yml),
# the only ones whose `_cmd` form it honours (shared/configuration/parser.py).
AIRFLOW_CMD_OPTIONS = {
    ("database", "sql_alchemy_conn"),
    ("database", "sql_alchemy_conn_async"),
    ("core", "fernet_key"),
    ("api", "secret_key"),
    ("api_auth", "jwt_secret"),
}
AIRFLOW_NAMES = [
    "airflow_environment",
    "airflow_credentials",
    "airflow_credentials_dir",
    "airflow_credential_options",
    "airflow_config",
    "airflow_pipelines_environment",
    "airflow_dag_sync_environment",
    "airflow_publish_backend",
    "airflow_publish_rclone_config",
]


def _secret_values(secrets_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text().split()[0] for p in secrets_dir.iterdir() if p.is_file() and p.read_text().strip()}


@pytest.fixture(scope="module")
def oci(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oci")
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **OCI_INFRA},
            "children": {
                "mlflow": {"hosts": {"10.0.1.10": {"private_ip": "10.0.1.10"}}},
                "airflow": {"hosts": {"10.0.1.11": {"private_ip": "10.0.1.11"}}},
            },
        }
    }
    rendered = render_names(tmp, inventory, "10.0.1.11", AIRFLOW_NAMES)
    return rendered, _secret_values(tmp / "secrets")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local"},
            "children": {
                "db": {"hosts": {"lab-db": {"private_ip": "172.28.52.2"}}},
                "objectstore": {"hosts": {"lab-db": {}}},
                "mlflow": {"hosts": {"lab-mlflow": {"private_ip": "172.28.52.3"}}},
                "airflow": {"hosts": {"lab-airflow": {"private_ip": "172.28.52.4"}}},
            },
        }
    }
    group_vars = ROOT / "inventory" / "lab" / "group_vars"
    airflow = render_names(
        tmp,
        inventory,
        "lab-airflow",
        AIRFLOW_NAMES
        + [
            "airflow_dag_sync_s3_endpoint",
            "airflow_dag_sync_s3_access_key",
            "airflow_dag_sync_s3_secret_key",
            "airflow_publish_s3_endpoint",
            "airflow_publish_s3_access_key",
            "airflow_publish_s3_secret_key",
        ],
        group_vars,
    )
    template = ROLES / "object_store" / "templates" / "object-store-scoped.env.j2"
    scoped = (
        "{'object_store_scoped': {'remote': 'readonly', 'buckets': object_store_readonly_buckets,"
        " 'access_key': object_store_readonly_access_key, 'secret_key': object_store_readonly_secret_key}}"
    )
    store = render_names(
        tmp,
        inventory,
        "lab-db",
        [
            "object_store_buckets",
            "object_store_readonly_buckets",
            "object_store_readonly_port",
            "object_store_port",
            "object_store_access_key",
            "object_store_readonly_access_key",
            "object_store_root",
        ]
        + [f"readonly_env:lookup('template', '{template}', template_vars={scoped})"],
        group_vars,
    )
    return airflow, store, _secret_values(tmp / "secrets")


def _no_secret_in(text: str, secrets: dict[str, str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [name for name, value in secrets.items() if name not in allowed and value in text]


@pytest.mark.parametrize("where", ["oci", "lab"])
def test_the_units_environment_holds_no_secret(where, oci, lab):
    """airflow.env (every unit's EnvironmentFile=, inherited by every task and
    DAG-parsing process) has paths and settings only."""
    rendered, secrets = oci if where == "oci" else (lab[0], lab[2])
    env = rendered["airflow_environment"]
    assert set(env) <= {
        "AIRFLOW_HOME",
        "AIRFLOW_CONFIG",
        "PYTHONWARNINGS",
        "OCI_MLOPS_PIPELINES_PYTHON",
        "FORWARDED_ALLOW_IPS",
    }
    assert not [k for k in env if k.startswith("AIRFLOW__")], env
    text = json.dumps(env)
    assert not _no_secret_in(text, secrets)
    assert not [n for n, v in rendered["airflow_credentials"].items() if v in text]
    # ... nor airflow.cfg (0640 root:airflow; its `_cmd` options name files, not values)
    config = json.dumps(rendered["airflow_config"])
    assert not _no_secret_in(config, secrets)
    assert not [n for n, v in rendered["airflow_credentials"].items() if v in config]
    assert secrets, "no secret was generated: the check proves nothing"


def test_each_secret_option_is_read_by_its_cmd_from_its_credential_file(oci):
    rendered, _ = oci
    config, directory = rendered["airflow_config"], rendered["airflow_credentials_dir"]
    options = {tuple(v): k for k, v in rendered["airflow_credential_options"].items()}
    # the database URLs, the Fernet key, the api secret key and the JWT secret: every one
    assert set(options) == AIRFLOW_CMD_OPTIONS
    assert set(options.values()) == set(rendered["airflow_credentials"])
    for (section, key), name in options.items():
        assert config[section][key + "_cmd"] == f"/bin/cat {directory}/{name}"
        assert key not in config[section], f"[{section}] {key} is set in airflow.cfg itself"
    assert rendered["airflow_credentials"]["airflow_db_url"].startswith("mysql+mysqldb://airflow:")
    assert len(rendered["airflow_credentials"]["airflow_fernet_key"]) == 44
    assert directory == "/etc/airflow/credentials"


def test_the_tasks_own_environment_is_theirs_only(lab):
    """pipelines.env (the scheduler's, inherited by the tasks): the MLflow client's settings as
    mlflow-pipelines, and no other secret of the platform."""
    airflow, _, secrets = lab
    pipelines = airflow["airflow_pipelines_environment"]
    assert set(pipelines) == {
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_DISABLE_TELEMETRY",
    }
    assert pipelines["MLFLOW_TRACKING_USERNAME"] == "mlflow-pipelines"
    assert _no_secret_in(json.dumps(pipelines), secrets) == ["mlflow_pipelines_password"]


def test_the_files_the_units_read(root):
    """The units read airflow.env (and the scheduler pipelines.env) as their environment, never
    a credential file; the credential files are root:airflow 0440; dag-sync.env is root's alone
    (systemd reads it), so a task (user airflow, in the sync's group) cannot read the bucket key."""
    main = yaml.safe_load((ROLES / "airflow" / "tasks" / "main.yml").read_text(encoding="utf-8"))
    by_name = {t["name"]: t for t in main}
    units = by_name["Install the units"]["vars"]["systemd_service_environment_files"]
    assert "airflow.env" in units and "pipelines.env" in units and "credentials" not in units
    files = by_name["Write the credential files (database URLs and shared secrets) and the pipelines' environment"]
    assert files["no_log"] is True
    entries = files["managed_files"]["files"]
    # One entry per credential: root-owned (the module's default), airflow's group, 0440, the value
    # as it is (no newline: _cmd's output is the value); a credential no longer used is removed.
    credential = "{'path': airflow_credentials_dir ~ '/' ~ name, 'content': value,"
    assert credential in " ".join(entries.split()), entries
    assert "'group': airflow_user, 'mode': '0440', 'secret': true}" in " ".join(entries.split())
    assert "'owner'" not in entries
    assert files["managed_files"]["exclusive"] == ["{{ airflow_credentials_dir }}/*"]
    sync = yaml.safe_load((ROLES / "airflow" / "tasks" / "dag_sync.yml").read_text(encoding="utf-8"))
    task = next(t for t in sync if t["name"].startswith("Write the sync's environment"))
    (env,) = task["managed_files"]["files"]
    assert (env.get("owner", "root"), env.get("group", "root"), env["mode"], task["no_log"]) == (
        "root",
        "root",
        "0600",
        True,
    )


def test_the_lab_airflow_hosts_hold_a_read_only_key_of_a_read_only_endpoint(lab):
    airflow, store, secrets = lab
    objectstore = TOPOLOGY["services"]["objectstore"]
    assert airflow["airflow_dag_sync_s3_endpoint"] == f"http://172.28.52.2:{objectstore['readonly_port']}"
    assert airflow["airflow_dag_sync_s3_access_key"] == secrets["s3_dags_reader_access_key"]
    assert airflow["airflow_dag_sync_s3_secret_key"] == secrets["s3_dags_reader_secret_key"]
    # the sync's whole environment: no read-write key
    assert not _no_secret_in(
        json.dumps(airflow["airflow_dag_sync_environment"]),
        secrets,
        allowed=("s3_dags_reader_access_key", "s3_dags_reader_secret_key"),
    )
    # the controller publishes with the read-write pair, on the read-write port
    assert airflow["airflow_publish_backend"] == "s3"
    assert airflow["airflow_publish_s3_endpoint"] == f"http://172.28.52.2:{objectstore['port']}"
    assert airflow["airflow_publish_s3_access_key"] == secrets["s3_access_key"]
    assert airflow["airflow_publish_s3_secret_key"] == secrets["s3_secret_key"]
    # the object store: its read-only endpoint serves the DAG bucket alone, with the reader's pair
    assert store["object_store_readonly_buckets"] == ["airflow-dags"]
    assert store["object_store_readonly_port"] == objectstore["readonly_port"] != store["object_store_port"]
    assert store["object_store_readonly_access_key"] == secrets["s3_dags_reader_access_key"]
    assert store["object_store_readonly_access_key"] != store["object_store_access_key"]
    env = store["readonly_env"]
    assert f"RCLONE_AUTH_KEY='\"{secrets['s3_dags_reader_access_key']},{secrets['s3_dags_reader_secret_key']}\"'" in env
    assert "RCLONE_CONFIG_READONLY_TYPE=combine" in env
    assert "RCLONE_CONFIG_READONLY_UPSTREAMS=airflow-dags=/var/lib/object-store/airflow-dags\n" in env
    assert secrets["s3_secret_key"] not in env


def test_the_airflow_hosts_hold_no_read_write_key():
    """Nor do the Celery workers, which run the same DAGs (the read-only DAG key only)."""
    held = {d["name"]: set(d["groups"]) for d in DECLARED}
    for group in ("airflow", "airflow_worker"):
        assert group not in held["s3_access_key"] and group not in held["s3_secret_key"]
    readers = {"objectstore", "airflow", "airflow_worker"}
    assert held["s3_dags_reader_access_key"] == held["s3_dags_reader_secret_key"] == readers


def test_oci_syncs_with_the_instance_principal_and_publishes_as_the_controller(oci):
    rendered, _ = oci
    sync = rendered["airflow_dag_sync_environment"]
    assert sync["RCLONE_CONFIG_DAGS_TYPE"] == "oos"
    assert sync["RCLONE_CONFIG_DAGS_PROVIDER"] == "instance_principal_auth"
    assert not [k for k in sync if "KEY" in k]
    publish = rendered["airflow_publish_rclone_config"]
    assert rendered["airflow_publish_backend"] == "oos"
    assert publish["type"] == "oos" and publish["provider"] == "user_principal_auth"
    assert publish["config_file"] == "~/.oci/config" and publish["config_profile"] == "DEFAULT"
    assert (publish["namespace"], publish["region"]) == (OCI_INFRA["infra_namespace"], OCI_INFRA["infra_region"])
