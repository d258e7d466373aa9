"""`make lab`'s last step, ansible/playbooks/lab-info.yml, prints what is where.

It ran only at the end of `make lab`, so nothing caught it failing: the
topology it reads (lab_published_services) is a default of the
platform_defaults role, which the play did not load. The play runs here for
real against the lab inventory with its hosts renamed to containers that do
not exist (docker_container_info asks the engine; .ci/run starts one)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ROOT, TOPOLOGY, ansible_env


def test_lab_info_prints_every_published_url_and_every_host(tmp_path):
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine (scripts/host-prereqs starts one)")
    inventory = tmp_path / "lab"
    shutil.copytree(ROOT / "inventory" / "lab", inventory, ignore=shutil.ignore_patterns(".secrets"))
    hosts = inventory / "hosts.yml"
    hosts.write_text(re.sub(r"\blab-(\w+):", r"unit-labinfo-absent-\1:", hosts.read_text(encoding="utf-8")))
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "ansible/playbooks/lab-info.yml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ansible_env(LAB_PORT_OFFSET="0"),
        timeout=120,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    routed = [svc for svc in TOPOLOGY["services"].values() if svc.get("route")]
    assert routed
    for svc in routed:
        # Users reach every UI and API through the edge, over HTTPS only.
        assert re.search(rf"UI https://[^ /]+{re.escape(svc['route'])}", out), (svc, out[-3000:])
    assert not re.search(r"UI http://", out), out[-3000:]
    assert "lab-ca/lab-ca.crt" in out
    for host, group in TOPOLOGY["groups"].items():
        # objectstore shares the db host; the optional groups have no host in the small lab.
        if host == "objectstore" or group.get("optional"):
            continue
        assert f"host unit-labinfo-absent-{host}: no container" in out, out[-3000:]
    assert "client.env" in out
