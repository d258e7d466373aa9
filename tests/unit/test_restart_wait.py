"""The rolling-restart helper (ansible/roles/systemd_service/files/oci-mlops-restart-wait):
run as the handlers run it, with a systemctl on PATH that records its calls
(the real one restarts the real units in the scale lab, tests/scale) and a
real HTTP server standing for the unit's health endpoint. A failed or held
restart leaves the marker its role's next run restarts the unit for; a
restart that answered removes it."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[2] / "ansible/roles/systemd_service/files/oci-mlops-restart-wait"
UNIT = "oci-mlops-api.service"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def health():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.status = 200  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def host(tmp_path):
    """PATH with a systemctl that logs its arguments (a restart exits $SYSTEMCTL_RC); the marker directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = restart ] && exit "${{SYSTEMCTL_RC:-0}}"\nexit 0\n', encoding="utf-8"
    )
    fake.chmod(0o755)
    pending = tmp_path / "pending"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OCI_MLOPS_RESTART_PENDING_DIR": str(pending)}
    return {"env": env, "log": log, "pending": pending}


def _run(host, *args, rc: int = 0) -> subprocess.CompletedProcess:
    env = {**host["env"], "SYSTEMCTL_RC": str(rc)}
    return subprocess.run([sys.executable, str(HELPER), *args], env=env, capture_output=True, text=True, timeout=60)


def _calls(host) -> list[str]:
    return host["log"].read_text(encoding="utf-8").splitlines() if host["log"].exists() else []


def test_a_restart_that_answers_clears_a_pending_marker(host, health):
    host["pending"].mkdir()
    (host["pending"] / UNIT).write_text("its restart failed: HTTP 503\n", encoding="utf-8")
    done = _run(host, UNIT, f"http://127.0.0.1:{health.server_port}/health", "10")
    assert done.returncode == 0, done.stderr
    assert _calls(host) == ["daemon-reload", f"restart {UNIT}"]
    assert not (host["pending"] / UNIT).exists()


def test_a_restart_that_does_not_answer_fails_and_leaves_the_marker(host, health):
    health.status = 503
    done = _run(host, UNIT, f"http://127.0.0.1:{health.server_port}/health", "2")
    assert done.returncode == 1
    assert "HTTP 503" in done.stderr
    assert (host["pending"] / UNIT).read_text(encoding="utf-8") == "its restart failed: HTTP 503\n"


def test_a_held_restart_restarts_nothing_and_leaves_the_marker(host, health):
    done = _run(host, "--hold", "scale-api-1", UNIT, f"http://127.0.0.1:{health.server_port}/health", "10", "11")
    assert done.returncode == 1
    assert _calls(host) == []
    assert "the roll stopped at scale-api-1" in done.stderr
    assert "scale-api-1" in (host["pending"] / UNIT).read_text(encoding="utf-8")


@pytest.mark.parametrize(("rc", "code", "marker"), [(0, 0, False), (1, 1, True)], ids=["restarted", "failed"])
def test_a_unit_without_http_counts_on_its_restart(host, rc, code, marker):
    done = _run(host, "airflow-scheduler.service", "-", "10", rc=rc)
    assert done.returncode == code, done.stderr
    assert _calls(host) == ["daemon-reload", "restart airflow-scheduler.service"]
    assert (host["pending"] / "airflow-scheduler.service").exists() is marker
