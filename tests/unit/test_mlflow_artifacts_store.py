"""MLflow's artifact store: keyless on OCI (oci://, instance principal), S3 with a key pair in the lab.

docs/deploy-oci.md, "Artifacts: keyless on OCI", says why. Two levels:

- the platform's wiring, rendered with Ansible on a fake OCI inventory (what
  Terraform writes) and on the lab's own group_vars: OCI gets
  oci://<bucket>@<namespace>/ and no S3 key pair (nothing generated on the
  controller either), the lab keeps s3://<bucket> with its object store's pair;
- the mlflow role's own environment file and package list for each store, and
  its validation of a destination it cannot serve.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, ROLES, ROOT, ansible_debug, run_local_play

ROLE = ROLES / "mlflow"
ROLE_DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
PLUGIN_PINS = ROLE_DEFAULTS.get("mlflow_oci_pip_packages", [])

RENDERED = (
    "msg={{ {'destination': mlflow_artifacts_destination, 'store': oci_mlops_artifacts_store,"
    " 'access_key_length': mlflow_s3_access_key | length, 'secret_key_length': mlflow_s3_secret_key | length} }}"
)


def _inventory(tmp_path: Path, group_vars: Path | None = None) -> Path:
    """An inventory with one mlflow host (private_ip set: nothing is contacted): OCI's (the infra_* variables
    Terraform writes), or, with GROUP_VARS, the lab's (its group_vars linked in, no infra_* variable)."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"ansible_connection": "local", **(OCI_INFRA if group_vars is None else {})},
                    "children": {"mlflow": {"hosts": {"10.0.2.10": {"private_ip": "10.0.2.10"}}}},
                }
            }
        )
    )
    if group_vars is not None:
        (inventory / "group_vars").symlink_to(group_vars)
    return inventory


def test_oci_stores_artifacts_keyless_through_the_native_api(tmp_path):
    secrets = tmp_path / "secrets"
    got = ansible_debug(_inventory(tmp_path), "10.0.2.10", RENDERED, OCI_MLOPS_SECRETS_DIR=str(secrets))["msg"]
    bucket, namespace = OCI_INFRA["infra_artifacts_bucket"], OCI_INFRA["infra_namespace"]
    assert got == {
        "destination": f"oci://{bucket}@{namespace}/",
        "store": "oci",
        "access_key_length": 0,
        "secret_key_length": 0,
    }
    # Reading the wiring generated no S3 key pair (one OCI would reject: issue #16 point 2).
    assert not sorted(p.name for p in secrets.glob("s3_*"))


