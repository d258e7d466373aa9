"""Deliberate rotation of a secret (`make rotate SECRET=<name>`, playbooks/rotate.yml) and Airflow's Fernet key list.

Real ansible-playbook runs on localhost with test_secrets' two-host lab
(its own secrets directory and records): rotate.yml's controller play (the
new value, the previous one kept where the service allows an overlap, a
resumed rotation, FINISH, unknown names and vault-held secrets refused), what
the roles then get (`new,old` Fernet keys, the API's clients-previous key),
the guard before and after, and the play that drops the old Fernet key. The
airflow role's re-encryption step (tasks/fernet.yml) runs with a stand-in for
the `airflow` command (a script that records its arguments): it must run
once per key list, never again on a no-op run, and report in check mode.
The end-to-end rotation with a real Airflow is molecule/site's
test_1i_rotation.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_local_play
from test_secrets import DECLARED, PLAYBOOKS, Lab, changed

ROTATE = yaml.safe_load((PLAYBOOKS / "rotate.yml").read_text())


def _derive(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def _secret(lab: Lab, name: str) -> str:
    return (lab.secrets / name).read_text().split()[0]


def _play(lab: Lab, play: dict, *args: str) -> subprocess.CompletedProcess:
    """One play of rotate.yml, alone, from a file beside it (its roles and plugins resolve as in the real run)."""
    probe = PLAYBOOKS / f".rotate-probe-{os.getpid()}-{lab.tmp.name}.yml"
    probe.write_text(yaml.safe_dump([play]))
    try:
        return lab.run(probe.name, *args)
    finally:
        probe.unlink()


def prepare(lab: Lab, name: str, *args: str) -> subprocess.CompletedProcess:
    return _play(lab, ROTATE[0], "-e", f"oci_mlops_rotate_secret={name}", *args)


@pytest.fixture
def converged(tmp_path) -> Lab:
    lab = Lab(tmp_path)
    run = lab.converge()
    assert run.returncode == 0, run.stdout[-3000:]
    return lab


def test_rotate_is_prepare_then_site_then_drop():
    assert [p.get("ansible.builtin.import_playbook") for p in ROTATE] == [None, "../../site.yml", None]
    assert ROTATE[1]["vars"] == {"oci_mlops_rotate_secrets": "{{ oci_mlops_rotate_secret }}"}
    assert all(p.get("any_errors_fatal") for p in (ROTATE[0], ROTATE[2]))


def test_an_unknown_name_fails_listing_the_declared_ones(converged):
    before = sorted(p.name for p in converged.secrets.iterdir())
    run = prepare(converged, "airflow_fernet_key")
    assert run.returncode != 0
    out = " ".join(run.stdout.split())
    assert "SECRET=airflow_fernet_key is not a declared secret" in out, out[-3000:]
    for name in DECLARED:
        assert name in out
    assert sorted(p.name for p in converged.secrets.iterdir()) == before


def test_make_rotate_without_a_name_stops_before_anything():
    run = subprocess.run(["make", "-s", "rotate"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "SECRET=<name> is required" in run.stderr


def test_make_rotate_passes_the_name_and_finish():
    run = subprocess.run(
        ["make", "-n", "rotate", "SECRET=api_key", "FINISH=1"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "ansible/playbooks/rotate.yml" in run.stdout
    assert "-e oci_mlops_rotate_secret='api_key'" in run.stdout and "-e oci_mlops_rotate_finish=true" in run.stdout


def test_fernet_rotation_gives_new_then_old_and_the_guard_needs_the_flag(converged):
    old = _secret(converged, "airflow_fernet_secret")
    run = prepare(converged, "airflow_fernet_secret")
    assert run.returncode == 0, run.stdout[-3000:]
    new = _secret(converged, "airflow_fernet_secret")
    assert new != old and len(new) == 64
    assert _secret(converged, "airflow_fernet_secret.previous") == old
    assert oct((converged.secrets / "airflow_fernet_secret.previous").stat().st_mode & 0o777) == "0o600"
    assert converged.use("airflow_fernet_key")["airflow_fernet_key"] == f"{_derive(new)},{_derive(old)}"
    # without the flag the guard refuses (the hosts hold the old value); rotate.yml's site.yml passes it
    assert converged.run("secrets-guard.yml").returncode != 0
    run = converged.converge("-e", "oci_mlops_rotate_secrets=airflow_fernet_secret")
    assert run.returncode == 0, run.stdout[-3000:]
    # resumed (the run stopped after the converge): nothing new, the previous value kept
    again = prepare(converged, "airflow_fernet_secret")
    assert again.returncode == 0, again.stdout[-3000:]
    assert _secret(converged, "airflow_fernet_secret") == new
    assert _secret(converged, "airflow_fernet_secret.previous") == old
    # the last play on a host outside airflow and without backups: the controller's copy goes
    drop = _play(
        converged,
        ROTATE[2],
        "--limit",
        "h-api",
        "-e",
        "oci_mlops_rotate_secret=airflow_fernet_secret",
        "-e",
        "oci_mlops_schemas_host=''",
    )
    assert drop.returncode == 0, drop.stdout[-3000:]
    assert not (converged.secrets / "airflow_fernet_secret.previous").exists()
    assert converged.use("airflow_fernet_key")["airflow_fernet_key"] == _derive(new)
    assert converged.run("secrets-guard.yml").returncode == 0  # the record follows the new value


def test_api_key_stays_valid_as_clients_previous_until_finish(converged):
    old = _secret(converged, "api_key")
    assert prepare(converged, "api_key").returncode == 0
    new = _secret(converged, "api_key")
    assert new != old
    assert converged.use("model_api_keys")["model_api_keys"] == {
        "clients": new,
        "dashboard": _secret(converged, "dashboard_api_key"),
        "clients-previous": old,
    }
    finish = prepare(converged, "api_key", "-e", "oci_mlops_rotate_finish=true")
    assert finish.returncode == 0, finish.stdout[-3000:]
    assert _secret(converged, "api_key") == new and not (converged.secrets / "api_key.previous").exists()
    assert set(converged.use("model_api_keys")["model_api_keys"]) == {"clients", "dashboard"}


def test_finish_is_refused_for_a_secret_without_an_overlap_to_end(converged):
    converged.use("airflow_jwt_secret")  # generated as a converge of the airflow role does
    for name in ("airflow_fernet_secret", "airflow_jwt_secret"):
        before = _secret(converged, name)
        run = prepare(converged, name, "-e", "oci_mlops_rotate_finish=true")
        assert run.returncode != 0 and "FINISH=1 ends the overlap" in " ".join(run.stdout.split()), name
        assert _secret(converged, name) == before


def test_a_secret_without_overlap_is_replaced_at_once(converged):
    converged.use("airflow_jwt_secret")
    old = _secret(converged, "airflow_jwt_secret")
    run = prepare(converged, "airflow_jwt_secret")
    assert run.returncode == 0, run.stdout[-3000:]
    assert _secret(converged, "airflow_jwt_secret") != old
    assert not (converged.secrets / "airflow_jwt_secret.previous").exists()
    assert old not in run.stdout


def test_a_vault_held_secret_is_rotated_in_vault(converged):
    run = prepare(converged, "api_key", "-e", "vault_api_key=from-the-vault-0123456789")
    out = " ".join(run.stdout.split())
    assert run.returncode != 0 and "api_key comes from vault (vault_api_key)" in out, out[-3000:]
    fernet = prepare(converged, "airflow_fernet_secret", "-e", "vault_airflow_fernet_key=x")
    assert fernet.returncode != 0 and "first `new,old` in vault_airflow_fernet_key" in " ".join(fernet.stdout.split())


def test_the_guard_covers_the_fernet_key(converged):
    """A lost controller copy of the Fernet key's secret stops the run before anything changes."""
    (converged.secrets / "airflow_fernet_secret").unlink()
    run = converged.run("secrets-guard.yml")
    assert run.returncode != 0
    assert "Secret airflow_fernet_secret is neither in vault (vault_airflow_fernet_key) nor on the controller" in (
        run.stdout
    )
    assert not (converged.secrets / "airflow_fernet_secret").exists()


