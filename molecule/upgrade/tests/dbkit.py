"""What the db host's tests share: the scenario's converge, run again from the repository on that host."""

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
    """The scenario's converge.yml from the repository root on the db host, as an operator runs it.

    `--limit db` (site.yml's own way to converge one group): the plays of the other groups
    are skipped, the db host's peers only lend their addresses (common's peer_facts).

    Returns the exit status, {task name: result} of the tasks that reported changed, and the output.
    """
    run, data = _ANSIBLE_RUN.run_playbook(
        os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE), "--limit", "db", *args, timeout=900
    )
    changed = {
        task["task"]["name"]: result
        for play in data["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("changed")
    }
    return run.returncode, changed, run.stdout + run.stderr
