"""platform_defaults' action plugin oci_mlops_roll_restart, run by
ansible-playbook as the restart handlers run it (throttle: 1, the free
strategy), on two hosts of a local inventory, with a helper on PATH that
records how it was called (the real helper restarts real units in the scale
lab, tests/scale). A failed restart holds the next host's (--hold naming the
failed host); restarts that answer all run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "ansible/roles/platform_defaults/action_plugins"


def _playbook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _run(tmp_path: Path, rc: int) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    log = tmp_path / "calls.jsonl"
    helper = tmp_path / "helper"
    helper.write_text(
        f"#!{sys.executable}\nimport json, sys, time\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "time.sleep(0.5)\n"
        f"sys.exit(1 if sys.argv[1] == '--hold' else {rc})\n",
        encoding="utf-8",
    )
    helper.chmod(0o755)
    hosts = {
        "all": {
            "hosts": {
                name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                for name in ("host-a", "host-b", "host-c")
            }
        }
    }
    (tmp_path / "hosts.json").write_text(json.dumps(hosts), encoding="utf-8")
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "strategy": "ansible.builtin.free",
            "tasks": [
                {
                    "name": "Roll",
                    "oci_mlops_roll_restart": {
                        "roll": "test",
                        "unit": "svc.service",
                        "url": "-",
                        "timeout": 5,
                        "helper": str(helper),
                    },
                    "throttle": 1,
                }
            ],
        }
    ]
    (tmp_path / "play.json").write_text(json.dumps(play), encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_ACTION_PLUGINS": str(PLUGINS),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local-tmp"),
    }
    done = _playbook(env, "-i", str(tmp_path / "hosts.json"), str(tmp_path / "play.json"))
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return done, calls


def test_restarts_that_answer_all_run_one_at_a_time(tmp_path):
    done, calls = _run(tmp_path, rc=0)
    assert done.returncode == 0, done.stdout[-2000:]
    assert calls == [["svc.service", "-", "5", "0"]] * 3


def test_a_failed_restart_holds_the_hosts_after_it(tmp_path):
    """The first host's restart fails; the two others are held, naming it (not restarted)."""
    done, calls = _run(tmp_path, rc=1)
    assert done.returncode != 0
    normal = [c for c in calls if c[0] != "--hold"]
    held = [c for c in calls if c[0] == "--hold"]
    assert len(normal) == 1 and len(held) == 2, calls
    failed_host = held[0][1]
    assert failed_host in ("host-a", "host-b", "host-c") and all(c[1] == failed_host for c in held), calls
    assert "held" in done.stdout


@pytest.mark.parametrize("missing", ["roll", "unit", "url"])
def test_a_missing_option_is_named(tmp_path, missing):
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"oci_mlops_roll_restart": {k: "x" for k in ("roll", "unit", "url") if k != missing}}],
        }
    ]
    (tmp_path / "play.json").write_text(json.dumps(play), encoding="utf-8")
    env = {**os.environ, "ANSIBLE_ACTION_PLUGINS": str(PLUGINS), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    done = _playbook(env, "-i", "localhost,", "-c", "local", str(tmp_path / "play.json"))
    assert done.returncode != 0
    assert f"{missing} required" in done.stdout, done.stdout[-2000:]
