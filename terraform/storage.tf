# Object Storage replaces the lab's `objectstore` host (role object_store):
# the MLflow artifacts bucket (S3 compatibility API) and the Airflow DAG
# bucket (native API, instance principal). Private, versioned, emitting
# object events; encrypted with a customer-managed key when kms_key_id is set.

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
