"""Supply chain of CI (issue #15, point 9): GitHub Actions pinned by commit
SHA, and nothing downloaded and piped into a shell."""

import re
import subprocess

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _uses(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["uses"]] if isinstance(node.get("uses"), str) else []
        return found + [u for value in node.values() for u in _uses(value)]
    if isinstance(node, list):
        return [u for item in node for u in _uses(item)]
    return []


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha(workflow):
    text = workflow.read_text(encoding="utf-8")
    uses = _uses(yaml.safe_load(text))
    assert uses, f"{workflow.name}: no action found"
    for use in uses:
        if use.startswith(("./", "docker://")):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", use), f"{workflow.name}: {use} is not pinned by SHA"
        # the release it is, for the reader and for updates
        assert re.search(re.escape(use) + r" # v\d", text), f"{workflow.name}: {use} has no version comment"


def test_nothing_is_piped_from_the_network_into_a_shell():
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    watched = [
        f
        for f in files
        if f.startswith((".github/", ".ci/", "scripts/", "lab/")) or f.endswith(("Makefile", ".sh", ".yml", ".j2"))
    ]
    fetch = r"(curl|wget)\b[^\n|]*"
    pattern = re.compile(rf"{fetch}\|\s*(sudo\s+)?(ba|z|da)?sh\b|(ba|z|da)?sh\s+<\(\s*{fetch}\)")
    found = [f for f in watched if pattern.search((ROOT / f).read_text(encoding="utf-8", errors="replace"))]
    assert found == []
