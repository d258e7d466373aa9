"""Issue #16: the defects a review found that a first real apply or deploy
would hit, each checked statically (points 1, 2, 4, 7 and 9).
"""

from __future__ import annotations

import re

import oci_inventory_plugin as plugin
import pytest
import tftpl
import yaml
from conftest import ROOT, TF_DIR, unquote

TOPOLOGY = yaml.safe_load(
    (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml").read_text()
)["oci_mlops_topology"]
INSTANCE_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "instances"}
MANAGED_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "managed"}


def _depends_on(body) -> list[str]:
    deps = body.get("depends_on", [])
    return [d.removeprefix("${").removesuffix("}") for d in deps]


def _validations(tf, name):
    return tf.variables()[name].get("validation", [])


def _regex_of(tf, name) -> str:
    """The regex of the variable's first can(regex(...)) validation, unescaped as HCL reads it."""
    for v in _validations(tf, name):
        m = re.search(r'can\(regex\("((?:[^"\\]|\\.)*)", var\.' + name, v["condition"])
        if m:
            return m.group(1).encode().decode("unicode_escape")
    raise AssertionError(f"variable {name}: no can(regex(...)) validation")


# --------------------------------------------------------------------------
# 1. The defined tag is used only after it propagated
# --------------------------------------------------------------------------
def test_a_time_provider_is_required(tf):
    (block,) = tf.terraform()
    time = block["required_providers"][0]["time"]
    assert unquote(time["source"]) == "hashicorp/time"
    assert re.search(r"\d", unquote(time["version"]))


def test_the_tag_wait_follows_the_tag_and_its_namespace(tf):
    waits = tf.resources("time_sleep")
    assert ("time_sleep", "tag_propagation") in waits, sorted(waits)
    wait = waits[("time_sleep", "tag_propagation")]
    assert wait["create_duration"] == "${var.tag_propagation_wait}"
    triggers = str(wait["triggers"])
    assert "oci_identity_tag_namespace.this.id" in triggers and "oci_identity_tag.ansible_group.id" in triggers
    pattern = _regex_of(tf, "tag_propagation_wait")
    assert re.fullmatch(pattern, unquote(tf.variables()["tag_propagation_wait"]["default"]))
    for bad in ("90", "1h", "ninety"):
        assert not re.fullmatch(pattern, bad), bad


def test_every_resource_setting_defined_tags_waits_for_the_tag(tf):
    """Directly (depends_on), not through a chain someone may cut later."""
    tagged = {key: body for key, body in tf.resources().items() if "defined_tags" in body}
    assert ("oci_core_instance", "this") in tagged
    for key, body in tagged.items():
        assert "time_sleep.tag_propagation" in _depends_on(body), f"{key} sets defined_tags without the tag wait"


# --------------------------------------------------------------------------
# 2. The S3 user has an email (identity domains)
# --------------------------------------------------------------------------
def test_every_identity_user_has_an_email(tf):
    """Each S3 user (mlflow_s3, task_logs_s3) has its own <name>_user_email
    variable, required by a precondition and validated as an address."""
    users = tf.resources("oci_identity_user")
    assert {name for _, name in users} == {"mlflow_s3", "task_logs_s3"}
    for (_, name), body in users.items():
        email = f"{name}_user_email"
        assert body.get("email") == f"${{var.{email}}}", f"{name} has no email"
        conditions = [p["condition"] for p in body["lifecycle"][0]["precondition"]]
        assert f"${{var.{email} != null}}" in conditions, name
        pattern = _regex_of(tf, email)
        assert re.fullmatch(pattern, "mlops-s3@example.com")
        for bad in ("mlops", "a@b", "a b@example.com", "@example.com"):
            assert not re.fullmatch(pattern, bad), bad
        assert tf.variables()[email]["default"] is None


# --------------------------------------------------------------------------
# 4. IAM is written in the home region, which Terraform knows
# --------------------------------------------------------------------------
def _providers(tf):
    out = {}
    for doc in tf.parsed.values():
        for block in doc.get("provider", []):
            for name, body in block.items():
                out[unquote(body.get("alias", name))] = body
    return out


