#!/usr/bin/env python3
"""Report how the collections pinned in requirements.yml are satisfied.

Exit status 1 when a collection the playbooks need is missing or at a version
outside its pin. oracle.oci is optional: it is needed only for the dynamic OCI
inventory, so its absence is reported in one line and does not fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

OPTIONAL = {"oracle.oci": "needed only for the dynamic OCI inventory (inventory/oci)"}


def installed_collections() -> dict[str, str]:
    """Return {name: version} of the collections ansible will load (first found wins)."""
    out = subprocess.run(
        ["ansible-galaxy", "collection", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, str] = {}
    for path_collections in json.loads(out).values():
        for name, info in path_collections.items():
            found.setdefault(name, info["version"])
    return found


def main(requirements: str) -> int:
    wanted = yaml.safe_load(Path(requirements).read_text(encoding="utf-8"))["collections"]
    found = installed_collections()
    status = 0
    for item in wanted:
        name, spec = item["name"], str(item.get("version", "*"))
        version = found.get(name)
        if version is None:
            if name in OPTIONAL:
                print(
                    f"collections: {name} is not installed ({OPTIONAL[name]}); install it with "
                    f"'ansible-galaxy collection install {name}' where Galaxy is reachable"
                )
                continue
            print(f"collections: {name} {spec} is MISSING", file=sys.stderr)
            status = 1
        elif not meets_requirements(version, spec if spec[0] in "<>=!*" else f"=={spec}"):
            print(f"collections: {name} {version} does not satisfy {spec}", file=sys.stderr)
            status = 1
        else:
            print(f"collections: {name} {version} ok")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements.yml"))