# --- the airflow role: the key list and `airflow rotate-fernet-key` once per list -------------------------------

K1, K2 = _derive("a" * 40), _derive("b" * 40)


def _fernet_tasks(tmp: Path, keys, *args: str) -> subprocess.CompletedProcess:
    """airflow's tasks/fernet.yml with a stand-in `airflow` that logs its arguments."""
    fake = tmp / "airflow"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp / "calls.log"}\n')
    fake.chmod(0o755)
    play = {
        "name": "Fernet",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "The rotation step", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "fernet"}}
        ],
    }
    extra = {
        "airflow_fernet_key": keys,
        "airflow_cli": [str(fake)],
        "airflow_fernet_rotated_path": str(tmp / "fernet-rotated"),
    }
    return run_local_play(tmp, [play], extra, topology=True, args=args)


def _calls(tmp: Path) -> list[str]:
    log = tmp / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_rotate_fernet_key_runs_once_per_key_list_and_check_mode_tells(tmp_path):
    check = _fernet_tasks(tmp_path, f"{K2},{K1}", "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    assert changed(check) > 0 and _calls(tmp_path) == [] and not (tmp_path / "fernet-rotated").exists()
    first = _fernet_tasks(tmp_path, f"{K2},{K1}")
    assert first.returncode == 0, first.stdout[-3000:]
    assert _calls(tmp_path) == ["rotate-fernet-key"]
    for args in ((), ("--check",)):  # a no-op run, and its check, change nothing
        again = _fernet_tasks(tmp_path, [K2, K1], *args)  # the list form is the same key list
        assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    assert _calls(tmp_path) == ["rotate-fernet-key"]
    assert K1 not in first.stdout and K2 not in first.stdout
    nxt = _fernet_tasks(tmp_path, f"{_derive('c' * 40)},{K2}")  # the next rotation runs it again
    assert nxt.returncode == 0 and _calls(tmp_path) == ["rotate-fernet-key"] * 2


def test_the_role_includes_the_step_after_the_restart_and_before_the_admin():
    names = [t["name"] for t in yaml.safe_load((ROOT / "ansible/roles/airflow/tasks/main.yml").read_text())]
    step = names.index("Re-encrypt with the newest Fernet key")
    healthy = names.index("Wait for the api-server, the metadata database and the scheduler")
    assert names.index("Restart what changed") < healthy < step
    assert step < names.index("Manage the admin user")
    tasks = yaml.safe_load((ROOT / "ansible/roles/airflow/tasks/fernet.yml").read_text())
    command = tasks[1]["block"][0]["ansible.builtin.command"]
    assert command == {"argv": "{{ airflow_cli + ['rotate-fernet-key'] }}"}  # keys via fernet_key_cmd, never argv


@pytest.mark.parametrize(
    ("keys", "credential"),
    [(K1, K1), (f"{K2},{K1}", f"{K2},{K1}"), ([K2, K1], f"{K2},{K1}"), (f" {K2} , {K1} ", f"{K2},{K1}")],
    ids=["one", "new,old", "list", "spaces"],
)
def test_the_credential_file_holds_airflows_comma_form(tmp_path, keys, credential):
    play = {
        "name": "Render",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": "airflow", "when": False}],
        "tasks": [{"name": "Show", "ansible.builtin.debug": {"msg": "[{{ airflow_credentials.airflow_fernet_key }}]"}}],
    }
    run = run_local_play(
        tmp_path,
        [play],
        {
            "airflow_fernet_key": keys,
            "airflow_executor": "LocalExecutor",
            "airflow_database_url": "sqlite:////x",
            "airflow_api_secret_key": "s" * 20,
            "airflow_jwt_secret": "j" * 20,
        },
        topology=True,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"[{credential}]" in run.stdout


def test_the_role_refuses_a_bad_key_in_the_list():
    text = (ROOT / "ansible/roles/airflow/tasks/main.yml").read_text()
    assert "airflow_fernet_keys | reject('match', '^[A-Za-z0-9_-]{43}=$') | list | length == 0" in text
    assert re.search(r"airflow_fernet_keys \| unique \| length == airflow_fernet_keys \| length", text)


# --- DB users' passwords: the existing path (mysql_schemas' community.mysql.mysql_user) ---------------------------


def _mysql_hash():
    from ansible_collections.community.mysql.plugins.module_utils.implementations.mysql.hash import (
        mysql_sha256_password_hash,
    )

    return mysql_sha256_password_hash


def test_a_rotated_db_password_reaches_mysql_schemas_and_is_set_again(converged):
    """rotate.yml only generates anew; mysql_schemas' mysql_user (caching_sha2_password with the declared salt)
    compares MySQL's stored hash with the hash of the password it is given: equal on a no-op run (nothing
    changes), different after a rotation (ALTER USER), the services restarting with the new credential."""
    task = next(
        t
        for t in yaml.safe_load((ROOT / "ansible/roles/mysql_schemas/tasks/main.yml").read_text())
        if "community.mysql.mysql_user" in t
    )["community.mysql.mysql_user"]
    assert task["plugin"] == "caching_sha2_password"
    assert (task["plugin_auth_string"], task["salt"]) == ("{{ item.password }}", "{{ item.salt }}")
    assert task.get("update_password", "always") == "always"  # a new password is set, not only on creation
    assert {"schemas", "airflow"} <= set(DECLARED["airflow_db_password"]["groups"])  # both ends converge

    def schemas() -> dict:
        return {d["user"]: d for d in converged.use("mysql_schemas_databases")["mysql_schemas_databases"]}

    both = schemas()
    before = both["airflow"]
    stored = _mysql_hash()(password=before["password"], salt=before["salt"])  # what MySQL holds after a converge
    assert stored.startswith("$A$005$" + before["salt"])  # salted: the same password gives it again (no-op: no ALTER)
    run = prepare(converged, "airflow_db_password")
    assert run.returncode == 0, run.stdout[-3000:]
    again = schemas()
    after = again["airflow"]
    assert again["mlflow"] == both["mlflow"]  # the other user untouched
    assert after["password"] != before["password"] and after["salt"] == before["salt"]
    assert after["password"] not in run.stdout
    assert _mysql_hash()(password=after["password"], salt=after["salt"]) != stored  # rotation: ALTER USER
    assert not (converged.secrets / "airflow_db_password.previous").exists()  # MySQL holds one password per user
