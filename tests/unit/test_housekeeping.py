"""Housekeeping timers (issue 17, item 4): the units and timers the roles write, the Airflow
housekeeping script's log retention, and the mlflow gc helper's artifact paths.

The units are rendered from the roles' own housekeeping tasks (their include of systemd_service,
with the roles' defaults and vars) through systemd_service's templates, as a converge writes
them. What needs the lab (Airflow's and MLflow's databases, the object store) is in
molecule/site/tests/test_1g_housekeeping.py.
"""

from __future__ import annotations

import calendar
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROLES, load_plugin, run_local_play

GC = load_plugin(ROLES / "mlflow" / "files" / "mlflow-gc.py")

# The platform's inputs the units read (platform_defaults gives them on a host).
PLATFORM = {"mlflow_artifacts_destination": "s3://mlflow-artifacts", "mlflow_backend_store_uri": "mysql+pymysql://x"}


def _yaml(path: Path) -> dict:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}


def _render_units(tmp_path: Path, role: str, **overrides) -> dict[str, dict[str, list[str]]]:
    """{unit file name: {section: [lines]}} of the units ROLE's tasks/housekeeping.yml writes."""
    data: dict = {}
    for source in ("systemd_service/defaults/main.yml", "app_package/defaults/main.yml"):
        data.update(_yaml(ROLES / source))
    data.update(_yaml(ROLES / role / "defaults" / "main.yml"))
    data.update(_yaml(ROLES / role / "vars" / "main.yml"))
    data.update(PLATFORM)
    data.update(overrides)
    out = tmp_path / "units"
    out.mkdir()
    tasks = []
    for task in _yaml_list(ROLES / role / "tasks" / "housekeeping.yml"):
        include = task.get("ansible.builtin.include_role") or {}
        if include.get("name") != "systemd_service":
            continue
        for suffix in ("service", "timer"):
            copy = {
                "ansible.builtin.copy": {
                    "content": "{{ lookup('ansible.builtin.template', '%s') }}"
                    % (ROLES / f"systemd_service/templates/unit.{suffix}.j2"),
                    "dest": f"{out}/{{{{ systemd_service_name }}}}.{suffix}",
                    "mode": "0644",
                },
                "vars": task["vars"],
            }
            for key in ("loop", "loop_control", "when"):
                if key in task:
                    copy[key] = task[key]
            tasks.append(copy)
    assert tasks, f"{role}: no systemd_service include in tasks/housekeeping.yml"
    play = [{"hosts": "localhost", "gather_facts": False, "vars": data, "tasks": tasks}]
    run = run_local_play(tmp_path, play)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return {p.name: _sections(p.read_text()) for p in sorted(out.iterdir())}


def _yaml_list(path: Path) -> list:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or []


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections[current] = []
        elif line and not line.startswith("#") and current:
            sections[current].append(line)
    return sections


def _value(lines: list[str], key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in lines if line.startswith(key + "=")]


def _check_common(units: dict, name: str, user: str) -> None:
    """A timer-started, hardened oneshot of the service's own user, with a randomized timer."""
    service, timer = units[f"{name}.service"], units[f"{name}.timer"]
    body = service["Service"]
    assert _value(body, "Type") == ["oneshot"] and _value(body, "User") == [user] and user != "root"
    assert "Install" not in service, f"{name}.service is started by its timer only"
    assert _value(body, "Restart") == [], f"{name}.service: a oneshot is not restarted"
    for key, value in (("NoNewPrivileges", "true"), ("ProtectSystem", "strict"), ("PrivateTmp", "true")):
        assert _value(body, key) == [value], f"{name}.service: {key}"
    assert _value(body, "CapabilityBoundingSet") == [""]
    assert _value(body, "MemoryMax") and _value(body, "TasksMax")
    options = timer["Timer"]
    assert len(_value(options, "OnCalendar")) == 1
    assert int(_value(options, "RandomizedDelaySec")[0]) > 0
    assert _value(options, "Persistent") == ["true"]
    assert timer["Install"] == ["WantedBy=timers.target"]


