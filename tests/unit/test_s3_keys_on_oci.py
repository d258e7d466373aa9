"""Issue #16 point 2: on OCI the S3 key pair is never generated.

With OCI's default artifacts store (oci://, the host's instance principal)
nothing reads the pair and nothing asks for it; with an s3:// destination
(oci_mlops_artifacts_store: s3) it must come from vault:

OCI's S3 compatibility API accepts only a customer secret key OCI issued; a
random pair generated on the controller would be rejected at MLflow's first
artifact. The platform's defaults (OCI's) refuse to generate
s3_access_key/s3_secret_key (oci_mlops_generate_s3_keys: false): the lookup
and the secrets guard, site.yml's first play, fail naming vault_s3_access_key;
the lab (inventory/lab/group_vars, oci_mlops_generate_s3_keys: true) keeps
generating its own object store's pair. Real ansible-playbook runs on
localhost with fake inventories, as in test_secrets.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, ROOT, ansible_env

PLAYBOOKS = ROOT / "ansible" / "playbooks"
S3_VARS = ("mlflow_s3_access_key", "mlflow_s3_secret_key", "object_store_access_key")


def _inventory(tmp: Path, lab: bool, store: str = "s3") -> Path:
    hosts = {"h-mlflow": {"private_ip": "10.0.2.10", "oci_mlops_secrets_record_path": str(tmp / "record.json")}}
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_become": False,
                "ansible_python_interpreter": sys.executable,
                **({} if lab else OCI_INFRA | {"oci_mlops_artifacts_store": store}),
            },
            "children": {"mlflow": {"hosts": hosts}},
        }
    }
    inv_dir = tmp / "inv"
    inv_dir.mkdir()
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory))
    if lab:
        (inv_dir / "group_vars").symlink_to(ROOT / "inventory" / "lab" / "group_vars")
    return inv_dir / "hosts.yml"


def _run(tmp: Path, inventory: Path, playbook: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(playbook), *args],
        cwd=ROOT,
        env=ansible_env(OCI_MLOPS_SECRETS_DIR=str(tmp / "secrets")),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _render(
    tmp: Path, inventory: Path, *args: str, names: tuple[str, ...] = S3_VARS
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """What the roles get for S3_VARS on h-mlflow (a probe playbook next to the others)."""
    out = tmp / "values.json"
    probe = PLAYBOOKS / f".probe-s3-{os.getpid()}-{tmp.name}.yml"
    probe.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Probe",
                    "hosts": "h-mlflow",
                    "gather_facts": False,
                    "roles": ["platform_defaults"],
                    "tasks": [
                        {
                            "name": "Dump",
                            "ansible.builtin.copy": {
                                "dest": str(out),
                                "content": "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}",
                            },
                        }
                    ],
                }
            ]
        )
    )
    try:
        run = _run(tmp, inventory, probe, *args)
    finally:
        probe.unlink()
    return run, (json.loads(out.read_text()) if out.exists() else None)


def test_the_s3_pair_is_declared_not_generated_on_oci():
    declared = {
        d["name"]: d
        for d in yaml.safe_load(
            (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "secrets.yml").read_text()
        )["oci_mlops_secrets"]
    }
    for name in ("s3_access_key", "s3_secret_key"):
        assert declared[name].get("generated_if") == "oci_mlops_generate_s3_keys", name
        assert declared[name].get("needed_if") == "oci_mlops_s3_keys_needed", name
    defaults = yaml.safe_load(
        (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "secrets.yml").read_text()
    )
    assert defaults["oci_mlops_generate_s3_keys"] is False
    lab = yaml.safe_load((ROOT / "inventory" / "lab" / "group_vars" / "all" / "lab.yml").read_text())
    assert lab["oci_mlops_generate_s3_keys"] is True


def test_on_oci_without_vault_the_s3_key_is_refused(tmp_path):
    run, values = _render(tmp_path, _inventory(tmp_path, lab=False))
    assert run.returncode != 0 and values is None, run.stdout[-2000:]
    assert "vault_s3_access_key" in run.stdout and "oci_mlops_generate_s3_keys is false" in run.stdout
    assert not (tmp_path / "secrets" / "s3_access_key").exists()


def test_on_oci_the_vault_pair_is_used(tmp_path):
    run, values = _render(
        tmp_path,
        _inventory(tmp_path, lab=False),
        "-e",
        "vault_s3_access_key=ocid1.credential.oc1..abc",
        "-e",
        "vault_s3_secret_key=issued-by-oci",
    )
    assert run.returncode == 0 and values is not None, run.stdout[-3000:]
    assert values["mlflow_s3_access_key"] == "ocid1.credential.oc1..abc"
    assert values["mlflow_s3_secret_key"] == "issued-by-oci"
    assert not (tmp_path / "secrets" / "s3_access_key").exists()


def test_the_lab_still_generates_its_pair(tmp_path):
    run, values = _render(tmp_path, _inventory(tmp_path, lab=True))
    assert run.returncode == 0 and values is not None, run.stdout[-3000:]
    assert len(values["mlflow_s3_access_key"]) == 20 and len(values["mlflow_s3_secret_key"]) == 40
    assert values["object_store_access_key"] == values["mlflow_s3_access_key"]
    assert (tmp_path / "secrets" / "s3_access_key").read_text().split()[0] == values["mlflow_s3_access_key"]


@pytest.mark.parametrize("vault", [False, True])
def test_the_secrets_guard_stops_an_oci_run_first(tmp_path, vault):
    extra = ["-e", "vault_s3_access_key=AK", "-e", "vault_s3_secret_key=SK"] if vault else []
    run = _run(tmp_path, _inventory(tmp_path, lab=False), PLAYBOOKS / "secrets-guard.yml", *extra)
    if vault:
        assert run.returncode == 0, run.stdout[-3000:]
    else:
        assert run.returncode != 0
        assert "Refuse to generate a secret that must come from vault" in run.stdout
        assert "set vault_s3_access_key" in run.stdout and "set vault_s3_secret_key" in run.stdout
        # it stopped before reading any record
        assert "Read the secrets this host recorded" not in run.stdout


def test_on_oci_with_the_oci_store_nothing_asks_for_the_s3_pair(tmp_path):
    """OCI's default, oci://: the guard passes without any S3 key in vault,
    MLflow gets none, and none is generated."""
    inventory = _inventory(tmp_path, lab=False, store="oci")
    guard = _run(tmp_path, inventory, PLAYBOOKS / "secrets-guard.yml")
    assert guard.returncode == 0, guard.stdout[-3000:]
    # (object_store_access_key is the lab's object store's, absent on OCI)
    run, values = _render(tmp_path, inventory, names=S3_VARS[:2])
    assert run.returncode == 0 and values is not None, run.stdout[-3000:]
    assert values["mlflow_s3_access_key"] == "" and values["mlflow_s3_secret_key"] == ""
    assert not (tmp_path / "secrets" / "s3_access_key").exists()
