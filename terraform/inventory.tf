# The inventory Ansible uses on OCI (git-ignored, rewritten by every apply):
#   inventory/oci/<inventory_name>.oci.yml   the oracle.oci.oci plugin's config:
#       the project's instances, grouped by their ansible_group freeform tag
#       (group names are exactly the playbooks' groups)
#   inventory/oci/group_vars/all/infra.yml   the infra_* variables the
#       playbooks read (DB endpoint, buckets, namespace, region...)
# Secrets are never written here: see docs/deploy-oci.md (Ansible Vault).

resource "local_file" "inventory" {
  filename        = "${local.inventory_dir}/${var.inventory_name}.oci.yml"
  file_permission = "0644"
  content = templatefile("${path.module}/templates/inventory.oci.yml.tftpl", {
    auth_type        = var.inventory_auth_type
    config_profile   = var.oci_config_profile
    regions          = [var.region]
    compartment_ocid = var.compartment_ocid
    hostname_format  = var.inventory_hostname_format
    project          = var.project
    environment      = var.environment
  })

  lifecycle {
    precondition {
      condition     = var.inventory_hostname_format != "public_ip" || var.assign_public_ip
      error_message = "inventory_hostname_format = public_ip needs assign_public_ip = true."
    }
  }
}

resource "local_file" "infra_vars" {
  filename        = "${local.inventory_dir}/group_vars/all/infra.yml"
  file_permission = "0644"
  content = templatefile("${path.module}/templates/infra.yml.tftpl", {
    region           = var.region
    compartment_ocid = var.compartment_ocid
    namespace        = data.oci_objectstorage_namespace.this.namespace
    artifacts_bucket = oci_objectstorage_bucket.artifacts.name
    dags_bucket      = oci_objectstorage_bucket.dags.name
    db_endpoint      = oci_mysql_mysql_db_system.this.ip_address
    db_admin_user    = var.db_admin_username
    vcn_cidr         = var.vcn_cidr
    ssh_sources      = distinct([var.vcn_cidr, var.admin_ssh_cidr])
    service_sources  = local.service_sources
    # The roles' client-CIDR variables of the published ports (topology).
    service_firewall_vars = local.service_client_cidr_vars
    ansible_user          = var.ansible_user
  })
}
