# IAM (created in the home region): a defined tag carrying the inventory group,
# dynamic groups of the project's instances matched by compartment + that tag
# (dynamic-group rules cannot match freeform tags), and least-privilege
# policies scoped to one bucket each.

resource "oci_identity_tag_namespace" "this" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = local.tag_namespace
  description    = "Tags of ${local.name} (dynamic-group matching)"
  freeform_tags  = local.common_tags

  lifecycle {
    precondition {
      condition     = var.home_region == null || var.home_region == local.subscribed_home_region
      error_message = "home_region is ${coalesce(var.home_region, "null")}, but the tenancy's home region (region subscription is_home_region) is ${coalesce(local.subscribed_home_region, "unknown")}: IAM writes only succeed there. Unset home_region or set it to the home region."
    }
  }
}

resource "oci_identity_tag" "ansible_group" {
  provider = oci.home

  tag_namespace_id = oci_identity_tag_namespace.this.id
  name             = "ansible_group"
  description      = "Inventory group of the instance (same as the freeform tag ansible_group)"
  freeform_tags    = local.common_tags

  validator {
    validator_type = "ENUM"
    values         = local.instance_group_names
  }
}

# A new tag namespace and tag are not usable at once: OCI rejects resources
# that set them until they propagate ("TagNamespace ... does not exist",
# terraform-provider-oci#2065, where the maintainers recommend a time_sleep).
# Every resource that sets defined_tags depends on this wait (depends_on);
# it waits again whenever the tag is replaced.
resource "time_sleep" "tag_propagation" {
  create_duration = var.tag_propagation_wait

  triggers = {
    tag_namespace_id = oci_identity_tag_namespace.this.id
    tag_id           = oci_identity_tag.ansible_group.id
  }
}

locals {
  # Groups whose instances need an identity (instance principal): the object
  # store's clients in the topology (they read and write the buckets).
  principal_groups = local.topology.services.objectstore.clients

  bucket_in = "in compartment id ${var.compartment_ocid} where target.bucket.name ="
}

resource "oci_identity_dynamic_group" "this" {
  provider = oci.home
  for_each = toset(local.principal_groups)

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-${each.key}"
  description    = "${each.key} instances of ${local.name}"
  matching_rule  = "ALL {instance.compartment.id = '${var.compartment_ocid}', tag.${oci_identity_tag_namespace.this.name}.${oci_identity_tag.ansible_group.name}.value = '${each.key}'}"
  freeform_tags  = local.common_tags
}

resource "oci_identity_policy" "instances" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${local.name}-instances"
  description    = "What the ${local.name} instances may do (instance principals)"
  freeform_tags  = local.common_tags

  # The airflow hosts and the Celery workers only READ the DAG bucket (issue
  # #15 point 3): the tasks they run are DAG authors' code, and publishing is
  # the controller's/CI's job (dags_publisher_group below). `read objects` is
  # OBJECT_INSPECT and OBJECT_READ: no create, overwrite or delete.
  statements = [
    # Airflow's DAG sync (rclone oos backend, instance principal): read the DAG bucket.
    "Allow dynamic-group ${oci_identity_dynamic_group.this["airflow"].name} to read buckets ${local.bucket_in} '${local.dags_bucket}'",
    "Allow dynamic-group ${oci_identity_dynamic_group.this["airflow"].name} to read objects ${local.bucket_in} '${local.dags_bucket}'",
    # The Celery workers (optional group, maybe without hosts) run the same
    # DAGs: the same DAG sync, the same read-only grant.
    "Allow dynamic-group ${oci_identity_dynamic_group.this["airflow_worker"].name} to read buckets ${local.bucket_in} '${local.dags_bucket}'",
    "Allow dynamic-group ${oci_identity_dynamic_group.this["airflow_worker"].name} to read objects ${local.bucket_in} '${local.dags_bucket}'",
    # MLflow: the artifacts bucket (native API; the S3 API needs the customer secret key below).
    "Allow dynamic-group ${oci_identity_dynamic_group.this["mlflow"].name} to read buckets ${local.bucket_in} '${local.artifacts_bucket}'",
    "Allow dynamic-group ${oci_identity_dynamic_group.this["mlflow"].name} to manage objects ${local.bucket_in} '${local.artifacts_bucket}'",
    # The backup role on the schemas host (the first mlflow host): write its
    # dumps, list them, delete those past retention (backups bucket only).
    "Allow dynamic-group ${oci_identity_dynamic_group.this["mlflow"].name} to read buckets ${local.bucket_in} '${local.backups_bucket}'",
    "Allow dynamic-group ${oci_identity_dynamic_group.this["mlflow"].name} to manage objects ${local.bucket_in} '${local.backups_bucket}'",
  ]
}

