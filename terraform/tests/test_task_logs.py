"""Airflow's remote task logs in Object Storage: the task logs bucket (like
the artifacts, DAG and backups buckets), its lifecycle rules, the optional
IAM user whose customer secret key the S3 task log handler uses (the S3
compatibility API takes no instance principal; like the MLflow S3 user),
its sensitive outputs and infra_task_logs_bucket in the rendered inventory.
Read from the parsed HCL and, where the configuration computes something
(names, tags, statements, validations, preconditions, outputs), evaluated
with tests/hcleval.py for given variables.
"""

from __future__ import annotations

import re

import hcleval
import pytest
import test_terraform as tt
import tftpl
import yaml
from conftest import ROOT, TF_DIR, unquote
from test_optional_groups import REQUIRED

BUCKET = ("oci_objectstorage_bucket", "task_logs")
LIFECYCLE = ("oci_objectstorage_object_lifecycle_policy", "task_logs")
IAM = ("oci_identity_user", "oci_identity_group", "oci_identity_user_group_membership", "oci_identity_policy")
VAULT = {
    "task_logs_s3_access_key": "vault_airflow_task_logs_access_key",
    "task_logs_s3_secret_key": "vault_airflow_task_logs_secret_key",
}


def _model(tf, **variables):
    return hcleval.Model(tf, TF_DIR, **{**REQUIRED, **variables})


def _outputs(tf) -> dict:
    return {
        unquote(name): body
        for doc in tf.parsed.values()
        for block in doc.get("output", [])
        for name, body in block.items()
    }


# --------------------------------------------------------------------------
# The bucket and its lifecycle rules
# --------------------------------------------------------------------------
def test_the_task_logs_bucket_is_built_like_the_others(tf):
    buckets = tf.resources("oci_objectstorage_bucket")
    body = buckets[BUCKET]
    assert unquote(body["access_type"]) == "NoPublicAccess"
    assert unquote(body["versioning"]) == "Enabled"
    assert body["kms_key_id"] == "${var.kms_key_id}"
    assert body["object_events_enabled"] is True
    assert body["name"] == "${local.task_logs_bucket}"
    # Created always (no count): the bucket does not follow airflow_worker's count.
    assert "count" not in body and "for_each" not in body
    # Every other argument is the backups bucket's, word for word.
    same = {k: v for k, v in body.items() if k not in ("name", "freeform_tags")}
    backups = buckets[("oci_objectstorage_bucket", "backups")]
    assert same == {k: v for k, v in backups.items() if k not in ("name", "freeform_tags")}
    model = _model(tf)
    assert hcleval.value_of(body["freeform_tags"], model.scope()) == {
        "project": "oci-mlops",
        "environment": "prod",
        "purpose": "airflow-task-logs",
    }


def test_the_task_logs_bucket_is_named_like_the_others(tf):
    assert _model(tf).local("task_logs_bucket") == "oci-mlops-prod-task-logs"
    assert _model(tf, project="acme", environment="dev").local("task_logs_bucket") == "acme-dev-task-logs"
    assert _model(tf, task_logs_bucket_name="my-logs").local("task_logs_bucket") == "my-logs"
    assert tf.variables()["task_logs_bucket_name"]["default"] is None


def test_task_logs_expire_after_the_retention_variable(tf):
    policy = tf.resources("oci_objectstorage_object_lifecycle_policy")[LIFECYCLE]
    assert policy["bucket"] == "${oci_objectstorage_bucket.task_logs.name}"
    assert "oci_identity_policy.lifecycle" in str(policy["depends_on"])
    rules = policy["rules"] if isinstance(policy["rules"], list) else [policy["rules"]]
    by_target = {unquote(r["target"]): r for r in rules}
    assert set(by_target) == {"objects", "previous-object-versions", "multipart-uploads"}
    assert by_target["objects"]["time_amount"] == "${var.task_logs_retention_days}"
    assert unquote(by_target["objects"]["action"]) == "DELETE"
    assert by_target["previous-object-versions"]["time_amount"] == "${var.previous_versions_retention_days}"
    assert unquote(by_target["previous-object-versions"]["action"]) == "DELETE"
    assert unquote(by_target["multipart-uploads"]["action"]) == "ABORT"
    for rule in rules:
        assert rule["is_enabled"] is True and unquote(rule["time_unit"]) == "DAYS"
    # The retention reaches the rule as given.
    model = _model(tf, task_logs_retention_days=7)
    assert hcleval.value_of(by_target["objects"]["time_amount"], model.scope()) == 7


