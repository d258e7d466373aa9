"""Filters of the secrets guard and record (secrets-guard.yml, secrets-record.yml)."""

from __future__ import annotations

import base64
import json

from ansible.errors import AnsibleFilterError


def _rotating(rotate, declared) -> set[str]:
    listed = [n.strip() for n in rotate.split(",")] if isinstance(rotate, str) else list(rotate or [])
    names = {n for n in listed if n}
    unknown = sorted(names - set(declared))
    if unknown:
        raise AnsibleFilterError(
            f"oci_mlops_rotate_secrets names undeclared secrets: {', '.join(unknown)}"
            f" (declared: {', '.join(sorted(declared))})"
        )
    return names


def secrets_held(declarations, groups) -> list[str]:
    """Names of the declared secrets a host in `groups` holds (pseudo-group `schemas` included)."""
    return [d["name"] for d in declarations if set(d["groups"]) & set(groups)]


def _record(result):
    """A slurp result -> {name: digest}, {} (no record yet) or None (unreadable: reason in a str)."""
    if not isinstance(result, dict) or result.get("unreachable"):
        return "unreachable"
    if "content" in result:
        try:
            return dict(json.loads(base64.b64decode(result["content"]))["secrets"])
        except (ValueError, KeyError, TypeError):
            return "unparsable record"
    if "not found" in str(result.get("msg", "")):
        return {}
    return str(result.get("msg") or "unreadable")


def secrets_verdict(
    declarations, current, reads, host_groups, schemas_host="", rotate=None, secrets_dir="", in_vault=()
):
    """Problems that must stop the run, each a message naming the secret, the hosts and the remedies.

    current: {name: SHA-256 of the vault value or controller copy, '' when neither exists};
    reads: {host: slurp result of its record}; host_groups: {host: its groups};
    schemas_host: the host that holds the `schemas` secrets;
    in_vault: the vault variables that are defined.
    """
    declared = {d["name"]: d for d in declarations}
    host_groups = {h: list(g) + (["schemas"] if h == schemas_host else []) for h, g in host_groups.items()}
    rotating = _rotating(rotate, declared)
    records = {host: _record(result) for host, result in reads.items()}
    problems = []
    for name, decl in declared.items():
        if name in rotating:
            continue
        vault_var = decl.get("vault", "vault_" + name)
        where = f"{secrets_dir}/{name}"
        holders = sorted(h for h, rec in records.items() if isinstance(rec, dict) and name in rec)
        how = f"(b) rotate it deliberately: -e oci_mlops_rotate_secrets={name} ({decl.get('rotation', '')})"
        if not current.get(name):
            unread = sorted(
                f"{h} ({rec})"
                for h, rec in records.items()
                if isinstance(rec, str) and name in secrets_held([decl], host_groups.get(h, []))
            )
            if holders:
                problems.append(
                    f"Secret {name} is neither in vault ({vault_var}) nor on the controller ({where}), but "
                    f"{', '.join(holders)} hold(s) it: a new value would silently replace it. Either (a) restore "
                    f"{where} from your backup of {secrets_dir} (or set {vault_var} to the value in use), or {how}."
                )
            elif unread:
                problems.append(
                    f"Secret {name} is neither in vault ({vault_var}) nor on the controller ({where}), and the "
                    f"record of {', '.join(unread)} could not be read, so whether the platform holds it is unknown. "
                    f"Make the host(s) reachable and run again, or (a) restore {where}, or {how}."
                )
            continue
        differ = sorted(h for h in holders if records[h][name] != current[name])
        if differ:
            source = f"vault ({vault_var})" if vault_var in in_vault else where
            problems.append(
                f"Secret {name}: the value in {source} differs from the one {', '.join(differ)} hold(s) (a replaced "
                f"file, a wrong backup, OCI_MLOPS_SECRETS_DIR pointing at another platform, or a changed vault value). "
                f"Either (a) put back the value in use, or {how}."
            )
    return problems


class FilterModule:  # pylint: disable=too-few-public-methods
    """Secrets guard and record filters."""

    def filters(self):
        return {"oci_mlops_secrets_held": secrets_held, "oci_mlops_secrets_verdict": secrets_verdict}
