"""Drift: hand-made changes on the converged hosts are reported by check mode and repaired by a normal run.

To bound the run time every case is injected at once (each is on its own
host/task), then ONE `site.yml --check --diff` must report every case by host
and task name, ONE normal run repairs, and a last run reports changed=0 and
every case is verified repaired on its host. That a check run on the clean
platform reports nothing is the first suite's (test_0_check_mode.py).
"""

import re
from dataclasses import dataclass

import pytest
import sitekit
from sitekit import AIRFLOW, API, DB, EDGE, MLFLOW

_PYMYSQL = re.search(r"pymysql==(\S+)", (sitekit.PROJECT / "ansible/roles/mlflow/defaults/main.yml").read_text())
assert _PYMYSQL, "the mlflow role's defaults pin no pymysql"
PYMYSQL_PIN = _PYMYSQL.group(1)
MLFLOW_UNIT = "/etc/systemd/system/mlflow.service"
API_DROPIN_DIR = "/etc/systemd/system/oci-mlops-api.service.d"
GRANTS = "mysql -Nse \"SHOW GRANTS FOR 'mlflow'@'%'\""
# Behind the edge MLflow's port admits its clients' hosts only, the edge first
# (mlflow_client_cidrs: oci_mlops_service_client_cidrs, platform_defaults wiring.yml).
MLFLOW_RULE = f'rule family="ipv4" source address="{sitekit.ip(EDGE)}/32" port port="5000" protocol="tcp" accept'
EDGE_CONF = "/etc/nginx/nginx.conf"


@dataclass(frozen=True)
class Case:
    name: str
    host: str
    inject: str
    tasks: tuple  # task names (role : task) of which at least the first must report changed on host
    repaired: str  # shell check on host: exit 0 when repaired

    def __str__(self):
        return self.name


