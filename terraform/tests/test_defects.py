"""Issue #16: the defects a review found that a first real apply or deploy
would hit, each checked statically (points 1, 2, 4 and 7).
"""

from __future__ import annotations

import re

import yaml
from conftest import ROOT, unquote

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
    users = tf.resources("oci_identity_user")
    assert users
    for key, body in users.items():
        assert body.get("email") == "${var.mlflow_s3_user_email}", f"{key} has no email"
        conditions = [p["condition"] for p in body["lifecycle"][0]["precondition"]]
        assert "${var.mlflow_s3_user_email != null}" in conditions, key
    pattern = _regex_of(tf, "mlflow_s3_user_email")
    assert re.fullmatch(pattern, "mlops-s3@example.com")
    for bad in ("mlops", "a@b", "a b@example.com", "@example.com"):
        assert not re.fullmatch(pattern, bad), bad
    assert tf.variables()["mlflow_s3_user_email"]["default"] is None


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
