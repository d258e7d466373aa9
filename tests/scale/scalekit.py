"""Helpers of tests/scale (conftest.py takes its fixtures from here; the
tests import the rest by this name, not as `conftest`, which tests/outside's
module also is). The scale profile (`make lab SCALE=2`, inventory/lab-scale) seen from the
control node: the users' fixtures of tests/outside (client.env, the users'
clients through the edge), plus what an operator does to a host of the lab
(stop a service with `docker exec <host> systemctl ...`).

    OCI_MLOPS_INVENTORY   the inventory directory (make scale-test: inventory/lab-scale)

Run after tests/outside against the same platform (make scale-test runs
both): the model the quickstart trained is what the load loops predict with.
Measured figures go to artifacts/scale-report.txt.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
import yaml

_OUTSIDE = Path(__file__).resolve().parents[1] / "outside" / "conftest.py"
_spec = importlib.util.spec_from_file_location("outside_conftest", _OUTSIDE)
assert _spec is not None and _spec.loader is not None
outside = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(outside)

# The users' fixtures, as tests/outside has them.
client_env = outside.client_env
user_env = outside.user_env

INVENTORY = outside.INVENTORY
REPORT = outside.ARTIFACTS / "scale-report.txt"


def start_report() -> None:
    outside.start_report(REPORT, "tests/scale")


def report(line: str) -> None:
    """Append a measured figure to artifacts/scale-report.txt (and print it)."""
    outside.append_report(REPORT, line)


@pytest.fixture(scope="session")
def groups() -> dict[str, list[str]]:
    """The inventory's groups and their hosts (the lab's hosts.yml)."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text(encoding="utf-8"))
    found = {name: list((spec or {}).get("hosts") or {}) for name, spec in hosts["all"]["children"].items()}
    for group in ("mlflow", "api"):
        assert len(found.get(group, [])) >= 2, f"{INVENTORY} has fewer than two {group} hosts: not the scale profile"
    return found


def on_host(host: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command on a lab host as its operator would (docker exec)."""
    return subprocess.run(["docker", "exec", host, *argv], capture_output=True, text=True, timeout=timeout, check=False)


def systemctl(host: str, action: str, unit: str) -> None:
    done = on_host(host, "systemctl", action, unit)
    assert done.returncode == 0, f"{host}: systemctl {action} {unit}: {done.stderr[-500:]}"


def edge_upstreams(edge: str, since: str, route: str) -> list[str]:
    """The backends (upstream=) the edge's access log names for requests under ROUTE since SINCE."""
    done = on_host(edge, "journalctl", "-t", "nginx_edge", "--since", since, "-o", "cat", "--no-pager")
    assert done.returncode == 0, done.stderr[-500:]
    return [
        line.split("upstream=", 1)[1].split()[0]
        for line in done.stdout.splitlines()
        if f'"POST {route}' in line or f'"GET {route}' in line
    ]
