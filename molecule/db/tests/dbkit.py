"""What the db scenario's tests share: its converge, run again from the repository."""

import json
import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"


def converge(*args) -> tuple[int, dict, str]:
    """The scenario's converge.yml from the repository root against its hosts, as an operator runs it.

    Returns the exit status, {task name: result} of the tasks that reported changed, and the output.
    """
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(PROJECT / "ansible" / "roles"),
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".ansible" / "collections"),
    )
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = run.stdout + run.stderr
    data, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    changed = {
        task["task"]["name"]: result
        for play in data["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("changed")
    }
    return run.returncode, changed, output