def test_the_home_region_comes_from_the_tenancy(tf):
    home = _providers(tf)["home"]
    assert home["region"] == "${local.home_region}"
    subs = tf.data("oci_identity_region_subscriptions")["home"]
    assert subs["tenancy_id"] == "${var.tenancy_ocid}"
    (flt,) = subs["filter"]
    assert unquote(flt["name"]) == "is_home_region" and [str(v).strip('"').lower() for v in flt["values"]] == ["true"]
    local = tf.locals()
    assert "data.oci_identity_region_subscriptions.home.region_subscriptions" in local["subscribed_home_region"]
    assert "region_name" in local["subscribed_home_region"]
    assert local["home_region"] == "${coalesce(var.home_region, local.subscribed_home_region)}"
    # Never silently the deployment region.
    for path in tf.files:
        assert "coalesce(var.home_region, var.region)" not in path.read_text(), path.name


def test_a_wrong_home_region_is_refused_at_plan(tf):
    ns = tf.resources("oci_identity_tag_namespace")[("oci_identity_tag_namespace", "this")]
    (pre,) = ns["lifecycle"][0]["precondition"]
    assert pre["condition"] == "${var.home_region == null || var.home_region == local.subscribed_home_region}"
    assert "home_region" in pre["error_message"]


def test_every_iam_resource_uses_the_home_provider(tf):
    iam = {k: b for k, b in tf.resources().items() if k[0].startswith("oci_identity_")}
    assert len(iam) >= 8
    for key, body in iam.items():
        assert body.get("provider") == "${oci.home}", f"{key} is not written in the home region"


# --------------------------------------------------------------------------
# 7. MySQL: the provider's window formats, a pinned version
# --------------------------------------------------------------------------
def _db(tf):
    (db,) = tf.resources("oci_mysql_mysql_db_system").values()
    return db


def test_the_backup_window_is_in_the_provider_format(tf):
    """HH:MM-00:00, as the provider's examples and acceptance tests write it
    (a bare HH:MM comes back from the API as HH:MM-00:00: a diff forever)."""
    assert _db(tf)["backup_policy"][0]["window_start_time"] == "${var.db_backup_window_start}"
    pattern = _regex_of(tf, "db_backup_window_start")
    default = unquote(tf.variables()["db_backup_window_start"]["default"])
    assert re.fullmatch(r"\d\d:\d\d-00:00", default), default
    assert re.fullmatch(pattern, default)
    for good in ("00:00-00:00", "23:30-00:00"):
        assert re.fullmatch(pattern, good), good
    for bad in ("02:00", "24:00-00:00", "02:00+01:00", "2:00-00:00"):
        assert not re.fullmatch(pattern, bad), bad


def test_the_db_has_a_maintenance_window_in_the_provider_format(tf):
    assert _db(tf)["maintenance"][0]["window_start_time"] == "${var.db_maintenance_window_start}"
    pattern = _regex_of(tf, "db_maintenance_window_start")
    default = unquote(tf.variables()["db_maintenance_window_start"]["default"])
    assert re.fullmatch(pattern, default), default
    for good in ("sun 01:00", "mon 23:59"):
        assert re.fullmatch(pattern, good), good
    for bad in ("Sun 01:00", "sunday 01:00", "sun 1:00", "01:00", "sun 24:00"):
        assert not re.fullmatch(pattern, bad), bad
    backup = unquote(tf.variables()["db_backup_window_start"]["default"])[:5]
    assert default.split()[1] != backup, "maintenance and backups start at the same time"


def test_the_mysql_version_is_pinned(tf):
    assert _db(tf)["mysql_version"] == "${var.mysql_version}"
    var = tf.variables()["mysql_version"]
    assert "default" not in var, "the operator picks a version the region offers"
    pattern = _regex_of(tf, "mysql_version")
    for good in ("8.4.6", "8.0.43", "9.5.1", "9.0.1-u1"):
        assert re.fullmatch(pattern, good), good
    for bad in ("8.4", "8", "latest", "MySQL 8.4.6", "5.7.44", "8.4.6 "):
        assert not re.fullmatch(pattern, bad), bad