def test_the_lab_keeps_the_s3_store_and_its_key_pair(tmp_path):
    inventory = _inventory(tmp_path, ROOT / "inventory" / "lab" / "group_vars")
    got = ansible_debug(inventory, "10.0.2.10", RENDERED, OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"))["msg"]
    assert got["destination"] == "s3://mlflow-artifacts"
    assert got["store"] == "s3"
    assert (got["access_key_length"], got["secret_key_length"]) == (20, 40)


def _render_role(tmp_path: Path, **settings) -> tuple[dict[str, str], list[str]]:
    """The role's mlflow.env and virtualenv package list for SETTINGS (its defaults and vars loaded)."""
    required = {
        "mlflow_backend_store_uri": "sqlite:////var/lib/mlflow/mlflow.db",
        "mlflow_admin_password": "an-admin-password-long-enough",
        "mlflow_flask_secret_key": "a-flask-secret-key-long-enough",
        "mlflow_s3_endpoint_url": "https://nsx.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
        "mlflow_s3_region": "eu-frankfurt-1",
        "mlflow_s3_access_key": "",
        "mlflow_s3_secret_key": "",
        "mlflow_auth_trusted_proxies": [],
        "mlflow_host": "0.0.0.0",  # set by the platform
    }
    play = {
        "name": "render",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [
            {
                "name": "Render mlflow.env",
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / "mlflow.env.j2"),
                    "dest": str(tmp_path / "mlflow.env"),
                },
            },
            {
                "name": "Write the package list",
                "ansible.builtin.copy": {
                    "content": "{{ mlflow_venv_packages | to_json }}",
                    "dest": str(tmp_path / "packages.json"),
                },
            },
        ],
    }
    run = run_local_play(tmp_path, [play], {**required, **settings})
    assert run.returncode == 0, run.stdout + run.stderr
    env = dict(
        line.split("=", 1)
        for line in (tmp_path / "mlflow.env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    return env, json.loads((tmp_path / "packages.json").read_text(encoding="utf-8"))


def test_an_oci_destination_gets_the_plugin_and_the_instance_principal_and_no_s3_setting(tmp_path):
    env, packages = _render_role(tmp_path, mlflow_artifacts_destination="oci://mlops-artifacts@nsx/")
    assert (env["OCI_IAM_TYPE"], env["OCIFS_IAM_TYPE"]) == ("instance_principal", "instance_principal")
    assert not [name for name in env if name.startswith(("AWS_", "MLFLOW_S3_", "MLFLOW_BOTO_"))], env
    assert packages[0] == "mlflow[auth]==" + ROLE_DEFAULTS["mlflow_version"]
    assert packages[-len(PLUGIN_PINS) :] == PLUGIN_PINS
    assert any(p.startswith("oci-mlflow==") for p in packages)


def test_an_s3_destination_gets_the_s3_settings_and_no_plugin(tmp_path):
    env, packages = _render_role(
        tmp_path,
        mlflow_artifacts_destination="s3://mlflow-artifacts",
        mlflow_s3_access_key="AKEXAMPLE",
        mlflow_s3_secret_key="a-secret-example",
    )
    assert env["MLFLOW_S3_ENDPOINT_URL"] == '"https://nsx.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"'
    assert env["AWS_ACCESS_KEY_ID"] == '"AKEXAMPLE"'
    assert env["MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"] == "path"
    assert "OCI_IAM_TYPE" not in env and "OCIFS_IAM_TYPE" not in env
    assert packages == ["mlflow[auth]==" + ROLE_DEFAULTS["mlflow_version"], *ROLE_DEFAULTS["mlflow_pip_packages"]]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mlflow_artifacts_destination", "oci://mlops-artifacts/"),  # no namespace
        ("mlflow_artifacts_destination", "gs://mlops-artifacts"),
        ("mlflow_oci_auth", "security_token"),
    ],
)
def test_a_destination_the_role_cannot_serve_fails_naming_the_variable(tmp_path, name, value):
    play = {"name": "bad", "hosts": "localhost", "gather_facts": False, "roles": ["mlflow"]}
    settings: dict[str, object] = {
        "mlflow_backend_store_uri": "sqlite:////var/lib/mlflow/mlflow.db",
        "mlflow_artifacts_destination": "oci://mlops-artifacts@nsx/",
        "mlflow_admin_password": "an-admin-password-long-enough",
        "mlflow_flask_secret_key": "a-flask-secret-key-long-enough",
        "mlflow_s3_endpoint_url": "",
        "mlflow_s3_region": "",
        "mlflow_s3_access_key": "",
        "mlflow_s3_secret_key": "",
        "mlflow_auth_trusted_proxies": [],
        "oci_mlops_client_cidrs": [],
        "mlflow_users": [],
        "mlflow_allowed_hosts": [],
        "mlflow_host": "127.0.0.1",
        name: value,
    }
    run = run_local_play(tmp_path, [play], settings, topology=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    if name == "mlflow_oci_auth":
        # choices in argument_specs: the role's argument validation names it
        assert "mlflow_oci_auth" in out and "security_token" in out, out
    else:
        task = "TASK [mlflow : Validate the artifacts destination]"
        assert task in out, out
        assert name in out.split(task, 1)[1], out
    assert "Load the OS-family variables" not in out, "tasks ran after the validation failed"
