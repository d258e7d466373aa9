"""No generated secret on any process's command line during a converge (issue #15, point 1).

converge.yml samples, during every converge of the scenario (the fresh one
and molecule's idempotence run), every process's command line on the four
hosts and on the controller, and the environment of the controller's
`docker exec` processes (tests/cmdline_sampler.py). This suite checks those
records against the scenario's generated secrets (and the Fernet key derived
from one), then drives the paths a no-op converge does not take: the Airflow
admin's password no longer works, so the converge lists the users and resets
it (password on stdin); the DAGs are published again (from the controller:
rclone with the bucket's read-write key in its --config file). Sampled the same way, nothing may show a secret.
"""

import importlib.util
import json

import sitekit
import yaml
from cmdline_sampler import Sampler, findings, secret_values
from sitekit import AIRFLOW, HOSTS, MLFLOW

DECLARED = [
    d["name"]
    for d in yaml.safe_load(
        (sitekit.PROJECT / "ansible/roles/platform_defaults/defaults/main/secrets.yml").read_text(encoding="utf-8")
    )["oci_mlops_secrets"]
]


def _fernet():
    spec = importlib.util.spec_from_file_location(
        "airflow_fernet", sitekit.PROJECT / "ansible/roles/platform_defaults/filter_plugins/airflow_fernet.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.airflow_fernet_key


def _secrets() -> dict:
    values = secret_values(sitekit.SECRETS_DIR, DECLARED, _fernet())
    # The secrets of the commands issue #15 found on command lines must be among them.
    wanted = {
        "mlflow_db_password",
        "airflow_db_password",
        "airflow_admin_password",
        "airflow_jwt_secret",
        "airflow_api_secret_key",
        "s3_secret_key",
        "mlflow_admin_password",
        "airflow_fernet_key (derived)",
    }
    assert wanted <= set(values), sorted(wanted - set(values))
    return values


def _check(result: dict, what: str) -> None:
    seen = {host: len(lines) for host, lines in result["hosts"].items()}
    sitekit.report(
        f"command-line sampling ({what}): {result['seconds']:.0f} s, {result['passes']} controller passes, "
        f"{len(result['controller'])} distinct controller lines, per host {seen}, "
        f"stopped by {result.get('stopped_by', '?')}"
    )
    # The sampler really watched: every host streamed, and it caught the roles' short commands.
    assert result["passes"] > 100, result["passes"]
    assert all(result["host_lines"][h] > 0 for h in HOSTS), result["host_lines"]
    assert any("mlflow-schema.py" in line for line in result["hosts"][MLFLOW]), "the MLflow helper was not seen"
    assert any("systemd-run" in line for line in result["hosts"][AIRFLOW]), "no systemd-run seen on the airflow host"
    found = findings(result, _secrets())
    assert not found, f"{len(found)} secrets on command lines ({what}):\n" + "\n".join(found[:40])


def _log_of(number: int) -> str:
    log = sitekit.EPHEMERAL / f"cmdlines-{number}.log"
    return log.read_text(encoding="utf-8", errors="replace")[-4000:] if log.exists() else f"(no {log.name})"


def test_no_secret_on_a_command_line_during_the_converges():
    counter = sitekit.EPHEMERAL / "cmdlines.count"
    assert counter.exists(), "converge.yml never started the sampler (no cmdlines.count)"
    started = int(counter.read_text(encoding="utf-8"))
    assert started >= 1, "converge.yml never started the sampler"
    missing = [n for n in range(1, started + 1) if not (sitekit.EPHEMERAL / f"cmdlines-{n}.json").exists()]
    assert not missing, "\n".join(f"no record of converge #{n}; its sampler's log:\n{_log_of(n)}" for n in missing)
    for number in range(1, started + 1):
        record = json.loads((sitekit.EPHEMERAL / f"cmdlines-{number}.json").read_text(encoding="utf-8"))
        _check(record, "fresh converge" if number == 1 else f"converge #{number}")


def _admin_logs_in() -> int:
    return sitekit.airflow_admin_sign_in().status_code


def test_no_secret_on_a_command_line_when_the_admin_is_reset_and_dags_published():
    defaults = sitekit.role_defaults("airflow")
    # Another password for the admin (on stdin, as the role does), so the converge must reset it.
    temp = "temporary-Passw0rd-4-test"
    reset = (
        f"printf '%s\\n%s\\n' {temp} {temp} | systemd-run --pipe --wait --collect --quiet "
        f"--property=EnvironmentFile={defaults['airflow_config_dir']}/airflow.env "
        f"--property=WorkingDirectory={defaults['airflow_home']} --uid={defaults['airflow_user']} -- "
        f"{defaults['airflow_venv']}/bin/airflow users reset-password --username admin"
    )
    sitekit.out(AIRFLOW, reset, timeout=300)
    assert _admin_logs_in() == 401

    sampler = Sampler(list(HOSTS)).start()
    try:
        converge = sitekit.playbook("site.yml", "--limit", AIRFLOW)
        publish = sitekit.playbook("ansible/playbooks/publish-dags.yml")
    finally:
        result = sampler.stop()
    assert converge["rc"] == 0, converge["failed"] or converge["output"][-3000:]
    assert publish["rc"] == 0, publish["failed"] or publish["output"][-3000:]
    assert (AIRFLOW, "airflow : Reset the admin password") in converge["changed"], sorted(converge["changed"])
    assert _admin_logs_in() == 201
    assert any("reset-password" in line for line in result["hosts"][AIRFLOW]), "the reset was not seen"
    # The publish runs on the controller (its read-write key in rclone's --config file), not on the airflow host.
    assert any("rclone" in line and " sync " in line for line in result["controller"]), "the publish was not seen"
    assert not any("publish:" in line for line in result["hosts"][AIRFLOW]), "the publish ran on the airflow host"
    found = findings(result, _secrets())
    sitekit.report(
        f"command-line sampling (admin reset + publish): {result['seconds']:.0f} s, {len(found)} secrets seen"
    )
    assert not found, f"{len(found)} secrets on command lines:\n" + "\n".join(found[:40])
