"""Helpers of the serving scenario's suites (API and dashboard)."""

import ipaddress
import os
from pathlib import Path

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = Path(__file__).resolve().parents[1]
SHARED_FILES = SCENARIO.parent / "_shared" / "files"


def secret(name):
    """A controller-generated secret of the scenario (ansible/roles/platform_defaults)."""
    return (Path(INVENTORY).parent / ".secrets" / name).read_text().split()[0]


def ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def copy_to(host, source):
    """Put a local file on the host under /tmp/molecule (readable by every user); return its path."""
    host.run("mkdir -p /tmp/molecule && chmod 0755 /tmp/molecule")
    host.run(f"cat > /tmp/molecule/{source.name} <<'PY'\n{source.read_text()}\nPY")
    host.run(f"chmod 0644 /tmp/molecule/{source.name}")
    return f"/tmp/molecule/{source.name}"


def register_model(name):
    """Register a model with alias champion as the MLflow admin, with MLflow's own client on the MLflow host.

    Returns the version."""
    mlflow_host = testinfra.get_host(f"ansible://mol-api-mlflow?ansible_inventory={INVENTORY}")
    script = copy_to(mlflow_host, SHARED_FILES / "register_model.py")
    env = (
        "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_TRACKING_USERNAME=admin "
        f"MLFLOW_TRACKING_PASSWORD='{secret('mlflow_admin_password')}' MLFLOW_DISABLE_TELEMETRY=true"
    )
    result = mlflow_host.run(f"{env} /opt/mlflow/venv/bin/python {script} {name}")
    assert result.rc == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def assert_runs_as(host, unit, user):
    """The unit is running and enabled, and its main process runs as `user` (not root)."""
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled
    assert host.check_output(f"systemctl show -p User --value {unit}") == user
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
    assert pid != "0"
    assert host.check_output(f"ps -o user= -p {pid}") == user


def env_file(host, path, group):
    """The content of a service's environment file, after checking it is 0640 root:<group>."""
    env = host.file(path)
    assert env.mode == 0o640
    assert (env.user, env.group) == ("root", group)
    return env.content_string