# --------------------------------------------------------------------------
# 9. The inventory: real plugin options, only the playbooks' groups
# --------------------------------------------------------------------------
INVENTORY_VARS = dict(
    auth_type="api_key",
    config_profile="DEFAULT",
    regions=["eu-frankfurt-1"],
    compartment_ocid="ocid1.compartment.oc1..aaaatest",
    project="oci-mlops",
    environment="prod",
)


def _inventory():
    text = (TF_DIR / "templates" / "inventory.oci.yml.tftpl").read_text(encoding="utf-8")
    return yaml.safe_load(tftpl.render(text, INVENTORY_VARS))


def test_the_vendored_option_lists_are_the_real_plugins():
    """Against the installed collection when present, else against the real
    plugin vendored byte-identical for the unit tests
    (tests/unit/data/oracle_oci): its DOCUMENTATION either way."""
    real = plugin.real_plugin_options()
    where = f"oracle.oci {real['version']} ({real['source']}) at {real['path']}"
    if real["source"] == "vendored":
        assert real["version"] == plugin.COLLECTION_VERSION, where
    assert real["own"] == plugin.OWN_OPTIONS, (
        f"{where}: missing {sorted(real['own'] - plugin.OWN_OPTIONS)}, gone {sorted(plugin.OWN_OPTIONS - real['own'])}"
    )
    assert set(real["extends"]) == set(plugin.FRAGMENTS), where
    assert real["auth_types"] == plugin.AUTH_TYPES, where


def test_the_vendored_fragment_options_are_ansible_cores():
    """The fragments the plugin extends, from the installed ansible-core (the
    terraform tests' virtualenv has none: the control node's, `make venv`)."""
    core = plugin.real_fragment_options()
    if core is None:
        pytest.skip("no ansible-core: not importable, no .venv/bin/ansible, no ansible on PATH (make venv)")
    for name, options in core["fragments"].items():
        vendored = plugin.FRAGMENT_OPTIONS[name]
        assert options == vendored, (
            f"ansible-core {core['version']} at {core['path']}, fragment {name}: "
            f"missing {sorted(options - vendored)}, gone {sorted(vendored - options)}"
        )


def test_the_vendored_fragments_are_the_locked_ansible_cores():
    """The control node installs the ansible-core the fragment lists were taken from."""
    lock = (ROOT / "requirements" / "control-node.txt").read_text(encoding="utf-8")
    pinned = re.findall(r"^ansible-core==(\S+)", lock, re.M)
    assert pinned == [plugin.ANSIBLE_CORE_VERSION]


def test_the_vendored_lists_name_their_source():
    doc = plugin.__doc__
    assert f"collection version {plugin.COLLECTION_VERSION}" in doc
    assert f"ansible-core {plugin.ANSIBLE_CORE_VERSION}" in doc
    assert "plugins/inventory/oci.py" in doc
    requirements = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    (oci,) = [c for c in requirements if c["name"] == "oracle.oci"]
    bounds = re.fullmatch(r">=([\d.]+),<([\d.]+)", oci["version"])
    assert bounds, oci["version"]
    low, high = bounds.groups()
    version = tuple(int(x) for x in plugin.COLLECTION_VERSION.split("."))
    assert tuple(int(x) for x in low.split(".")) <= version < tuple(int(x) for x in high.split("."))


def test_a_misspelled_option_is_caught():
    cfg = _inventory()
    assert not plugin.unknown_options(cfg)
    for typo in ("default_group", "keyed_group", "hostname_formats", "exclude_filters", "tenancy"):
        assert plugin.unknown_options({**cfg, typo: []}) == {typo}


