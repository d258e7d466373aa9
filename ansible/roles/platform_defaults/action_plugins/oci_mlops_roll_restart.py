"""oci_mlops_roll_restart: one host's step of a rolling restart.

The restart handlers of MLflow, the API and Airflow run this with
`throttle: 1`: one host at a time, each restarted unit answering again
(oci-mlops-restart-wait on the host) before the next host's restart starts.
A failed restart stops the roll: the hosts after it are held
(`oci-mlops-restart-wait --hold`: not restarted, they keep serving; the helper
leaves a marker the role's next run restarts the unit for).

Why an action plugin: the roll's failures must be known when the next host's
restart EXECUTES. A registered result is read when the next host's task is
queued, and the free strategy may queue it once the failed host's worker
process has ended but before that host's result is processed: in the scale
lab both api hosts restarted although the first had failed. So each failure
is written, here, on the controller, before this host's worker ends, to a
file in this run's local temporary directory (removed when the run ends),
and read by the next host's step when it runs.

Options:
  roll:    the roll's name, shared by the hosts that restart one at a time (e.g. mlflow)
  unit:    the systemd unit
  url:     the health URL that must answer 200 ("-": none, the restart is enough)
  timeout: seconds the unit may take to answer
  settle:  seconds to wait after it answered (the load balancer taking it back)
  helper:  the helper's path on the host (default /usr/local/sbin/oci-mlops-restart-wait)
"""

from __future__ import annotations

import fcntl
import json
import os

import ansible.constants as C
from ansible.plugins.action import ActionBase

HELPER = "/usr/local/sbin/oci-mlops-restart-wait"


def _state_path() -> str:
    # This run's local temporary directory (created by the controller's main
    # process before it forks the workers; Ansible removes it at the end).
    return os.path.join(C.DEFAULT_LOCAL_TMP, "oci-mlops-roll-failures.json")


def _failed(roll: str) -> list[str]:
    try:
        with open(_state_path(), encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            text = handle.read()
    except FileNotFoundError:
        return []
    return list((json.loads(text) if text.strip() else {}).get(roll, []))


def _record(roll: str, host: str) -> None:
    path = _state_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        state = json.loads(text) if text.strip() else {}
        hosts = state.setdefault(roll, [])
        if host not in hosts:
            hosts.append(host)
        handle.seek(0)
        handle.truncate()
        json.dump(state, handle)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("roll", "unit", "url", "timeout", "settle", "helper"))
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        missing = [name for name in ("roll", "unit", "url") if not args.get(name)]
        if missing:
            return {**result, "failed": True, "msg": f"oci_mlops_roll_restart: {', '.join(missing)} required"}
        roll, unit, url = str(args["roll"]), str(args["unit"]), str(args["url"])
        timeout, settle = str(args.get("timeout", 180)), str(args.get("settle", 0))
        if self._task.check_mode:
            return {**result, "skipped": True, "msg": f"check mode: {unit} would restart"}
        host = (task_vars or {}).get("inventory_hostname", "")
        failed = [name for name in _failed(roll) if name != host]
        argv = [str(args.get("helper") or HELPER)]
        if failed:
            argv += ["--hold", ", ".join(failed)]
        argv += [unit, url, timeout, settle]
        done = self._execute_module(
            module_name="ansible.legacy.command", module_args={"argv": argv}, task_vars=task_vars
        )
        failure = done.get("failed") or done.get("unreachable") or done.get("rc", 1) != 0
        if failure and not failed:
            # Where the roll stopped (a held host is not: it still serves).
            _record(roll, host)
        done["changed"] = not failed
        done["held"] = bool(failed)
        if failure:
            done["failed"] = True
            done.setdefault("msg", (done.get("stderr") or "").strip()[-500:] or f"{unit}: restart failed")
        return {**result, **done}