# Who publishes the DAGs (ansible/playbooks/publish-dags.yml runs on the
# controller with its OCI API key): an existing IAM group, e.g. CI's user's,
# may write the DAG bucket's objects and nothing else here. null: no grant
# (a tenancy administrator publishes with their own rights).
resource "oci_identity_policy" "dags_publisher" {
  provider = oci.home
  count    = var.dags_publisher_group == null ? 0 : 1

  compartment_id = var.compartment_ocid
  name           = "${local.name}-dags-publisher"
  description    = "Who may publish the ${local.name} DAGs (the controller or CI, never the airflow instances)"
  freeform_tags  = local.common_tags
  statements = [
    "Allow group ${var.dags_publisher_group} to read buckets ${local.bucket_in} '${local.dags_bucket}'",
    "Allow group ${var.dags_publisher_group} to manage objects ${local.bucket_in} '${local.dags_bucket}'",
  ]
}

# Buckets encrypted with a customer-managed key: Object Storage must use it.
resource "oci_identity_policy" "kms" {
  provider = oci.home
  count    = var.kms_key_id == null ? 0 : 1

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-objectstorage-kms"
  description    = "Object Storage may use the key of the ${local.name} buckets"
  freeform_tags  = local.common_tags
  statements = [
    "Allow service objectstorage-${var.region} to use keys in tenancy where target.key.id = '${var.kms_key_id}'",
  ]
}

# Optional: an IAM user limited to the artifacts bucket, with a customer
# secret key for MLflow's S3-compatible access (instance principals do not
# work on the S3 API). The secret is returned once and lands in the state:
# keep the state in an encrypted backend, copy the pair into Ansible Vault
# (vault_s3_access_key, vault_s3_secret_key).
resource "oci_identity_user" "mlflow_s3" {
  provider = oci.home
  count    = var.create_mlflow_s3_user ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-mlflow-s3"
  description    = "MLflow artifacts (S3 compatibility API) of ${local.name}"
  # Identity-domain tenancies refuse a user without a primary email ("The
  # primary email must be specified", terraform-provider-oci#2388).
  email         = var.mlflow_s3_user_email
  freeform_tags = local.common_tags

  lifecycle {
    precondition {
      condition     = var.mlflow_s3_user_email != null
      error_message = "create_mlflow_s3_user = true needs mlflow_s3_user_email: the IAM user's primary email (identity-domain tenancies refuse a user without one)."
    }
  }
}

resource "oci_identity_group" "mlflow_s3" {
  provider = oci.home
  count    = var.create_mlflow_s3_user ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-mlflow-s3"
  description    = "MLflow artifacts (S3 compatibility API) of ${local.name}"
  freeform_tags  = local.common_tags
}

resource "oci_identity_user_group_membership" "mlflow_s3" {
  provider = oci.home
  count    = var.create_mlflow_s3_user ? 1 : 0

  group_id = oci_identity_group.mlflow_s3[0].id
  user_id  = oci_identity_user.mlflow_s3[0].id
}