def test_the_retention_defaults_to_30_days(tf):
    variable = tf.variables()["task_logs_retention_days"]
    assert variable["default"] == 30
    assert unquote(variable["type"]) in ("number", "${number}")


@pytest.mark.parametrize("days", [0, -1, 0.5])
def test_a_retention_below_one_day_is_refused(tf, days):
    (message,) = _model(tf, task_logs_retention_days=days).failed_validations("task_logs_retention_days")
    assert "task_logs_retention_days" in message


@pytest.mark.parametrize("days", [1, 30, 365])
def test_a_retention_of_a_day_or_more_is_accepted(tf, days):
    assert _model(tf, task_logs_retention_days=days).failed_validations("task_logs_retention_days") == []


# --------------------------------------------------------------------------
# The optional S3 user: the task logs bucket only
# --------------------------------------------------------------------------
def test_the_task_logs_user_and_its_key_exist_only_when_asked(tf):
    variable = tf.variables()["create_task_logs_s3_user"]
    assert variable["default"] is False
    assert unquote(variable["type"]) in ("bool", "${bool}")
    for rtype in (*IAM, "oci_identity_customer_secret_key"):
        body = tf.resources(rtype)[(rtype, "task_logs_s3")]
        assert body["count"] == "${var.create_task_logs_s3_user ? 1 : 0}", rtype
        assert body["provider"] == "${oci.home}", rtype
    for create, n in ((False, 0), (True, 1)):
        model = _model(tf, create_task_logs_s3_user=create, task_logs_s3_user_email="logs@example.com")
        for rtype in (*IAM, "oci_identity_customer_secret_key"):
            assert len(model.scope()[rtype]["task_logs_s3"]) == n, (rtype, create)


def test_the_task_logs_user_is_named_and_wired_like_the_mlflow_one(tf):
    model = _model(tf, create_task_logs_s3_user=True, task_logs_s3_user_email="logs@example.com")
    user = tf.resources("oci_identity_user")[("oci_identity_user", "task_logs_s3")]
    group = tf.resources("oci_identity_group")[("oci_identity_group", "task_logs_s3")]
    for body in (user, group):
        assert hcleval.value_of(body["name"], model.scope()) == "oci-mlops-prod-task-logs-s3"
        assert body["compartment_id"] == "${var.tenancy_ocid}"
    assert hcleval.value_of(user["email"], model.scope()) == "logs@example.com"
    membership = tf.resources("oci_identity_user_group_membership")[
        ("oci_identity_user_group_membership", "task_logs_s3")
    ]
    assert membership["group_id"] == "${oci_identity_group.task_logs_s3[0].id}"
    assert membership["user_id"] == "${oci_identity_user.task_logs_s3[0].id}"
    key = tf.resources("oci_identity_customer_secret_key")[("oci_identity_customer_secret_key", "task_logs_s3")]
    assert key["user_id"] == "${oci_identity_user.task_logs_s3[0].id}"


def test_the_task_logs_user_needs_its_email(tf):
    refused = _model(tf, create_task_logs_s3_user=True).failed_preconditions("oci_identity_user", "task_logs_s3")
    (message,) = refused
    assert "create_task_logs_s3_user" in message and "task_logs_s3_user_email" in message
    accepted = _model(tf, create_task_logs_s3_user=True, task_logs_s3_user_email="logs@example.com")
    assert accepted.failed_preconditions("oci_identity_user", "task_logs_s3") == []


@pytest.mark.parametrize("email", ["mlops", "a@b", "a b@example.com", "@example.com", "a@@example.com"])
def test_a_task_logs_user_email_that_is_no_address_is_refused(tf, email):
    (message,) = _model(tf, task_logs_s3_user_email=email).failed_validations("task_logs_s3_user_email")
    assert "task_logs_s3_user_email" in message


@pytest.mark.parametrize("email", [None, "mlops-task-logs@example.com", "ops+logs@corp.example.org"])
def test_a_task_logs_user_email_that_is_an_address_or_null_is_accepted(tf, email):
    assert _model(tf, task_logs_s3_user_email=email).failed_validations("task_logs_s3_user_email") == []


