output "instances" {
  description = "Service hosts per inventory group: name, private and public IP."
  value = {
    for group in local.instance_group_names : group => [
      for key, inst in oci_core_instance.this : {
        name       = inst.display_name
        private_ip = inst.private_ip
        public_ip  = inst.public_ip
      } if local.instances[key].group == group
    ]
  }
}

output "endpoints" {
  description = "Service URLs on the first host of each group (private IPs; reachable from the VCN and admin_ssh_cidr)."
  value = {
    mlflow    = "http://${oci_core_instance.this["mlflow-1"].private_ip}:${local.service_ports.mlflow[0]}"
    airflow   = "http://${oci_core_instance.this["airflow-1"].private_ip}:${local.service_ports.airflow[0]}"
    api       = "http://${oci_core_instance.this["api-1"].private_ip}:${local.service_ports.api[0]}"
    dashboard = "http://${oci_core_instance.this["api-1"].private_ip}:${local.service_ports.api[1]}"
  }
}

output "db_endpoint" {
  description = "Private IP address of the MySQL DB System (port db_port)."
  value       = oci_mysql_mysql_db_system.this.ip_address
}

output "db_port" {
  description = "Port of the MySQL DB System."
  value       = oci_mysql_mysql_db_system.this.port
}

output "db_admin_username" {
  description = "Administrator of the MySQL DB System."
  value       = var.db_admin_username
}

output "namespace" {
  description = "Object Storage namespace of the tenancy."
  value       = data.oci_objectstorage_namespace.this.namespace
}

output "buckets" {
  description = "Bucket names: MLflow artifacts and Airflow DAGs."
  value = {
    artifacts = oci_objectstorage_bucket.artifacts.name
    dags      = oci_objectstorage_bucket.dags.name
  }
}

output "s3_endpoint" {
  description = "S3 compatibility endpoint for MLflow's artifacts (path-style)."
  value       = "https://${data.oci_objectstorage_namespace.this.namespace}.compat.objectstorage.${var.region}.oraclecloud.com"
}

output "s3_access_key" {
  description = "Access key of the MLflow S3 user (create_mlflow_s3_user); copy into vault_s3_access_key."
  value       = var.create_mlflow_s3_user ? oci_identity_customer_secret_key.mlflow_s3[0].id : null
  sensitive   = true
}

output "s3_secret_key" {
  description = "Secret key of the MLflow S3 user (create_mlflow_s3_user); copy into vault_s3_secret_key."
  value       = var.create_mlflow_s3_user ? oci_identity_customer_secret_key.mlflow_s3[0].key : null
  sensitive   = true
}

output "inventory_files" {
  description = "Files written for Ansible: the oracle.oci inventory and the infra_* variables."
  value       = [local_file.inventory.filename, local_file.infra_vars.filename]
}
