"""Download directories: a living process's is never swept, a dead one's is.

Real processes holding real locks, one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oci_mlops_app import downloads

# A process that takes its download directory under argv[1], prints its path and waits.
HOLDER = """
import sys, time
from oci_mlops_app.downloads import DownloadDir
d = DownloadDir(sys.argv[1])
(d.path / "model.pkl").write_text("weights")
print(d.path, flush=True)
time.sleep(600)
"""


def _backdate(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def _holder(root: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_sweep_deletes_the_directories_of_dead_processes_only(tmp_path: Path) -> None:
    alive, alive_dir = _holder(tmp_path)
    dead, dead_dir = _holder(tmp_path)
    try:
        dead.send_signal(signal.SIGKILL)  # no clean-up of its own: the kernel drops its lock
        dead.wait(timeout=30)
        for path in (alive_dir, dead_dir):
            _backdate(path, 3600)
        # someone else's files in the same root, and a fresh directory without a lock yet
        (tmp_path / "other").mkdir()
        _backdate(tmp_path / "other", 3600)
        fresh = tmp_path / (downloads.PREFIX + "fresh")
        fresh.mkdir()

        removed = downloads.sweep(tmp_path, grace_seconds=300)

        assert removed == [dead_dir]
        assert not dead_dir.exists()
        assert (alive_dir / "model.pkl").read_text() == "weights", "a live process's was swept"
        assert (tmp_path / "other").is_dir()
        assert fresh.is_dir()
        # the sweep took the live lock nowhere: the owner still holds it
        assert downloads.sweep(tmp_path, grace_seconds=300) == []
    finally:
        alive.kill()
        alive.wait(timeout=30)
    _backdate(alive_dir, 3600)
    assert downloads.sweep(tmp_path, grace_seconds=300) == [alive_dir]


def test_sweep_leaves_young_directories_whatever_their_lock(tmp_path: Path) -> None:
    proc, path = _holder(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert downloads.sweep(tmp_path, grace_seconds=300) == []
    assert path.is_dir()
    # a directory whose process died before locking it: only its age counts
    unlocked = tmp_path / (downloads.PREFIX + "unlocked")
    unlocked.mkdir()
    _backdate(unlocked, 3600)
    assert downloads.sweep(tmp_path, grace_seconds=300) == [unlocked]


def test_close_deletes_the_directory(tmp_path: Path) -> None:
    own = downloads.DownloadDir(tmp_path)
    (own.path / "x").write_text("x")
    own.close()
    assert not own.path.exists()
    own.close()  # twice is harmless


def test_command_line_sweep(tmp_path: Path) -> None:
    stale = tmp_path / (downloads.PREFIX + "stale")
    stale.mkdir()
    (stale / downloads.LOCK).write_text("")
    _backdate(stale, 3600)
    run = subprocess.run(
        [sys.executable, "-m", "oci_mlops_app.downloads", "--sweep", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 0, run.stderr
    assert not stale.exists()
    assert "1 download directories" in run.stderr
    # a missing root is nothing to do
    assert downloads.sweep(tmp_path / "absent") == []