resource "oci_identity_policy" "mlflow_s3" {
  provider = oci.home
  count    = var.create_mlflow_s3_user ? 1 : 0

  compartment_id = var.compartment_ocid
  name           = "${local.name}-mlflow-s3"
  description    = "The MLflow S3 user may use the artifacts bucket only"
  freeform_tags  = local.common_tags
  statements = [
    "Allow group ${oci_identity_group.mlflow_s3[0].name} to read buckets ${local.bucket_in} '${local.artifacts_bucket}'",
    "Allow group ${oci_identity_group.mlflow_s3[0].name} to manage objects ${local.bucket_in} '${local.artifacts_bucket}'",
  ]
}

resource "oci_identity_customer_secret_key" "mlflow_s3" {
  provider = oci.home
  count    = var.create_mlflow_s3_user ? 1 : 0

  user_id      = oci_identity_user.mlflow_s3[0].id
  display_name = "${local.name}-mlflow-s3"
}

# Optional: an IAM user limited to the task logs bucket, with a customer
# secret key for Airflow's remote task logs (the S3 task log handler of
# apache-airflow-providers-amazon; instance principals do not work on the
# S3 API). Needed when the inventory has airflow_worker hosts: the airflow
# hosts and the workers write and read the logs with it. The secret is
# returned once and lands in the state: keep the state in an encrypted
# backend, copy the pair into Ansible Vault
# (vault_airflow_task_logs_access_key, vault_airflow_task_logs_secret_key).
resource "oci_identity_user" "task_logs_s3" {
  provider = oci.home
  count    = var.create_task_logs_s3_user ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-task-logs-s3"
  description    = "Airflow task logs (S3 compatibility API) of ${local.name}"
  # Identity-domain tenancies refuse a user without a primary email ("The
  # primary email must be specified", terraform-provider-oci#2388).
  email         = var.task_logs_s3_user_email
  freeform_tags = local.common_tags

  lifecycle {
    precondition {
      condition     = var.task_logs_s3_user_email != null
      error_message = "create_task_logs_s3_user = true needs task_logs_s3_user_email: the IAM user's primary email (identity-domain tenancies refuse a user without one)."
    }
  }
}

resource "oci_identity_group" "task_logs_s3" {
  provider = oci.home
  count    = var.create_task_logs_s3_user ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = "${local.name}-task-logs-s3"
  description    = "Airflow task logs (S3 compatibility API) of ${local.name}"
  freeform_tags  = local.common_tags
}

resource "oci_identity_user_group_membership" "task_logs_s3" {
  provider = oci.home
  count    = var.create_task_logs_s3_user ? 1 : 0

  group_id = oci_identity_group.task_logs_s3[0].id
  user_id  = oci_identity_user.task_logs_s3[0].id
}

resource "oci_identity_policy" "task_logs_s3" {
  provider = oci.home
  count    = var.create_task_logs_s3_user ? 1 : 0

  compartment_id = var.compartment_ocid
  name           = "${local.name}-task-logs-s3"
  description    = "The task logs S3 user may use the task logs bucket only"
  freeform_tags  = local.common_tags
  statements = [
    "Allow group ${oci_identity_group.task_logs_s3[0].name} to read buckets ${local.bucket_in} '${local.task_logs_bucket}'",
    "Allow group ${oci_identity_group.task_logs_s3[0].name} to manage objects ${local.bucket_in} '${local.task_logs_bucket}'",
  ]
}

resource "oci_identity_customer_secret_key" "task_logs_s3" {
  provider = oci.home
  count    = var.create_task_logs_s3_user ? 1 : 0

  user_id      = oci_identity_user.task_logs_s3[0].id
  display_name = "${local.name}-task-logs-s3"
}

# Object lifecycle rules (storage.tf) act as Object Storage itself: it must be
# allowed to delete the objects of the project's compartment.
resource "oci_identity_policy" "lifecycle" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${local.name}-objectstorage-lifecycle"
  description    = "Object Storage may apply the lifecycle rules of the ${local.name} buckets"
  freeform_tags  = local.common_tags
  statements = [
    "Allow service objectstorage-${var.region} to manage object-family in compartment id ${var.compartment_ocid}",
  ]
}