def test_airflow_units(tmp_path):
    units = _render_units(tmp_path, "airflow")
    assert sorted(units) == [
        "airflow-db-clean.service",
        "airflow-db-clean.timer",
        "airflow-log-clean.service",
        "airflow-log-clean.timer",
    ]
    for name in ("airflow-db-clean", "airflow-log-clean"):
        _check_common(units, name, "airflow")
    clean = units["airflow-db-clean.service"]["Service"]
    assert _value(clean, "ExecStart") == ["/opt/airflow/airflow-housekeeping db-clean 90 10000"]
    # Airflow reads its database URL from its credential file (airflow.cfg's _cmd options).
    assert _value(clean, "EnvironmentFile") == ["/etc/airflow/airflow.env"]
    assert _value(clean, "ReadWritePaths") == ["/var/lib/airflow"]
    assert _value(units["airflow-db-clean.timer"]["Timer"], "OnCalendar") == ["*-*-* 03:10:00"]
    logs = units["airflow-log-clean.service"]["Service"]
    assert _value(logs, "ExecStart") == ["/opt/airflow/airflow-housekeeping logs 30 /var/lib/airflow/logs"]
    assert _value(logs, "EnvironmentFile") == [] and _value(logs, "ReadWritePaths") == ["-/var/lib/airflow/logs"]
    assert _value(logs, "IPAddressDeny") == ["any"] and _value(logs, "RestrictAddressFamilies") == ["AF_UNIX"]


def test_airflow_jobs_follow_their_variables_and_turn_off(tmp_path):
    units = _render_units(
        tmp_path,
        "airflow",
        airflow_db_clean_retention_days=7,
        airflow_db_clean_batch_size=0,
        airflow_db_clean_on_calendar="daily",
        airflow_log_clean_enabled=False,
    )
    assert sorted(units) == ["airflow-db-clean.service", "airflow-db-clean.timer"]
    assert _value(units["airflow-db-clean.service"]["Service"], "ExecStart") == [
        "/opt/airflow/airflow-housekeeping db-clean 7 0"
    ]
    assert _value(units["airflow-db-clean.timer"]["Timer"], "OnCalendar") == ["daily"]


def test_mlflow_gc_unit(tmp_path):
    units = _render_units(tmp_path, "mlflow")
    assert sorted(units) == ["mlflow-gc.service", "mlflow-gc.timer"]
    _check_common(units, "mlflow-gc", "mlflow")
    body = units["mlflow-gc.service"]["Service"]
    assert _value(body, "ExecStart") == [
        "/opt/mlflow/venv/bin/python /opt/mlflow/mlflow-gc.py --older-than 30d --artifacts-destination s3://mlflow-artifacts"
    ]
    # The backend store URI and the artifact store's keys: from the server's environment file only.
    assert _value(body, "EnvironmentFile") == ["/etc/mlflow/mlflow.env"]
    assert not any("mysql" in line or "AWS_" in line for line in body)
    assert "SystemCallFilter=mbind" in body


def test_api_downloads_clean_unit(tmp_path):
    units = _render_units(tmp_path, "model_api")
    assert sorted(units) == ["oci-mlops-api-downloads-clean.service", "oci-mlops-api-downloads-clean.timer"]
    _check_common(units, "oci-mlops-api-downloads-clean", "model-api")
    body = units["oci-mlops-api-downloads-clean.service"]["Service"]
    assert _value(body, "ExecStart") == [
        "/opt/oci-mlops-app/venv/bin/python -m oci_mlops_app.downloads --sweep /var/cache/oci-mlops-api"
        " --grace-seconds 300"
    ]
    assert _value(body, "ReadWritePaths") == ["/var/cache/oci-mlops-api"] and _value(body, "EnvironmentFile") == []
    assert _value(body, "IPAddressDeny") == ["any"]


# ----------------------------------------------------------- the Airflow housekeeping script


