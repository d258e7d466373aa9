"""What the db scenario's tests share: its converge, run again from the repository."""

import os
import runpy
from pathlib import Path
from types import SimpleNamespace

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
# molecule/_shared/files/ansible_run.py (run_playbook), shared with the site scenario's tests.
_ANSIBLE_RUN = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).resolve().parents[2] / "_shared/files/ansible_run.py"))
)


def converge(*args) -> tuple[int, dict, str]:
    """The scenario's converge.yml from the repository root against its hosts, as an operator runs it.

    Returns the exit status, {task name: result} of the tasks that reported changed, and the output.
    """
    run, data = _ANSIBLE_RUN.run_playbook(os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE), *args, timeout=900)
    changed = {
        task["task"]["name"]: result
        for play in data["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("changed")
    }
    return run.returncode, changed, run.stdout + run.stderr
