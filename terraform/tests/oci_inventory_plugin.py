"""What the oracle.oci.oci inventory plugin accepts and how it groups hosts,
for checking the inventory Terraform writes (templates/inventory.oci.yml.tftpl)
without the collection, an OCI SDK or a tenancy.

VENDORED from the plugin's DOCUMENTATION (options: top-level keys; choices)
of oracle/oci-ansible-collection, collection version 5.5.0
(tag v5.5.0, plugins/inventory/oci.py; identical at v5.6.0), plus the options
of the two documentation fragments it extends, as ansible-core 2.19.14
defines them (ansible/plugins/doc_fragments/constructed.py and
inventory_cache.py). requirements.yml allows oracle.oci >=5.0.0,<6.0.0.

real_plugin_options() reads the same lists from the plugin's DOCUMENTATION:
of an installed collection when present, else of the real plugin vendored
byte-identical under tests/unit/data/oracle_oci (for the unit tests, which
run it); real_fragment_options() reads the fragments from the installed
ansible-core (importable here, or the one `ansible` runs: the repository's
.venv, else PATH). The tests require the vendored lists to be exactly the
real ones, so an update of either shows here. Regenerate with:
    python terraform/tests/oci_inventory_plugin.py
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

COLLECTION_VERSION = "5.5.0"
ANSIBLE_CORE_VERSION = "2.19.14"
FRAGMENTS = ("inventory_cache", "constructed")
ROOT = Path(__file__).resolve().parents[2]
VENDORED_COLLECTION = ROOT / "tests" / "unit" / "data" / "oracle_oci"

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
    dirs.append(ROOT / ".ansible" / "collections")
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


def vendored_plugin() -> Path:
    """plugins/inventory/oci.py of the collection vendored byte-identical for
    the unit tests (tests/unit/data/oracle_oci, its README says which release)."""
    return VENDORED_COLLECTION / "plugins" / "inventory" / "oci.py"


def _collection_version(plugin: Path) -> str | None:
    """The version of the collection PLUGIN belongs to: MANIFEST.json of an
    installed collection, galaxy.yml of a source tree (the vendored copy)."""
    root = plugin.parents[2]
    if (root / "MANIFEST.json").is_file():
        return json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))["collection_info"]["version"]
    if (root / "galaxy.yml").is_file():
        return str(yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))["version"])
    return None


def _fragment_files(package_dir: Path) -> dict[str, Path] | None:
    base = package_dir / "plugins" / "doc_fragments"
    paths = {name: base / f"{name}.py" for name in FRAGMENTS}
    return paths if all(p.is_file() for p in paths.values()) else None


def _ansible_commands() -> list[str]:
    """The ansible commands to ask for their ansible-core: the repository's
    control-node virtualenv (make venv), then the one on PATH."""
    commands = [str(ROOT / ".venv" / "bin" / "ansible")] if (ROOT / ".venv" / "bin" / "ansible").is_file() else []
    on_path = shutil.which("ansible")
    return commands + ([on_path] if on_path and on_path not in commands else [])


def installed_fragments() -> dict | None:
    """{version, path, files: {fragment: doc_fragments/<fragment>.py}} of an
    installed ansible-core: importable here, else the one an ansible command
    runs (its `ansible --version`: "ansible [core X]" and "ansible python
    module location = DIR"; the terraform tests' own virtualenv has no
    ansible-core). None when there is none."""
    spec = importlib.util.find_spec("ansible")
    for package_dir in (spec.submodule_search_locations or []) if spec else []:
        # A directory named ansible/ on sys.path (this repository's) is a
        # namespace package without doc fragments: skipped.
        files = _fragment_files(Path(package_dir))
        if files:
            from ansible.release import __version__

            return {"version": __version__, "path": package_dir, "files": files}
    for command in _ansible_commands():
        try:
            out = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        core = re.search(r"^ansible \[core ([^\]]+)\]", out, re.M)
        module = re.search(r"^\s*ansible python module location = (.+)$", out, re.M)
        files = _fragment_files(Path(module.group(1).strip())) if module else None
        if core and module and files:
            return {"version": core.group(1), "path": module.group(1).strip(), "files": files}
    return None


def plugin_options(plugin: Path) -> dict:
    """{path, version, own, extends, auth_types} of the plugin file PLUGIN
    (its DOCUMENTATION, parsed, not imported)."""
    doc = _documentation(plugin)
    return {
        "path": str(plugin),
        "version": _collection_version(plugin),
        "own": frozenset(doc["options"]),
        "extends": tuple(doc.get("extends_documentation_fragment", [])),
        "auth_types": frozenset(doc["options"]["auth_type"]["choices"]),
    }


def real_plugin_options() -> dict:
    """plugin_options() of an installed oracle.oci collection, else of the
    vendored copy (source: "installed" or "vendored")."""
    installed = installed_plugin()
    if installed is not None:
        return {**plugin_options(installed), "source": "installed"}
    return {**plugin_options(vendored_plugin()), "source": "vendored"}


def real_fragment_options() -> dict | None:
    """{version, path, fragments: {name: options}} of the installed
    ansible-core's fragments the plugin extends, or None without ansible-core."""
    core = installed_fragments()
    if core is None:
        return None
    fragments = {name: frozenset(_documentation(path)["options"]) for name, path in core["files"].items()}
    return {"version": core["version"], "path": core["path"], "fragments": fragments}


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
    print(f"# oracle.oci {real['version']} ({real['source']}: {real['path']})")
    print("OWN_OPTIONS =", sorted(real["own"]))
    core = real_fragment_options()
    if core is not None:
        print(f"# ansible-core {core['version']} ({core['path']})")
        print("FRAGMENT_OPTIONS =", {k: sorted(v) for k, v in core["fragments"].items()})
