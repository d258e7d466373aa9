"""ansible-playbook from the repository root, as an operator runs it, read
through the JSON callback: the helper the scenarios' tests share (sitekit's
playbook, dbkit's converge). Loaded with runpy (the scenarios' tests are not a
package)."""

import json
import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]


def run_playbook(inventory: str, playbook: str, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    """`ansible-playbook -i INVENTORY PLAYBOOK ARGS...` from the repository root,
    with its ansible.cfg, roles and collections and the JSON callback, no colour.
    Returns the finished process and the callback's report; fails naming the
    playbook when there is no report (ansible-playbook stopped before its first
    play: a syntax error, a missing inventory)."""
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(PROJECT / "ansible" / "roles"),
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".ansible" / "collections"),
    )
    argv = ["ansible-playbook", "-i", inventory, playbook, *args]
    run = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        data, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    except ValueError as exc:
        raise AssertionError(
            f"ansible-playbook {playbook} gave no JSON (rc {run.returncode}):\n"
            f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        ) from exc
    return run, data
