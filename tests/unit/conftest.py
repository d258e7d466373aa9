"""Shared helpers for the repository's unit tests."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def ansible_debug(inventory: Path, host: str, arg: str, **env: str) -> dict:
    """Run `ansible HOST -m debug -a ARG` with the platform playbooks' group_vars
    (--playbook-dir ansible/playbooks) on INVENTORY, extra environment ENV;
    return the host's result (the JSON callback's)."""
    run = subprocess.run(
        [
            "ansible",
            host,
            "-i",
            str(inventory),
            "--playbook-dir",
            str(ROOT / "ansible" / "playbooks"),
            "-m",
            "ansible.builtin.debug",
            "-a",
            arg,
        ],
        cwd=ROOT,
        env=dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # The JSON report follows the timer callbacks' lines.
    report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    return report["plays"][0]["tasks"][0]["hosts"][host]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
