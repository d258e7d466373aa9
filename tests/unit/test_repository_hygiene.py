"""What git tracks: no symlink that leaves the repository, nothing the ignore file means to keep out.

A worktree's `.venv` symlink to another checkout's virtualenv was committed
twice: on a clean clone it points at a path that does not exist (or at
itself), and `scripts/bootstrap` cannot create the virtualenv there.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tracked() -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_no_tracked_symlink_leaves_the_repository():
    for line in _tracked():
        meta, path = line.split("\t", 1)
        if not meta.startswith("120000"):
            continue
        target = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-p", meta.split()[1]], capture_output=True, text=True, check=True
        ).stdout
        assert not os.path.isabs(target), f"{path} -> {target}: an absolute symlink"
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
        assert not resolved.startswith(".."), f"{path} -> {target}: leaves the repository"


def test_nothing_tracked_where_the_toolchain_and_the_secrets_live():
    paths = [line.split("\t", 1)[1] for line in _tracked()]
    for path in paths:
        top = path.split("/", 1)[0]
        assert top not in {".venv", ".ansible", ".cache", "artifacts"}, path
        assert "/.secrets" not in f"/{path}", path


def test_the_ignore_patterns_also_match_symlinks():
    """`/.venv/` (trailing slash) matches a directory only: a symlink named .venv slipped through it."""
    for path in (".venv", ".ansible", "inventory/lab/.secrets"):
        check = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", path], check=False)
        assert check.returncode == 0, f"{path} is not ignored as a file (a symlink)"