def _script(tmp_path: Path, venv: Path) -> Path:
    """templates/airflow-housekeeping.sh.j2 rendered with airflow_venv=VENV."""
    script = tmp_path / "airflow-housekeeping"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"airflow_venv": str(venv)},
            "tasks": [
                {
                    "ansible.builtin.template": {
                        "src": str(ROLES / "airflow/templates/airflow-housekeeping.sh.j2"),
                        "dest": str(script),
                        "mode": "0755",
                    }
                }
            ],
        }
    ]
    run = run_local_play(tmp_path, play)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return script


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def test_log_retention_deletes_old_files_only(tmp_path):
    script = _script(tmp_path, tmp_path / "venv")
    logs = tmp_path / "logs"
    old_run = logs / "dag_id=d" / "run_id=old" / "task_id=t"
    new_run = logs / "dag_id=d" / "run_id=new" / "task_id=t"
    gone_run = logs / "dag_id=d" / "run_id=emptied-before" / "task_id=t"
    for directory in (old_run, new_run, gone_run):
        directory.mkdir(parents=True)
    (old_run / "attempt=1.log").write_text("old")
    (new_run / "attempt=1.log").write_text("new")
    (logs / "dag_processor").mkdir()
    (logs / "dag_processor" / "old.log").write_text("old")
    (logs / "dag_processor" / "almost.log").write_text("29 days")
    _age(old_run / "attempt=1.log", 31)
    _age(logs / "dag_processor" / "old.log", 40)
    _age(logs / "dag_processor" / "almost.log", 29)
    _age(gone_run, 2)  # left empty by an earlier run
    run = subprocess.run([str(script), "logs", "30", str(logs)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert not (old_run / "attempt=1.log").exists() and not (logs / "dag_processor" / "old.log").exists()
    assert (new_run / "attempt=1.log").read_text() == "new"
    assert (logs / "dag_processor" / "almost.log").exists()
    assert not gone_run.exists(), "an empty directory older than an hour stays"
    assert old_run.is_dir(), "a directory emptied by this run goes at the next one (its mtime is fresh)"
    assert "deleted 2 files older than 30 days" in run.stdout
    # absent logs folder: nothing to do
    run = subprocess.run([str(script), "logs", "30", str(tmp_path / "none")], capture_output=True, text=True)
    assert run.returncode == 0 and "nothing to delete" in run.stdout


def test_db_clean_command_line(tmp_path):
    """The Airflow 3 commands and flags the script runs (Airflow itself is tried in the site suite)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    fake = venv / "bin" / "airflow"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    script = _script(tmp_path, venv)
    for batch, extra in (("500", " --batch-size 500"), ("0", "")):
        calls.write_text("")
        before = time.time()
        run = subprocess.run([str(script), "db-clean", "90", batch], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        clean, drop = calls.read_text().splitlines()
        words = clean.split()
        assert words[:3] == ["db", "clean", "--clean-before-timestamp"]
        stamp = calendar.timegm(time.strptime(words[3], "%Y-%m-%dT%H:%M:%S+00:00"))
        assert abs(stamp - (before - 90 * 86400)) < 120, words[3]
        assert " ".join(words[4:]) == "--skip-archive --yes --error-on-cleanup-failure" + extra
        assert drop == "db drop-archived --yes"


def test_the_script_refuses_an_unknown_job(tmp_path):
    run = subprocess.run([str(_script(tmp_path, tmp_path))], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "usage" in run.stderr


# ----------------------------------------------------------- mlflow gc's artifact locations


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mlflow-artifacts:/1/0123abcd/artifacts", "s3://bucket/1/0123abcd/artifacts"),
        ("mlflow-artifacts://mlflow:5000/2/models/m-42/artifacts", "s3://bucket/2/models/m-42/artifacts"),
        ("s3://other/run/artifacts", "s3://other/run/artifacts"),
    ],
)
def test_gc_resolves_proxied_artifacts_as_the_server(uri, expected):
    assert GC.artifact_location(uri, "s3://bucket/") == expected


@pytest.mark.parametrize(
    "uri", ["mlflow-artifacts:/", "mlflow-artifacts:/1", "mlflow-artifacts:/1/../..", "mlflow-artifacts:/1//x"]
)
def test_gc_refuses_a_path_that_is_not_a_runs(uri):
    with pytest.raises(ValueError, match="refusing"):
        GC.artifact_location(uri, "s3://bucket")


def test_gc_needs_the_servers_environment(monkeypatch):
    with pytest.raises(SystemExit, match="MLFLOW_BACKEND_STORE_URI"):
        GC.main(["--older-than", "30d", "--artifacts-destination", "s3://b"], environ={})


# ----------------------------------------------------------- validation names the variable

# Valid platform inputs, so that the role's earlier checks pass and its housekeeping check runs.
ROLE_INPUTS: dict[str, dict] = {
    "airflow": {
        "airflow_executor": "LocalExecutor",
        "airflow_database_url": "sqlite:////tmp/airflow.db",
        "airflow_fernet_key": "A" * 43 + "=",
        "airflow_api_secret_key": "s" * 16,
        "airflow_jwt_secret": "j" * 16,
        "airflow_admin_password": "p" * 12,
        "airflow_mlflow_tracking_uri": "",
        "airflow_mlflow_username": "",
        "airflow_mlflow_password": "",
        "airflow_dag_sync_enabled": False,
        "airflow_db_ca_certificate": "",
        "airflow_api_host": "127.0.0.1",
        "airflow_base_url": "",
        "airflow_forwarded_allow_ips": [],
        "airflow_dag_sync_backend": "s3",
    },
    "mlflow": {
        "mlflow_backend_store_uri": "sqlite:////tmp/m.db",
        "mlflow_artifacts_destination": "/tmp/a",
        "mlflow_host": "127.0.0.1",
        "mlflow_admin_password": "p" * 12,
        "mlflow_flask_secret_key": "f" * 16,
        "mlflow_db_ca_certificate": "",
        "mlflow_auth_trusted_proxies": [],
        "mlflow_users": [],
    },
    "model_api": {
        "model_api_keys": {"clients": "k" * 16},
        "model_api_root_path": "",
        "model_api_bind_address": "127.0.0.1",
        "model_api_forwarded_allow_ips": [],
        "model_api_mlflow_tracking_uri": "http://127.0.0.1:5000",
        "model_api_mlflow_username": "r",
        "model_api_mlflow_password": "p" * 12,
    },
}


@pytest.mark.parametrize(
    ("role", "bad"),
    [
        ("airflow", {"airflow_db_clean_retention_days": 0}),
        ("airflow", {"airflow_log_retention_days": 0}),
        ("airflow", {"airflow_log_clean_on_calendar": "$(reboot)"}),
        ("airflow", {"airflow_config_overrides": {"logging": {"base_log_folder": "/elsewhere"}}}),
        ("mlflow", {"mlflow_gc_retention_days": 0}),
        ("mlflow", {"mlflow_gc_randomized_delay_sec": -1}),
        ("model_api", {"model_api_downloads_clean_grace_seconds": 5}),
        ("model_api", {"model_api_download_dir": "/tmp"}),
    ],
)
def test_bad_housekeeping_settings_fail_naming_the_variable(tmp_path, role, bad):
    play = {"name": "bad input", "hosts": "localhost", "gather_facts": False, "roles": [role]}
    platform: dict[str, object] = {"oci_mlops_client_cidrs": [], "oci_mlops_service_client_cidrs": {}}
    run = run_local_play(tmp_path, [play], {**platform, **ROLE_INPUTS[role], **bad}, topology=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    failed = [line for line in out.splitlines() if line.startswith("TASK [")][-1]
    assert "housekeeping" in failed or "download directory" in failed, out[-3000:]
    name = next(iter(bad))
    assert name in out.split(failed, 1)[1], out[-3000:]
