"""Secrets: one declaration, one lookup, a guard that never lets a run silently replace one.

Real ansible-playbook runs on localhost (connection local) with a temporary
inventory, secrets directory and record path: the lookup (vault first, else
generated once with the declared length and characters), the record
(idempotent) and the guard (fails when a recorded secret's controller copy is
missing or replaced, passes on a fresh platform and with the rotation flag).
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ansible_env

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "ansible" / "playbooks"
PLATFORM = ROOT / "ansible" / "roles" / "platform_defaults"
DECLARED = {
    d["name"]: d
    for d in yaml.safe_load((PLATFORM / "defaults" / "main" / "secrets.yml").read_text())["oci_mlops_secrets"]
}
CHARSETS = {"ascii_letters": string.ascii_letters, "ascii_uppercase": string.ascii_uppercase, "digits": string.digits}


class Lab:
    """Two local 'hosts' (an airflow and an api host) with their own record files."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.secrets = tmp / "secrets"
        hosts = {
            h: {"oci_mlops_secrets_record_path": str(tmp / h / "secrets.sha256.json")} for h in ("h-airflow", "h-api")
        }
        inventory = {
            "all": {
                "vars": {
                    "ansible_connection": "local",
                    "ansible_become": False,
                    "ansible_python_interpreter": os.environ.get("PYTHON", __import__("sys").executable),
                    # a lab: its own object store, whose S3 key pair is generated (lab.yml)
                    "oci_mlops_generate_s3_keys": True,
                },
                "children": {
                    "airflow": {"hosts": {"h-airflow": hosts["h-airflow"]}},
                    "api": {"hosts": {"h-api": hosts["h-api"]}},
                },
            }
        }
        self.inventory = tmp / "hosts.yml"
        self.inventory.write_text(yaml.safe_dump(inventory))

    def run(self, playbook: str, *args: str) -> subprocess.CompletedProcess:
        env = ansible_env(
            OCI_MLOPS_SECRETS_DIR=str(self.secrets),
            # the Fernet key's filter, as when the airflow role is in the run
            ANSIBLE_FILTER_PLUGINS=str(ROOT / "ansible" / "roles" / "airflow" / "filter_plugins"),
        )
        return subprocess.run(
            ["ansible-playbook", "-i", str(self.inventory), str(PLAYBOOKS / playbook), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def use(self, *names: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
        """What the roles get for these variables.

        A playbook next to the others that loads the platform's defaults and plugins.
        """
        probe = PLAYBOOKS / f".probe-{os.getpid()}-{self.tmp.name}.yml"
        out = self.tmp / "values.json"
        probe.write_text(
            yaml.safe_dump(
                [
                    {
                        "name": "Probe",
                        "hosts": "h-airflow",
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
            run = self.run(probe.name, *extra)
        finally:
            probe.unlink()
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return json.loads(out.read_text())

    def converge(self, *args: str) -> subprocess.CompletedProcess:
        """Guard, then what the hosts use, then the record: site.yml's frame around the roles."""
        guard = self.run("secrets-guard.yml", *args)
        if guard.returncode:
            return guard
        self.use(
            "airflow_admin_password", "airflow_fernet_key", "oci_mlops_api_key", "mlflow_readonly_password", extra=args
        )
        return self.run("secrets-record.yml", *args)


def changed(run: subprocess.CompletedProcess) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))


@pytest.fixture
def lab(tmp_path) -> Lab:
    return Lab(tmp_path)


@pytest.fixture(scope="module")
def _converged_template(tmp_path_factory) -> Path:
    template = tmp_path_factory.mktemp("converged")
    run = Lab(template).converge()
    assert run.returncode == 0, run.stdout[-3000:]
    return template


@pytest.fixture
def converged(_converged_template, tmp_path) -> Lab:
    """A platform converged once (guard, secrets used, records), copied for each test."""
    import shutil

    target = tmp_path / "lab"
    shutil.copytree(_converged_template, target)
    return Lab(target)  # rewrites the inventory with this copy's record paths


def test_every_secret_is_declared_with_length_charset_groups_purpose():
    assert len(DECLARED) >= 15
    for name, decl in DECLARED.items():
        assert decl["length"] >= 20 and set(decl["chars"]) <= set(CHARSETS), name
        assert decl["groups"] and decl["purpose"] and decl["rotation"], name


def test_no_secret_expression_is_copied_any_more():
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.yml")
        if ".venv" not in p.parts and ".ansible" not in p.parts and "lookup('ansible.builtin.password'" in p.read_text()
    ]
    assert not offenders


def test_the_lookup_generates_once_with_the_declared_format_and_reuses(lab):
    first = lab.use("airflow_admin_password", "oci_mlops_s3_access_key", "mlflow_db_salt")
    for var, name in (
        ("airflow_admin_password", "airflow_admin_password"),
        ("oci_mlops_s3_access_key", "s3_access_key"),
        ("mlflow_db_salt", "mlflow_db_salt"),
    ):
        decl = DECLARED[name]
        allowed = "".join(CHARSETS[c] for c in decl["chars"])
        assert len(first[var]) == decl["length"] and set(first[var]) <= set(allowed), (var, first[var])
        assert (lab.secrets / name).read_text().split()[0] == first[var]  # same file names as before
    assert lab.use("airflow_admin_password", "oci_mlops_s3_access_key") == {
        k: first[k] for k in ("airflow_admin_password", "oci_mlops_s3_access_key")
    }


def test_vault_wins_and_nothing_is_generated(lab):
    got = lab.use(
        "oci_mlops_api_key",
        "airflow_fernet_key",
        extra=("-e", "vault_api_key=from-the-vault-0123456789", "-e", "vault_airflow_fernet_key=the-key"),
    )
    assert got == {"oci_mlops_api_key": "from-the-vault-0123456789", "airflow_fernet_key": "the-key"}
    assert not (lab.secrets / "api_key").exists() and not (lab.secrets / "airflow_fernet_secret").exists()


def test_the_fernet_key_is_derived_from_the_stored_secret(lab):
    import base64
    import hashlib

    key = lab.use("airflow_fernet_key")["airflow_fernet_key"]
    secret = (lab.secrets / "airflow_fernet_secret").read_text().split()[0]
    assert len(secret) == 64
    assert key == base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def test_record_holds_digests_of_the_hosts_own_secrets_and_is_idempotent(lab):
    first = lab.converge()
    assert first.returncode == 0, first.stdout[-3000:]
    assert changed(first) == 2  # per host: one task writes its record's directory and the record
    record = json.loads((lab.tmp / "h-api" / "secrets.sha256.json").read_text())["secrets"]
    api_key = (lab.secrets / "api_key").read_text().split()[0]
    import hashlib

    assert record == {
        "api_key": hashlib.sha256(api_key.encode()).hexdigest(),
        "mlflow_readonly_password": hashlib.sha256(
            (lab.secrets / "mlflow_readonly_password").read_text().split()[0].encode()
        ).hexdigest(),
    }
    assert api_key not in (lab.tmp / "h-api" / "secrets.sha256.json").read_text()
    assert oct((lab.tmp / "h-api" / "secrets.sha256.json").stat().st_mode & 0o777) == "0o600"
    assert set(json.loads((lab.tmp / "h-airflow" / "secrets.sha256.json").read_text())["secrets"]) == {
        "airflow_admin_password",
        "airflow_fernet_secret",
    }
    again = lab.run("secrets-record.yml")
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    check = lab.run("secrets-record.yml", "--check")
    assert check.returncode == 0 and changed(check) == 0


def test_guard_passes_on_a_fresh_platform(lab):
    run = lab.run("secrets-guard.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert not lab.secrets.exists() or not any(lab.secrets.iterdir())  # the guard generates nothing


def test_guard_fails_before_anything_when_a_held_secret_is_missing(converged):
    (converged.secrets / "api_key").rename(converged.tmp / "api_key.backup")
    for args in ((), ("--check",), ("--limit", "h-airflow")):  # check mode; --limit still reads every host
        run = converged.run("secrets-guard.yml", *args)
        assert run.returncode != 0, (args, run.stdout[-3000:])
        assert "Secret api_key is neither in vault (vault_api_key) nor on the controller" in run.stdout, run.stdout[
            -3000:
        ]
        assert "h-api hold(s) it" in run.stdout and "oci_mlops_rotate_secrets=api_key" in run.stdout
    assert not (converged.secrets / "api_key").exists()
    (converged.tmp / "api_key.backup").rename(converged.secrets / "api_key")  # (a) restore from backup
    assert converged.run("secrets-guard.yml").returncode == 0


def test_guard_passes_with_the_rotation_flag_and_the_record_follows(converged):
    old = json.loads((converged.tmp / "h-api" / "secrets.sha256.json").read_text())["secrets"]["api_key"]
    (converged.secrets / "api_key").unlink()
    assert converged.run("secrets-guard.yml", "-e", "oci_mlops_rotate_secrets=nonsense").returncode != 0
    run = converged.converge("-e", "oci_mlops_rotate_secrets=airflow_jwt_secret,api_key")
    assert run.returncode == 0, run.stdout[-3000:]
    assert json.loads((converged.tmp / "h-api" / "secrets.sha256.json").read_text())["secrets"]["api_key"] != old
    assert converged.run("secrets-guard.yml").returncode == 0


def test_guard_fails_when_the_controller_copy_was_replaced(converged):
    (converged.secrets / "airflow_admin_password").write_text("SomebodyElsesPassword123\n")
    run = converged.run("secrets-guard.yml")
    assert run.returncode != 0 and "Secret airflow_admin_password: the value in" in run.stdout, run.stdout[-3000:]
    assert "h-airflow" in run.stdout
    assert converged.run("secrets-guard.yml", "-e", "oci_mlops_rotate_secrets=airflow_admin_password").returncode == 0


def test_the_oci_guide_lists_every_vault_variable():
    text = (ROOT / "docs" / "deploy-oci.md").read_text()
    missing = [d.get("vault", "vault_" + n) for n, d in DECLARED.items() if d.get("vault", "vault_" + n) not in text]
    assert not missing


def _verdict():
    import sys

    sys.path.insert(0, str(PLATFORM / "filter_plugins"))
    try:
        from oci_mlops_secrets import secrets_verdict  # type: ignore[import-not-found]  # loaded from its plugin dir
    finally:
        sys.path.pop(0)
    return secrets_verdict


def test_an_unreadable_host_blocks_only_the_generation_of_its_secrets():
    verdict = _verdict()
    decls = list(DECLARED.values())
    present = {n: "d" for n in DECLARED}
    groups = {"db1": ["db"], "web": ["api"]}
    # every secret present: an unreachable host does not matter
    assert verdict(decls, present, {"db1": {"unreachable": True}, "web": None}, groups, schemas_host="db1") == []
    # the schemas host (pseudo-group `schemas`) is unreachable and mlflow_db_salt would be generated
    problems = verdict(
        decls,
        dict(present, mlflow_db_salt=""),
        {"db1": {"unreachable": True}, "web": {"msg": "file not found"}},
        groups,
        schemas_host="db1",
    )
    assert len(problems) == 1 and "mlflow_db_salt" in problems[0] and "db1 (unreachable)" in problems[0]
    # api_key missing: the unreachable db host does not hold it, the web host has no record: a fresh secret
    assert (
        verdict(
            decls,
            dict(present, api_key=""),
            {"db1": {"unreachable": True}, "web": {"msg": "file not found"}},
            groups,
            schemas_host="db1",
        )
        == []
    )
    with pytest.raises(Exception, match="undeclared"):
        verdict(decls, present, {}, groups, rotate="api_kee")