CASES = [
    Case(
        "edited unit file (object-store)",
        DB,
        "sed -i 's/^\\[Service\\]$/[Service]\\nEnvironment=LAB_DRIFT=1/' /etc/systemd/system/object-store.service"
        " && systemctl daemon-reload",
        ("systemd_service : Install the unit and its timer",),
        "! grep -q LAB_DRIFT /etc/systemd/system/object-store.service"
        " && ! systemctl show -p Environment object-store | grep -q LAB_DRIFT"
        " && systemctl is-active --quiet object-store",
    ),
    Case(
        "extra open firewall port 6666/tcp",
        DB,
        "firewall-cmd -q --permanent --add-port=6666/tcp && firewall-cmd -q --add-port=6666/tcp",
        ("firewalld : Close ports nobody declared",),
        "! firewall-cmd --list-ports | grep -qw 6666/tcp"
        " && ! firewall-cmd --permanent --list-ports | grep -qw 6666/tcp",
    ),
    Case(
        "dropped database grant (DROP on mlflow.*)",
        DB,
        "mysql -e \"REVOKE DROP ON mlflow.* FROM 'mlflow'@'%'\"",
        ("mysql_schemas : Create each database's user, with privileges on its own database only",),
        f"{GRANTS} | grep -q 'GRANT ALL PRIVILEGES ON .mlflow.\\.\\*'",
    ),
    Case(
        # A server variable persisted by hand: the datadir's mysqld-auto.cnf
        # overrides the managed oci-mlops.cnf at every start. The role resets it
        # and sets the file's value back at runtime (no restart).
        "SET PERSIST of a managed MySQL variable (max_connections 300 -> 250)",
        DB,
        "mysql -e 'SET PERSIST max_connections = 250'",
        ("mysql_server : Compare the effective settings with oci-mlops.cnf, nothing persisted",),
        "[ \"$(mysql -NBe 'SELECT COUNT(*) FROM performance_schema.persisted_variables')\" = 0 ]"
        " && [ \"$(mysql -NBe 'SELECT @@GLOBAL.max_connections')\" = 300 ]",
    ),
    Case(
        "changed MLflow flag (--workers 2 -> 3)",
        MLFLOW,
        f"sed -i 's/--workers 2 /--workers 3 /' {MLFLOW_UNIT}"
        f" && grep -q -- '--workers 3 ' {MLFLOW_UNIT} && systemctl daemon-reload",
        ("systemd_service : Install the unit and its timer",),
        f"grep -q -- '--workers 2 ' {MLFLOW_UNIT} && systemctl show -p ExecStart mlflow | grep -q -- '--workers 2 '"
        " && systemctl is-active --quiet mlflow",
    ),
    Case(
        "closed declared port 5000/tcp (its rich rule for the edge's address)",
        MLFLOW,
        f"firewall-cmd -q --remove-rich-rule='{MLFLOW_RULE}'"
        f" && firewall-cmd -q --permanent --remove-rich-rule='{MLFLOW_RULE}'",
        ("firewalld : Add the declared source-restricted openings",),
        f"firewall-cmd --list-rich-rules | grep -qxF '{MLFLOW_RULE}'"
        f" && firewall-cmd --permanent --list-rich-rules | grep -qxF '{MLFLOW_RULE}'",
    ),
    Case(
        "downgraded package in a venv (PyMySQL in MLflow's)",
        MLFLOW,
        "/opt/mlflow/venv/bin/pip install -q --disable-pip-version-check pymysql==1.1.1",
        ("mlflow : Install MLflow into the root-owned virtualenv",),
        '[ "$(/opt/mlflow/venv/bin/python -c \'import importlib.metadata as m; print(m.version("PyMySQL"))\')"'
        f" = {PYMYSQL_PIN} ]",
    ),
    Case(
        "edited airflow.cfg key (parallelism 8 -> 32)",
        AIRFLOW,
        "sed -i 's/^parallelism = 8$/parallelism = 32/' /etc/airflow/airflow.cfg"
        " && grep -q '^parallelism = 32$' /etc/airflow/airflow.cfg",
        ("airflow : Write the configuration (airflow.cfg, FAB auth manager, environment, MySQL's CA)",),
        "grep -q '^parallelism = 8$' /etc/airflow/airflow.cfg",
    ),
    Case(
        "deleted DAG sync timer",
        AIRFLOW,
        "systemctl disable -q --now airflow-dag-sync.timer && rm /etc/systemd/system/airflow-dag-sync.timer"
        " && systemctl daemon-reload",
        ("systemd_service : Install the unit and its timer",),
        "test -f /etc/systemd/system/airflow-dag-sync.timer && systemctl is-enabled -q airflow-dag-sync.timer"
        " && systemctl is-active -q airflow-dag-sync.timer",
    ),
    Case(
        "secret file world-readable (Airflow's JWT secret)",
        AIRFLOW,
        "chmod 0644 /etc/airflow/credentials/airflow_jwt_secret",
        ("airflow : Write the credential files (database URLs and shared secrets) and the pipelines' environment",),
        '[ "$(stat -c %a /etc/airflow/credentials/airflow_jwt_secret)" = 440 ]',
    ),
    Case(
        "secret env file world-readable (api.env)",
        API,
        "chmod 0644 /etc/oci-mlops-api/api.env",
        ("systemd_service : Write the environment file",),
        '[ "$(stat -c %a /etc/oci-mlops-api/api.env)" = 640 ]',
    ),
    Case(
        "hand-added key in the API keys file (api-keys)",
        API,
        "echo 'lab-drift=lab-drift-key-0123456789' >> /etc/oci-mlops-api/api-keys",
        ("model_api : Write the API keys file",),
        "! grep -q '^lab-drift=' /etc/oci-mlops-api/api-keys"
        ' && [ "$(stat -c %a:%U:%G /etc/oci-mlops-api/api-keys)" = 640:root:model-api ]',
    ),
    Case(
        "stopped and disabled service (dashboard)",
        API,
        "systemctl disable -q --now oci-mlops-dashboard",
        ("dashboard : Start and enable the dashboard",),
        "systemctl is-active -q oci-mlops-dashboard && systemctl is-enabled -q oci-mlops-dashboard",
    ),
    Case(
        "unmanaged drop-in on a managed unit (oci-mlops-api)",
        API,
        f"mkdir -p {API_DROPIN_DIR}"
        f" && printf '[Service]\\nEnvironment=LAB_DRIFT=1\\n' > {API_DROPIN_DIR}/lab-drift.conf"
        " && systemctl daemon-reload && systemctl show -p Environment oci-mlops-api | grep -q LAB_DRIFT",
        ("systemd_service : Remove unmanaged drop-ins of the managed units",),
        f"! test -e {API_DROPIN_DIR}/lab-drift.conf"
        " && ! systemctl show -p Environment oci-mlops-api | grep -q LAB_DRIFT"
        " && systemctl is-active --quiet oci-mlops-api",
    ),
    Case(
        # Not the host's first unit: the removal is included only when the
        # host's one listing of the unit directory has drop-ins of this unit.
        "unmanaged drop-in on a later unit of the host (airflow-triggerer)",
        AIRFLOW,
        "mkdir -p /etc/systemd/system/airflow-triggerer.service.d"
        " && printf '[Service]\\nNice=5\\n' > /etc/systemd/system/airflow-triggerer.service.d/lab-drift.conf"
        " && systemctl daemon-reload && systemctl show -p Nice airflow-triggerer | grep -qx Nice=5",
        ("systemd_service : Remove unmanaged drop-ins of the managed units",),
        "! test -e /etc/systemd/system/airflow-triggerer.service.d/lab-drift.conf"
        " && systemctl show -p Nice airflow-triggerer | grep -qx Nice=0",
    ),
    Case(
        # A converged host asks the user modules nothing (common system_user
        # reads the account once); a hand-edited account is still found.
        "service user given a login shell (airflow)",
        AIRFLOW,
        "usermod -s /bin/bash airflow",
        ("common : Create the service user airflow",),
        "getent passwd airflow | grep -q ':/usr/sbin/nologin$'",
    ),
    Case(
        "edited journald drop-in (common)",
        API,
        "sed -i 's/^SystemMaxUse=.*/SystemMaxUse=8G/' /etc/systemd/journald.conf.d/50-oci-mlops.conf"
        " && grep -q '^SystemMaxUse=8G' /etc/systemd/journald.conf.d/50-oci-mlops.conf",
        ("common : Configure pip, a persistent size-capped journal and chrony",),
        "! grep -q '^SystemMaxUse=8G' /etc/systemd/journald.conf.d/50-oci-mlops.conf",
    ),
    Case(
        # A TLS setting weakened by hand (and applied): the role's one nginx.conf
        # is rewritten and nginx reloaded.
        "TLS 1.0 and 1.1 added to the edge's ssl_protocols",
        EDGE,
        f"sed -i 's/ssl_protocols TLSv1.2 TLSv1.3;/ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;/' {EDGE_CONF}"
        f" && grep -q 'ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;' {EDGE_CONF} && systemctl reload nginx",
        ("edge : Install the nginx configuration (checked with nginx -t first)",),
        f"grep -q 'ssl_protocols TLSv1.2 TLSv1.3;' {EDGE_CONF} && ! grep -q 'TLSv1.1' {EDGE_CONF}",
    ),
]
RUNS: dict[str, dict] = {}