def test_the_inventory_uses_only_real_options(tf):
    cfg = _inventory()
    assert not plugin.unknown_options(cfg), plugin.unknown_options(cfg)
    assert cfg["auth_type"] in plugin.AUTH_TYPES
    for comp in cfg["compartments"]:
        assert set(comp) <= plugin.COMPARTMENT_OPTIONS, comp
    for keyed in cfg["keyed_groups"]:
        assert set(keyed) <= plugin.KEYED_GROUP_OPTIONS, keyed
    auth = re.findall(r'"([a-z_]+)"', tf.variables()["inventory_auth_type"]["validation"][0]["condition"])
    assert set(auth) <= plugin.AUTH_TYPES


def test_the_inventory_turns_the_default_groups_off():
    assert _inventory()["default_groups"] == []
    assert "default_groups_preferences" not in _inventory()


def _hosts(compartment="db"):
    """One host per instance group, in a compartment named like a playbook
    group, with Oracle's creation tags, as the plugin sees them."""
    return {
        group: {
            "compartment_name": compartment,
            "region": "eu-frankfurt-1",
            "availability_domain": "Uocm:EU-FRANKFURT-1-AD-1",
            "freeform_tags": {"project": "oci-mlops", "environment": "prod", "ansible_group": group},
            "defined_tags": {
                "oci-mlops-prod": {"ansible_group": group},
                "Oracle-Tags": {"CreatedBy": "ocid1.user.oc1..x", "CreatedOn": "2026-12-01T10:00:00.000Z"},
            },
        }
        for group in sorted(INSTANCE_GROUPS)
    }


def test_the_simulation_reproduces_the_reported_groups():
    """Without default_groups the plugin adds the compartment (`db`), a group
    per tag and per creation timestamp: what the review saw, ~16 per host."""
    cfg = {k: v for k, v in _inventory().items() if k != "default_groups"}
    groups = plugin.groups_of(cfg, _hosts()["mlflow"])
    assert "db" in groups and "mlflow" in groups
    assert any("CreatedOn" in g for g in groups)
    assert len(groups) >= 10, groups


@pytest.mark.parametrize("compartment", ["db", "objectstore", "mlops"])
def test_the_inventory_yields_exactly_the_playbooks_groups(compartment):
    cfg = _inventory()
    per_host = {group: plugin.groups_of(cfg, host) for group, host in _hosts(compartment).items()}
    for group, groups in per_host.items():
        assert groups == {group, plugin.ALWAYS_GROUP}, (group, groups)
    all_groups = set().union(*per_host.values())
    assert all_groups - {plugin.ALWAYS_GROUP} == INSTANCE_GROUPS
    assert not all_groups & MANAGED_GROUPS
    # all_hosts is the plugin's own, always there: no play, role or topology uses it.
    assert plugin.ALWAYS_GROUP not in TOPOLOGY["groups"]
    for path in list((ROOT / "ansible").rglob("*.yml")) + [ROOT / "site.yml"]:
        assert plugin.ALWAYS_GROUP not in path.read_text(encoding="utf-8"), path


def test_group_names_and_display_names_are_valid_identifiers(tf):
    """ansible-core 2.19 deprecates (removal in 2.23) inventory variables
    with invalid names, and the plugin sets a host variable named after each
    instance's display name; group names with other characters are rewritten
    with a warning."""
    for group in INSTANCE_GROUPS:
        assert group.isidentifier() and group.isascii(), group
    inst = tf.resources("oci_core_instance")[("oci_core_instance", "this")]
    assert inst["display_name"] == '${replace("${local.name}-${each.key}", "-", "_")}'
    # What that gives with the most hyphenated names the variables allow.
    project_re = _regex_of(tf, "project")
    env_re = _regex_of(tf, "environment")
    for project, env in (("oci-mlops", "prod"), ("a-b-c", "dev2"), ("x9-", "qa")):
        assert re.fullmatch(project_re, project) and re.fullmatch(env_re, env)
        for group in INSTANCE_GROUPS:
            name = f"{project}-{env}-{group}-1".replace("-", "_")
            assert name.isidentifier() and name.isascii(), name
