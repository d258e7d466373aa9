"""Turn service declarations into the firewalld openings a zone must have."""

from __future__ import annotations

import ipaddress
import json
from pathlib import PurePosixPath

from ansible.errors import AnsibleFilterError


def _rich_rule(source: str, port: int, protocol: str) -> str:
    network = ipaddress.ip_network(source, strict=False)
    family = "ipv6" if network.version == 6 else "ipv4"
    # The normalized form `firewall-cmd --list-rich-rules` prints.
    return f'rule family="{family}" source address="{network}" port port="{port}" protocol="{protocol}" accept'


def _check_entry(owner: str, entry: dict) -> tuple[int, str, list[str]]:
    try:
        port = int(entry["port"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"firewalld declaration {owner!r}: entry {entry!r} needs a numeric port") from exc
    if not 1 <= port <= 65535:
        raise AnsibleFilterError(f"firewalld declaration {owner!r}: port {port} is out of range 1-65535")
    protocol = str(entry.get("protocol", "tcp"))
    if protocol not in ("tcp", "udp"):
        raise AnsibleFilterError(f"firewalld declaration {owner!r}: protocol {protocol!r} is not tcp or udp")
    sources = [str(s) for s in entry.get("sources") or []]
    for source in sources:
        try:
            ipaddress.ip_network(source, strict=False)
        except ValueError as exc:
            raise AnsibleFilterError(f"firewalld declaration {owner!r}: source {source!r} is not a CIDR") from exc
    return port, protocol, sources


def firewalld_desired(declarations: dict, ssh_port: int, ssh_sources: list, services: list) -> dict:
    """Compute the openings of the zone.

    declarations: {declaration name: [{port, protocol, sources}, ...]}.
    An entry without sources opens the port to everyone (a zone port); with
    sources, one rich rule per source. SSH is only ever opened to ssh_sources.
    """
    ports: set[str] = set()
    rich_rules: set[str] = set()
    for source in ssh_sources:
        _check_entry("firewalld_ssh_sources", {"port": ssh_port, "sources": [source]})
        rich_rules.add(_rich_rule(source, int(ssh_port), "tcp"))
    for owner, entries in sorted(declarations.items()):
        if not isinstance(entries, list):
            raise AnsibleFilterError(f"firewalld declaration {owner!r} is not a list of ports")
        for entry in entries:
            port, protocol, sources = _check_entry(owner, entry)
            if sources:
                rich_rules.update(_rich_rule(s, port, protocol) for s in sources)
            else:
                ports.add(f"{port}/{protocol}")
    return {"ports": sorted(ports), "rich_rules": sorted(rich_rules), "services": sorted(set(services))}


def firewalld_declarations_kept(paths: list, expected: list | None, kept: bool = True) -> list:
    """The declaration files (<dir>/<name>.json) a host keeps, or with kept=False those it retracts.

    expected None keeps every file (no retraction configured).
    """
    if expected is not None and not isinstance(expected, list):
        raise AnsibleFilterError(f"expected declarations must be a list of names or None, not {expected!r}")
    wanted = None if expected is None else {str(name) for name in expected}
    result = []
    for path in sorted(str(p) for p in paths):
        name = PurePosixPath(path).name.removesuffix(".json")
        if (wanted is None or name in wanted) == kept:
            result.append(path)
    return result


def _list_all(lines: list[str]) -> dict:
    """Parse `firewall-cmd --list-all`: services, ports and rich rules of the zone."""
    zone: dict[str, list[str]] = {"services": [], "ports": [], "rich_rules": []}
    in_rich_rules = False
    for line in lines:
        if in_rich_rules and line.startswith("\t"):
            zone["rich_rules"].append(line.strip())
            continue
        in_rich_rules = False
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        if key == "rich rules":
            in_rich_rules = True
            if value.strip():
                zone["rich_rules"].append(value.strip())
        elif key in ("services", "ports"):
            zone[key] = value.split()
    return zone


def firewalld_state(stdout: str) -> dict:
    """Parse the role's one read of a host's firewall (tasks/main.yml, "Read the firewall").

    The output is sections, each introduced by a line `@@<name>`:
      default-zone  `firewall-cmd --get-default-zone`
      runtime       `firewall-cmd --zone=Z --list-all`
      permanent     `firewall-cmd --permanent --zone=Z --list-all`
      declarations  one line per declaration file: `<path>TAB<its JSON on one line>`
      declarations-meta (optional) the declarations directory, then each file:
                    `<path>TAB<mode owner group>` (stat -c '%a %U %G')
    Returns {default_zone, runtime: {services, ports, rich_rules}, permanent: {...},
    declarations: {path: JSON text}, meta: {path: "mode owner group"}}.
    """
    sections: dict[str, list[str]] = {}
    current = None
    for line in str(stdout).splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    missing = {"default-zone", "runtime", "permanent", "declarations"} - sections.keys()
    if missing:
        raise AnsibleFilterError(f"firewall read is missing the section(s) {sorted(missing)}: {stdout!r}")
    declarations = {}
    for line in sections["declarations"]:
        if not line.strip():
            continue
        path, sep, text = line.partition("\t")
        if not sep:
            raise AnsibleFilterError(f"declaration line without a TAB: {line!r}")
        declarations[path] = text
    meta = {}
    for line in sections.get("declarations-meta", []):
        if not line.strip():
            continue
        path, sep, text = line.partition("\t")
        if not sep:
            raise AnsibleFilterError(f"declaration meta line without a TAB: {line!r}")
        meta[path] = text.strip()
    return {
        "default_zone": "".join(sections["default-zone"]).strip(),
        "runtime": _list_all(sections["runtime"]),
        "permanent": _list_all(sections["permanent"]),
        "declarations": declarations,
        "meta": meta,
    }


def firewalld_declarations_to_write(declared: dict, state: dict, directory: str) -> list:
    """The declarations of this run whose file must be (re)written.

    declared: {name: [{port, protocol, sources}, ...]} (the declare entry point);
    state: firewalld_state's result. A file is kept when its JSON equals the
    declaration and it is mode 644, owned by root:root. Returns
    [{key: name, value: entries}, ...] in name order (a loop's items).
    """
    out = []
    for name, entries in sorted(dict(declared or {}).items()):
        path = f"{str(directory).rstrip('/')}/{name}.json"
        text = state.get("declarations", {}).get(path)
        try:
            same = text is not None and json.loads(text) == json.loads(json.dumps(entries))
        except ValueError:
            same = False
        if not same or state.get("meta", {}).get(path) != "644 root root":
            out.append({"key": name, "value": entries})
    return out


class FilterModule:
    """Ansible filters of the firewalld role."""

    def filters(self):
        return {
            "firewalld_desired": firewalld_desired,
            "firewalld_declarations_kept": firewalld_declarations_kept,
            "firewalld_state": firewalld_state,
            "firewalld_declarations_to_write": firewalld_declarations_to_write,
        }