def test_inject_every_case():
    """Inject every case; each repair check passes before and fails after: the checks can tell."""
    for case in CASES:
        assert sitekit.sh(case.host, case.repaired).returncode == 0, f"{case}: repair check fails on the clean host"
    for case in CASES:
        run = sitekit.sh(case.host, case.inject, timeout=300)
        assert run.returncode == 0, f"{case}: injection failed: {run.stderr[-800:]}"
        assert sitekit.sh(case.host, case.repaired).returncode != 0, (
            f"{case}: injected, but the repair check still passes"
        )
    sitekit.report(f"drift cases injected: {len(CASES)}")


def test_one_check_run_reports_every_case():
    result = sitekit.playbook("site.yml", check=True)
    RUNS["check"] = result
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    detected = [case for case in CASES if (case.host, case.tasks[0]) in result["changed"]]
    sitekit.report(
        f"check mode with drift: {result['seconds']:.0f} s, changed={sitekit.changed_count(result)}, "
        f"cases detected {len(detected)}/{len(CASES)}"
    )
    for case in CASES:
        sitekit.report(
            f"  drift {'detected' if case in detected else 'MISSED'}: {case} -> {case.host}: {case.tasks[0]}"
        )
    drift_hosts = {case.host for case in CASES}
    strays = {(h, t) for h, t in result["changed"] if h not in drift_hosts}
    assert len(detected) == len(CASES), f"check mode missed cases; it reported:\n{sitekit.changed_lines(result)}"
    assert not strays, f"changes reported on hosts without drift: {strays}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_task_of_the_case_reports_changed(case):
    assert "check" in RUNS, "no check run"
    missing = [t for t in case.tasks if (case.host, t) not in RUNS["check"]["changed"]]
    assert not missing, f"{case}: not reported: {missing}"


def test_one_normal_run_repairs():
    result = sitekit.playbook("site.yml")
    RUNS["repair"] = result
    sitekit.report(f"repair run: {result['seconds']:.0f} s, changed={sitekit.changed_count(result)}")
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    for case in CASES:
        assert (case.host, case.tasks[0]) in result["changed"], f"{case}: the repair run did not change {case.tasks[0]}"


def test_next_run_reports_no_change():
    result = sitekit.playbook("site.yml")
    sitekit.report(
        f"run after the repair: {result['seconds']:.0f} s, changed={sitekit.changed_count(result)}\n"
        + sitekit.profile(result)
    )
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    assert sitekit.changed_count(result) == 0, f"not idempotent after the repair:\n{sitekit.changed_lines(result)}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case_is_repaired_on_the_host(case):
    assert "repair" in RUNS, "no repair run"
    run = sitekit.sh(case.host, case.repaired)
    sitekit.report(f"  drift {'repaired' if run.returncode == 0 else 'NOT REPAIRED'}: {case} on {case.host}")
    assert run.returncode == 0, f"{case}: still drifted on {case.host}"


def test_platform_serves_after_the_repair(airflow):
    assert sitekit.wait(sitekit.mlflow_db_ok, 120) is not None
    assert sitekit.wait(sitekit.api_ready, 120) is not None
    assert sitekit.wait(sitekit.dashboard_ok, 120) is not None
    assert sitekit.wait(lambda: airflow.dag_ids() >= {sitekit.TRAINING_DAG}, 120) is not None
