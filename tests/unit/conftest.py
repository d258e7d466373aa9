"""Shared helpers for the repository's unit tests."""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "ansible" / "roles"


def load_plugin(path: Path):
    """Import a role's plugin file as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, f"{path} is not loadable as a module"
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


# The reader of the locks with hashes (common's filter plugin, also used by the
# roles): LOCK.lock_versions(text) is {normalized name: versions} of a lock,
# freeze, constraints file or .in (a universal lock may pin several versions).
LOCK = load_plugin(ROLES / "common" / "filter_plugins" / "common_venv_lock.py")


PLATFORM_DEFAULTS = ROLES / "platform_defaults" / "defaults" / "main"
TOPOLOGY = yaml.safe_load((PLATFORM_DEFAULTS / "topology.yml").read_text(encoding="utf-8"))["oci_mlops_topology"]
# The roles a platform host applies besides common and firewalld: their
# defaults (ports from the topology) are part of what a host sees.
PLATFORM_ROLES = [svc["role"] for svc in TOPOLOGY["services"].values()] + ["mysql_schemas"]


def ansible_env(**extra: str) -> dict[str, str]:
    """This process's environment for an ansible-playbook whose output a test
    reads: the repository's ansible.cfg and plain text. ANSIBLE_FORCE_COLOR is
    turned off too: outside CI the Makefile exports it (colour in a terminal),
    and it wins over ANSIBLE_NOCOLOR. EXTRA on top."""
    return dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **extra
    )


def ansible_debug(inventory: Path, host: str, arg: str, **env: str) -> dict:
    """Render variables as the platform's plays see them on HOST of INVENTORY:
    a tiny playbook that loads platform_defaults and the service roles'
    defaults (their tasks skipped), sets the peers' private addresses
    (common's peer_facts, as platform.yml does, for an inventory host: give
    the hosts private_ip, nothing is contacted), then runs `debug ARG`
    ("var=NAME" or "msg=TEMPLATE"). Extra environment ENV; returns the host's
    result (the JSON callback's). HOST may be several, comma-separated (one
    ansible-playbook for all: each run costs ~4 CPU-s): then the result is
    {host: result}."""
    key, _, value = arg.partition("=")
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "render.yml"
        playbook.write_text(
            yaml.safe_dump(
                [
                    {
                        "name": "Render",
                        "hosts": host,
                        "gather_facts": False,
                        "roles": ["platform_defaults"] + [{"role": r, "when": False} for r in PLATFORM_ROLES],
                        "tasks": [
                            {
                                "name": "Peers' private addresses",
                                "ansible.builtin.include_role": {"name": "common", "tasks_from": "peer_facts"},
                                "vars": {"common_peer_hosts": "{{ groups['all'] }}"},
                                "when": "inventory_hostname in groups['all']",
                            },
                            {"name": "Render", "ansible.builtin.debug": {key: value}},
                        ],
                    }
                ]
            )
        )
        run = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), str(playbook)],
            cwd=ROOT,
            env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", **env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # The JSON report follows the timer callbacks' lines.
    report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    results = report["plays"][0]["tasks"][-1]["hosts"]
    if "," in host:
        return {h: results[h] for h in host.split(",")}
    return results[host]


# What Terraform writes into inventory/oci for the managed services (a fake
# OCI inventory's variables, for rendering the platform without a cloud).
OCI_INFRA = {
    "infra_region": "eu-frankfurt-1",
    "infra_namespace": "nsx",
    "infra_compartment_ocid": "ocid1.compartment.oc1..x",
    "infra_artifacts_bucket": "mlops-artifacts",
    "infra_dags_bucket": "mlops-dags",
    "infra_task_logs_bucket": "mlops-task-logs",
    "infra_db_endpoint": "10.0.2.5",
    "infra_db_admin_user": "admin",
}


def render_names(tmp: Path, inventory: dict, hosts: str, names: list[str], group_vars: Path | None = None) -> dict:
    """ansible_debug of several expressions at once on HOSTS (comma-separated:
    {host: values}) of INVENTORY, written to TMP/inv (GROUP_VARS linked
    beside it), secrets generated into TMP/secrets. Each name is a variable,
    or `key:expression`."""
    (tmp / "inv").mkdir(exist_ok=True)
    path = tmp / "inv" / "hosts.json"
    path.write_text(json.dumps(inventory))
    if group_vars is not None and not (tmp / "inv" / "group_vars").exists():
        (tmp / "inv" / "group_vars").symlink_to(group_vars)
    got = ansible_debug(
        path,
        hosts,
        "msg={{ {" + ", ".join(f"'{n.split(':', 1)[0]}': {n.split(':', 1)[-1]}" for n in names) + "} }}",
        OCI_MLOPS_SECRETS_DIR=str(tmp / "secrets"),
    )
    return {h: r["msg"] for h, r in got.items()} if "," in hosts else got["msg"]


def run_local_play(
    tmp: Path,
    plays: list,
    extra: dict | None = None,
    *,
    topology: bool = False,
    timeout: int = 120,
    args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """ansible-playbook of PLAYS (play dicts) on localhost, local connection and
    this Python, with the repository's ansible.cfg and roles; EXTRA (and, with
    TOPOLOGY, the platform's topology, which the service roles' port defaults
    read) as extra variables, and ARGS (e.g. --check). Returns the finished
    process; the caller asserts."""
    (tmp / "play.yml").write_text(yaml.safe_dump(plays))
    (tmp / "extra.json").write_text(json.dumps(extra or {}))
    topology_args = ["-e", f"@{PLATFORM_DEFAULTS / 'topology.yml'}"] if topology else []
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(tmp / "play.yml"), *topology_args]
        + ["-e", f"@{tmp / 'extra.json'}", "-e", f"ansible_python_interpreter={sys.executable}", *args],
        capture_output=True,
        text=True,
        env=ansible_env(ANSIBLE_ROLES_PATH=str(ROLES)),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
