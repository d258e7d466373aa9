"""scripts/host-prereqs decides from what actually runs, not from names on PATH.

The script's --dry-run prints the packages it would install. Each case runs it
with a PATH that holds only a few basic tools and the fake programs of the
case, so nothing installed on the machine running the tests leaks in.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "host-prereqs"
BASIC_TOOLS = ("bash", "sh", "id", "cat", "timeout")


def _fake(bindir: Path, name: str, exit_code: int = 0, output: str = "") -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\necho '{output or name + ' 1.0'}'\nexit {exit_code}\n")
    path.chmod(0o755)


def _dry_run(tmp_path: Path, fakes: dict[str, int], os_id: str = "debian") -> list[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in BASIC_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not on this machine's PATH"
        (bindir / tool).symlink_to(found)
    for name, exit_code in fakes.items():
        _fake(bindir, name, exit_code)
    os_release = tmp_path / "os-release"
    os_release.write_text(f"ID={os_id}\n")
    env = {
        "PATH": str(bindir),
        "HOST_PREREQS_SBIN_DIRS": "",
        "HOST_PREREQS_OS_RELEASE": str(os_release),
        "HOME": os.environ.get("HOME", "/root"),
    }
    run = subprocess.run(
        [str(bindir / "bash"), str(SCRIPT), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_a_docker_client_alone_means_the_engine_gets_installed(tmp_path):
    # The machine image's situation: `docker` on PATH, no dockerd anywhere.
    missing = _dry_run(tmp_path, {"docker": 0, "debootstrap": 0, "age": 0, "age-keygen": 0, "nginx": 0, "chromium": 0})
    assert missing == ["docker.io"]


def test_an_engine_that_does_not_run_counts_as_missing(tmp_path):
    missing = _dry_run(
        tmp_path, {"docker": 0, "dockerd": 127, "debootstrap": 0, "age": 0, "age-keygen": 0, "nginx": 0, "chromium": 0}
    )
    assert missing == ["docker.io"]


def test_nothing_is_installed_when_everything_runs(tmp_path):
    assert (
        _dry_run(
            tmp_path,
            {"docker": 0, "dockerd": 0, "debootstrap": 0, "age": 0, "age-keygen": 0, "nginx": 0, "chromium": 0},
        )
        == []
    )


def test_a_fresh_debian_machine_gets_everything(tmp_path):
    assert _dry_run(tmp_path, {"docker": 0}) == ["docker.io", "debootstrap", "age", "nginx-light", "chromium"]


def test_an_nginx_that_does_not_run_is_missing(tmp_path):
    # the edge role's tests run its configuration on a real nginx
    fakes = {"docker": 0, "dockerd": 0, "debootstrap": 0, "age": 0, "age-keygen": 0, "nginx": 1, "chromium": 0}
    assert _dry_run(tmp_path, fakes) == ["nginx-light"]


def test_age_without_its_key_generator_is_missing(tmp_path):
    # The lab's backups need both: age-keygen on the first converge, age for a restore.
    fakes = {"docker": 0, "dockerd": 0, "debootstrap": 0, "age": 0, "nginx": 0, "chromium": 0}
    assert _dry_run(tmp_path, fakes) == ["age"]


@pytest.mark.parametrize("os_id, expected", [("debian", ["chromium"]), ("ubuntu", [])])
def test_a_chromium_stub_that_does_not_run_is_missing(tmp_path, os_id, expected):
    # Ubuntu's chromium-browser deb is a stub asking for the snap: it is not a
    # browser. Only Debian's archive has the real package to install.
    missing = _dry_run(
        tmp_path,
        {"docker": 0, "dockerd": 0, "debootstrap": 0, "age": 0, "age-keygen": 0, "nginx": 0, "chromium-browser": 1},
        os_id,
    )
    assert missing == expected
