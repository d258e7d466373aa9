# Where the platform finds MySQL: this DB System, or the one a restore from a
# backup or a point in time created (a new DB System, new endpoint:
# db_endpoint_override, docs/operations.md "Restore on OCI").
locals {
  db_endpoint = coalesce(var.db_endpoint_override, oci_mysql_mysql_db_system.this.ip_address)
}

# The managed MySQL DB System replaces the lab's `db` host (role
# mysql_server): private subnet, no public endpoint, 3306 reachable only from
# the mlflow and airflow NSGs, automatic backups with point-in-time recovery.
resource "oci_mysql_mysql_db_system" "this" {
  availability_domain     = local.availability_domain
  compartment_id          = var.compartment_ocid
  display_name            = "${local.name}-mysql"
  description             = "Metadata database of ${local.name} (MLflow, Airflow)"
  shape_name              = var.db_shape
  subnet_id               = oci_core_subnet.private.id
  nsg_ids                 = [oci_core_network_security_group.db.id]
  hostname_label          = "mysql"
  data_storage_size_in_gb = var.db_data_storage_size_gbs
  admin_username          = var.db_admin_username
  admin_password          = var.db_admin_password
  port                    = local.db_port
  mysql_version           = var.mysql_version
  freeform_tags           = local.common_tags

  maintenance {
    window_start_time = var.db_maintenance_window_start
  }

  backup_policy {
    is_enabled        = true
    retention_in_days = var.db_backup_retention_days
    window_start_time = var.db_backup_window_start

    pitr_policy {
      is_enabled = true
    }
  }

  deletion_policy {
    is_delete_protected        = var.db_deletion_protection
    final_backup               = "REQUIRE_FINAL_BACKUP"
    automatic_backup_retention = "RETAIN"
  }
}
