"""What the oracle.oci.oci inventory plugin accepts and how it groups hosts,
for checking the inventory Terraform writes (templates/inventory.oci.yml.tftpl)
without the collection, an OCI SDK or a tenancy.

VENDORED from the plugin's DOCUMENTATION (options: top-level keys; choices)
of oracle/oci-ansible-collection, collection version 5.5.0
(tag v5.5.0, plugins/inventory/oci.py; identical at v5.6.0), plus the options
of the two documentation fragments it extends, as ansible-core 2.19.14
defines them (ansible/plugins/doc_fragments/constructed.py and
inventory_cache.py). requirements.yml allows oracle.oci >=5.0.0,<6.0.0.

real_plugin_options() reads the same lists from an installed collection (and
ansible-core) when present; the tests then require the vendored lists to be
exactly the real ones, so an update of either shows here. Regenerate with:
    python terraform/tests/oci_inventory_plugin.py
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from pathlib import Path

import yaml

COLLECTION_VERSION = "5.5.0"
ANSIBLE_CORE_VERSION = "2.19.14"
FRAGMENTS = ("inventory_cache", "constructed")

# oracle.oci 5.5.0, plugins/inventory/oci.py DOCUMENTATION options.
OWN_OPTIONS = frozenset(
    {
        "plugin",
        "config_file",
        "config_profile",
        "api_user_key_file",
        "api_user_key_pass_phrase",
        "instance_principal_authentication",
        "auth_type",
        "delegation_token_file",
        "enable_parallel_processing",
        "regions",
        "hostnames",
        "hostname_format_preferences",
        "hostname_format",
        "filters",
        "exclude_host_filters",
        "include_host_filters",
        "fetch_db_hosts",
        "fetch_compute_hosts",
        "primary_vnic_only",
        "enable_ipv6",
        "debug",
        "compartments",
        "exclude_compartments",
        "default_groups",
        "default_groups_preferences",
    }
)
# ansible-core 2.19.14's fragments the plugin extends.
FRAGMENT_OPTIONS = {
    "inventory_cache": frozenset({"cache", "cache_plugin", "cache_timeout", "cache_connection", "cache_prefix"}),
    "constructed": frozenset({"strict", "compose", "groups", "keyed_groups", "use_extra_vars", "leading_separator"}),
}
PLUGIN_OPTIONS = OWN_OPTIONS | FRAGMENT_OPTIONS["inventory_cache"] | FRAGMENT_OPTIONS["constructed"]
# Suboptions the template uses.
COMPARTMENT_OPTIONS = frozenset(
    {"compartment_ocid", "compartment_name", "fetch_hosts_from_subcompartments", "parent_compartment_ocid"}
)
KEYED_GROUP_OPTIONS = frozenset({"key", "prefix", "separator", "parent_group", "default_value", "trailing_separator"})
AUTH_TYPES = frozenset({"api_key", "instance_principal", "instance_obo_user", "resource_principal", "security_token"})
# The groups the plugin adds to every host unless default_groups says
# otherwise (InventoryModule.supported_default_groups), and the one it
# always adds (get_common_groups).
SUPPORTED_DEFAULT_GROUPS = ("availability_domain", "compartment_name", "region", "freeform_tags", "defined_tags")
ALWAYS_GROUP = "all_hosts"


def unknown_options(config: dict) -> set[str]:
    """The keys of an inventory config the plugin does not know (a misspelling
    is silently ignored by the plugin: a setting that does nothing)."""
    return set(config) - PLUGIN_OPTIONS


# --------------------------------------------------------------------------
# The real thing, when installed
# --------------------------------------------------------------------------
def _documentation(path: Path) -> dict:
    """The DOCUMENTATION string of a plugin or fragment file, parsed (the file is not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise LookupError(f"{path}: no DOCUMENTATION")


def _collection_dirs() -> list[Path]:
    paths = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS") or ""
    dirs = [Path(p).expanduser() for p in paths.split(os.pathsep) if p]
    dirs += [Path("~/.ansible/collections").expanduser(), Path("/usr/share/ansible/collections")]
    root = Path(__file__).resolve().parents[2]
    dirs.append(root / ".ansible" / "collections")
    spec = importlib.util.find_spec("ansible_collections")
    if spec and spec.submodule_search_locations:
        dirs += [Path(p).parent for p in spec.submodule_search_locations]
    return dirs


def installed_plugin() -> Path | None:
    """plugins/inventory/oci.py of an installed oracle.oci collection, or None."""
    for base in _collection_dirs():
        path = base / "ansible_collections" / "oracle" / "oci" / "plugins" / "inventory" / "oci.py"
        if path.is_file():
            return path
    return None


def installed_fragments() -> dict[str, Path] | None:
    spec = importlib.util.find_spec("ansible")
    if not spec or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "doc_fragments"
    paths = {name: base / f"{name}.py" for name in FRAGMENTS}
    return paths if all(p.is_file() for p in paths.values()) else None


def real_plugin_options() -> dict | None:
    """{own, fragments: {name: options}, extends, auth_types, version} of the
    installed plugin (fragments from the installed ansible-core, None when it
    is not installed), or None without the collection."""
    plugin = installed_plugin()
    if plugin is None:
        return None
    doc = _documentation(plugin)
    galaxy = plugin.parents[2] / "MANIFEST.json"
    version = None
    if galaxy.is_file():
        import json

        version = json.loads(galaxy.read_text())["collection_info"]["version"]
    fragments = installed_fragments()
    return {
        "path": str(plugin),
        "version": version,
        "own": frozenset(doc["options"]),
        "extends": tuple(doc.get("extends_documentation_fragment", [])),
        "auth_types": frozenset(doc["options"]["auth_type"]["choices"]),
        "fragments": None
        if fragments is None
        else {name: frozenset(_documentation(p)["options"]) for name, p in fragments.items()},
    }


# --------------------------------------------------------------------------
# The plugin's grouping, simulated
# --------------------------------------------------------------------------
def _sanitize(word: str) -> str:
    """InventoryModule.sanitize (sanitize_names on, dashes kept)."""
    return re.sub(r"[^A-Za-z0-9_#=.-]", "_", word)


def _lookup(expr: str, hostvars: dict):
    value = hostvars
    for part in expr.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(config: dict, host: dict) -> set[str]:
    """The groups oracle.oci 5.5.0 puts HOST in for inventory CONFIG (besides all/ungrouped).

    HOST: {compartment_name, region, availability_domain, freeform_tags,
    defined_tags}. _process_query_options: no default_groups (and no
    default_groups_preferences) means every supported default group;
    get_common_groups: all_hosts always, then the enabled ones; then
    constructed's keyed groups (string keys: dotted look-ups of host vars;
    prefix + separator (dropped with an empty prefix unless
    leading_separator) + value, sanitized by to_safe_group_name)."""
    if "default_groups_preferences" in config:
        raise NotImplementedError("default_groups_preferences is not simulated")
    enabled = SUPPORTED_DEFAULT_GROUPS if config.get("default_groups") is None else config["default_groups"]
    groups = {ALWAYS_GROUP}
    if "availability_domain" in enabled:
        groups.add(_sanitize(host["availability_domain"]))
    if "compartment_name" in enabled:
        groups.add(_sanitize(host["compartment_name"]))
    if "region" in enabled:
        groups.add(_sanitize("region_" + host["region"]))
    if "freeform_tags" in enabled:
        groups |= {_sanitize(f"tag_{k}={v}") for k, v in host.get("freeform_tags", {}).items()}
    if "defined_tags" in enabled:
        groups |= {
            _sanitize(f"{ns}#{k}={v}") for ns, tags in host.get("defined_tags", {}).items() for k, v in tags.items()
        }
    for keyed in config.get("keyed_groups") or []:
        value = _lookup(keyed["key"], host)
        if value in (None, ""):
            continue
        prefix = keyed.get("prefix", "")
        sep = keyed.get("separator", "_")
        if prefix == "" and config.get("leading_separator", True) is False:
            sep = ""
        groups.add(re.sub(r"^[\d\W]|[^\w]", "_", f"{prefix}{sep}{value}"))
    return groups


if __name__ == "__main__":  # pragma: no cover - the regeneration helper
    real = real_plugin_options()
    if real is None:
        raise SystemExit("oracle.oci is not installed (ansible-galaxy collection install oracle.oci)")
    print(f"# oracle.oci {real['version']} ({real['path']})")
    print("OWN_OPTIONS =", sorted(real["own"]))
    print("FRAGMENT_OPTIONS =", {k: sorted(v) for k, v in (real["fragments"] or {}).items()})
