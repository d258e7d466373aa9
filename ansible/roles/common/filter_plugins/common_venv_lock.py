"""Read the locks with hashes the roles' virtualenvs install from.

A lock is a pip requirements file as `uv pip compile --generate-hashes`
writes it (scripts/locks): one `name[extras]==version [; marker] \\` line per
requirement, its `--hash=sha256:...` options on continuation lines, comments.
"""

from __future__ import annotations

import re

_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*(?P<version>[^\s;\\]+))?")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(lock) -> list[str]:
    """The requirements of a lock without their hashes: 'name[extras]==version'
    or 'name==version ; marker', in the lock's order."""
    text = re.sub(r"\\\n", " ", str(lock or ""))
    pins = []
    for line in text.splitlines():
        requirement = line.split(" #", 1)[0].strip()
        if not requirement or requirement.startswith(("#", "-")):
            continue
        pins.append(re.sub(r"\s*--hash=\S+", "", requirement).strip())
    return pins


def lock_versions(lock) -> dict[str, set[str]]:
    """{normalized name (case, runs of -_.): versions} of a lock's (or a
    freeze's, a constraints file's, an .in's) requirements, whatever their
    markers; '' for a name without ==version. Extras are ignored."""
    held: dict[str, set[str]] = {}
    for pin in lock_pins(lock):
        match = _REQUIREMENT.match(pin)
        if match:
            held.setdefault(_normalize(match["name"]), set()).add(match["version"] or "")
    return held


def lock_missing(lock, wanted) -> list[str]:
    """The entries of WANTED the lock does not pin: 'name==version' needs
    that version (under any marker), a bare name any version."""
    held = lock_versions(lock)
    missing = []
    for entry in wanted:
        match = _REQUIREMENT.match(str(entry).strip())
        if not match:
            missing.append(entry)
            continue
        versions = held.get(_normalize(match["name"]))
        if versions is None or (match["version"] and match["version"] not in versions):
            missing.append(entry)
    return missing


class FilterModule:  # pylint: disable=too-few-public-methods
    """Filters of the common role's venv_pins entry point."""

    def filters(self):
        return {"common_lock_pins": lock_pins, "common_lock_missing": lock_missing}
