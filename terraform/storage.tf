# Object Storage replaces the lab's `objectstore` host (role object_store):
# the MLflow artifacts bucket (S3 compatibility API), the Airflow DAG
# bucket (native API, instance principal), the backups bucket (the backup
# role's portable MySQL dumps, native API, instance principal) and the
# Airflow task logs bucket (S3 compatibility API, the task logs S3 user's
# key). Private, versioned, emitting object events; encrypted with a
# customer-managed key when kms_key_id is set.

data "oci_objectstorage_namespace" "this" {
  compartment_id = var.tenancy_ocid
}

resource "oci_objectstorage_bucket" "artifacts" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = local.artifacts_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = merge(local.common_tags, { purpose = "mlflow-artifacts" })

  depends_on = [oci_identity_policy.kms]
}

resource "oci_objectstorage_bucket" "dags" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = local.dags_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = merge(local.common_tags, { purpose = "airflow-dags" })

  depends_on = [oci_identity_policy.kms]
}

# The backup role's dumps (docs/operations.md): the DB System's automatic
# backups and PITR are the primary protection on OCI; these are the portable,
# restorable export. The role deletes backups past its own retention; the
# lifecycle rule below is the second line (and removes the versions a
# deletion leaves behind).
resource "oci_objectstorage_bucket" "backups" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = local.backups_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = merge(local.common_tags, { purpose = "mysql-backups" })

  depends_on = [oci_identity_policy.kms]
}

# Airflow's remote task logs (the S3 task log handler of
# apache-airflow-providers-amazon, through the S3 compatibility API with the
# task logs S3 user's key, iam.tf): a task's log stays readable after the
# Celery worker that ran it is gone. Created always, whatever
# instance_groups.airflow_worker.count: an empty bucket costs nothing, and the
# bucket, the infra_task_logs_bucket variable and the `buckets` output (which
# the destroy empties) do not come and go with the workers.
resource "oci_objectstorage_bucket" "task_logs" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = local.task_logs_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = merge(local.common_tags, { purpose = "airflow-task-logs" })

  depends_on = [oci_identity_policy.kms]
}

# Lifecycle rules need Object Storage's own permission on the compartment's
# objects (oci_identity_policy.lifecycle, iam.tf).
resource "oci_objectstorage_object_lifecycle_policy" "backups" {
  namespace = data.oci_objectstorage_namespace.this.namespace
  bucket    = oci_objectstorage_bucket.backups.name

  rules {
    name        = "delete-backups-past-retention"
    action      = "DELETE"
    target      = "objects"
    time_amount = var.backups_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = var.previous_versions_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "abort-incomplete-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = 2
    time_unit   = "DAYS"
    is_enabled  = true
  }

  depends_on = [oci_identity_policy.lifecycle]
}

# The artifacts bucket is versioned: an overwritten or deleted artifact stays
# as a previous version. Those (never the current objects: MLflow owns their
# lifetime) are deleted after previous_versions_retention_days, and
# abandoned multipart uploads after 2 days.
resource "oci_objectstorage_object_lifecycle_policy" "artifacts" {
  namespace = data.oci_objectstorage_namespace.this.namespace
  bucket    = oci_objectstorage_bucket.artifacts.name

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = var.previous_versions_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "abort-incomplete-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = 2
    time_unit   = "DAYS"
    is_enabled  = true
  }

  depends_on = [oci_identity_policy.lifecycle]
}

# Task logs are deleted after task_logs_retention_days; the previous
# versions an overwrite or that deletion leaves behind after
# previous_versions_retention_days, abandoned multipart uploads after 2 days.
resource "oci_objectstorage_object_lifecycle_policy" "task_logs" {
  namespace = data.oci_objectstorage_namespace.this.namespace
  bucket    = oci_objectstorage_bucket.task_logs.name

  rules {
    name        = "delete-task-logs-past-retention"
    action      = "DELETE"
    target      = "objects"
    time_amount = var.task_logs_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = var.previous_versions_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "abort-incomplete-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = 2
    time_unit   = "DAYS"
    is_enabled  = true
  }

  depends_on = [oci_identity_policy.lifecycle]
}
