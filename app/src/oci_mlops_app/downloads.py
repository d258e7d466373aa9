"""Download directories of the API's processes, and the sweep of those left by dead processes.

Each API process downloads the model versions it loads into one directory of its own,
``<root>/oci-mlops-models-<random>/``, and holds an exclusive ``flock`` on the ``.owner.lock``
file inside it for as long as it lives. The kernel drops the lock when the process ends, however
it ends (``kill -9``, the OOM killer, a crash), so a directory whose lock can be taken belongs to
no running process: ``sweep`` deletes it. A directory is left alone while it is younger than the
grace period, whatever its lock (its process may be between creating it and locking it).

The API sweeps its root at start; a timer runs the same sweep (``python -m
oci_mlops_app.downloads --sweep <root>``, as the service's user) for the directories of workers
that died while the service kept running. Only standard-library imports: the sweep is quick.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "oci-mlops-models-"
LOCK = ".owner.lock"
# A directory younger than this is never swept (seconds).
DEFAULT_GRACE_SECONDS = 300.0


class DownloadDir:
    """A process's own download directory, locked while the object (and its process) lives."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        flags = os.O_CREAT | os.O_RDWR | os.O_CLOEXEC
        self._fd: int | None = os.open(self.path / LOCK, flags, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        """Delete the directory and release it."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _owner_gone(directory: Path) -> bool:
    """True when no process holds the directory's lock (or it has none); the lock is taken and
    dropped again, so a sweep never keeps a directory locked."""
    try:
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True  # never locked (its process died before locking it) and past the grace period
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock if this process took it
    return True


def sweep(root: str | os.PathLike[str], grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[Path]:
    """Delete the download directories under ``root`` whose process is gone; return them."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = sorted(Path(root).iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            age = now - entry.lstat().st_mtime
            if age < grace_seconds or not _owner_gone(entry):
                continue
        except OSError as exc:
            logger.warning("cannot check %s: %s", entry, exc)
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if entry.exists():
            logger.warning("could not delete all of %s", entry)
            continue
        removed.append(entry)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Delete the model download directories of API processes that are gone."
    )
    parser.add_argument("--sweep", required=True, metavar="ROOT", help="the API's download root")
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help=f"never delete a directory younger than this (default {DEFAULT_GRACE_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    removed = sweep(args.sweep, args.grace_seconds)
    for path in removed:
        logger.info("deleted %s", path)
    logger.info(
        "%d download directories of processes that are gone deleted under %s",
        len(removed),
        args.sweep,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