def test_the_task_logs_policy_names_the_task_logs_bucket_only(tf):
    policies = tf.resources("oci_identity_policy")
    policy = policies[("oci_identity_policy", "task_logs_s3")]
    assert policy["compartment_id"] == "${var.compartment_ocid}"
    group = "${oci_identity_group.task_logs_s3[0].name}"
    bucket = "${local.bucket_in} '${local.task_logs_bucket}'"
    assert tt._statements(policy) == [
        f"Allow group {group} to read buckets {bucket}",
        f"Allow group {group} to manage objects {bucket}",
    ]
    # Evaluated: one bucket, by its name, in the project's compartment.
    model = _model(tf, create_task_logs_s3_user=True, task_logs_s3_user_email="logs@example.com")
    where = "in compartment id ocid1.compartment.oc1..aaaatest where target.bucket.name = 'oci-mlops-prod-task-logs'"
    assert [hcleval.value_of(s, model.scope()) for s in policy["statements"]] == [
        f"Allow group <oci_identity_group.task_logs_s3[0].name> to read buckets {where}",
        f"Allow group <oci_identity_group.task_logs_s3[0].name> to manage objects {where}",
    ]
    # No other policy grants anything on the task logs bucket (no dynamic
    # group: the S3 API takes no instance principal), and this one nothing else.
    for (_, name), other in policies.items():
        if name != "task_logs_s3":
            assert not any("task_logs" in s for s in tt._statements(other)), name


# --------------------------------------------------------------------------
# Outputs and the rendered inventory
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(VAULT))
def test_the_task_logs_keys_are_sensitive_outputs_named_for_the_vault(tf, name):
    out = _outputs(tf)[name]
    assert out["sensitive"] is True
    assert VAULT[name] in unquote(out["description"])
    attribute = {"task_logs_s3_access_key": "id", "task_logs_s3_secret_key": "key"}[name]
    off = _model(tf)
    assert hcleval.value_of(out["value"], off.scope()) is None
    on = _model(tf, create_task_logs_s3_user=True, task_logs_s3_user_email="logs@example.com")
    assert hcleval.value_of(out["value"], on.scope()) == (
        f"<oci_identity_customer_secret_key.task_logs_s3[0].{attribute}>"
    )


def test_the_buckets_output_lists_the_task_logs_bucket(tf):
    """The destroy empties every bucket of this output (infra.yml, runbook step 10)."""
    value = _outputs(tf)["buckets"]["value"]
    buckets = hcleval.value_of(value, _model(tf).scope())
    assert buckets["task_logs"] == "<oci_objectstorage_bucket.task_logs.name>"
    assert set(buckets) == {n for _, n in tf.resources("oci_objectstorage_bucket")}


def test_the_infra_vars_name_the_task_logs_bucket(tf):
    body = tt._local_file(tf, "infra_vars")
    assert body["content"].count("task_logs_bucket = oci_objectstorage_bucket.task_logs.name") == 1
    text = (TF_DIR / "templates" / "infra.yml.tftpl").read_text(encoding="utf-8")
    assert "task_logs_bucket" in tftpl.referenced_names(text)
    data = yaml.safe_load(tftpl.render(text, tt.INFRA_VARS))
    assert data["infra_task_logs_bucket"] == tt.INFRA_VARS["task_logs_bucket"]
    # Next to the other buckets.
    keys = list(data)
    assert keys.index("infra_task_logs_bucket") == keys.index("infra_backups_bucket") + 1
    assert not [k for k in data if "task_logs" in k and k != "infra_task_logs_bucket"], "no key in infra.yml"


# --------------------------------------------------------------------------
# Where operators read about it
# --------------------------------------------------------------------------
def test_the_example_and_the_docs_name_the_variables_and_the_vault_keys(tf):
    example = (TF_DIR / "terraform.tfvars.example").read_text(encoding="utf-8")
    for name in ("create_task_logs_s3_user", "task_logs_s3_user_email", "task_logs_retention_days"):
        assert name in tf.variables(), name
        assert re.search(rf"^# {name}\s+=", example, re.M), f"terraform.tfvars.example: {name}"
    for doc in (TF_DIR / "README.md", ROOT / "docs" / "deploy-oci.md"):
        text = doc.read_text(encoding="utf-8")
        for word in (*VAULT, *VAULT.values(), "create_task_logs_s3_user", "airflow_worker"):
            assert word in text, f"{doc.name}: {word}"
