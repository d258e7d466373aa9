output "instances" {
  description = "Hosts per inventory group: name and private IP (every instance is in the private subnet, without a public IP)."
  value = {
    for group in local.instance_group_names : group => [
      for key, inst in oci_core_instance.this : {
        name       = inst.display_name
        private_ip = inst.private_ip
      } if local.instances[key].group == group
    ]
  }
}

locals {
  # The front door: the published service on the instances (the edge, behind
  # the load balancer), which routes each service with a route (the
  # topology) under its path.
  front_door_port = one([for name, svc in local.lb_services : svc.port])
}

output "load_balancer_ip" {
  description = "Public IP address of the load balancer, the platform's only public entry (point public_hostnames' DNS records at it)."
  value       = one(local.lb_public_ips)
}

output "load_balancer_urls" {
  description = "The load balancer's HTTPS URL of each published service (public_hostnames' first name, or the load balancer's IP): the front door's root."
  value = {
    for name, svc in local.lb_services : name => "https://${local.front_door_names[0]}:${svc.port}/"
  }
}

output "bastion_id" {
  description = "OCID of the OCI Bastion, the only SSH path to the hosts: create a dynamic port forwarding (SOCKS5) session on it and export its OCID as OCI_BASTION_SESSION_ID before running Ansible."
  value       = oci_bastion_bastion.this.id
}

output "endpoints" {
  description = "What users open: each routed service's URL on the front door (public_hostnames or the load balancer's public IP)."
  value = {
    for name, svc in local.topology.services :
    name => "https://${local.front_door_names[0]}:${local.front_door_port}${svc.route}"
    if try(svc.route, null) != null
  }
}

output "ssh_jump" {
  description = "How the controller reaches the hosts (inventory_ssh_jump): the ssh arguments written to inventory/oci as ansible_ssh_common_args (a ProxyCommand through the bastion session named by infra_bastion_session_id), empty when inventory_ssh_jump is false."
  value       = local.ssh_common_args
}

output "db_endpoint" {
  description = "Private IP address of the MySQL DB System the platform uses (port db_port): the managed one, or db_endpoint_override."
  value       = local.db_endpoint
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
  description = "Bucket names: MLflow artifacts, Airflow DAGs, the backups and Airflow's task logs."
  value = {
    artifacts = oci_objectstorage_bucket.artifacts.name
    dags      = oci_objectstorage_bucket.dags.name
    backups   = oci_objectstorage_bucket.backups.name
    task_logs = oci_objectstorage_bucket.task_logs.name
  }
}

output "s3_endpoint" {
  description = "S3 compatibility endpoint for MLflow's artifacts and Airflow's task logs (path-style)."
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

output "task_logs_s3_access_key" {
  description = "Access key of the Airflow task logs S3 user (create_task_logs_s3_user); copy into vault_airflow_task_logs_access_key."
  value       = var.create_task_logs_s3_user ? oci_identity_customer_secret_key.task_logs_s3[0].id : null
  sensitive   = true
}

output "task_logs_s3_secret_key" {
  description = "Secret key of the Airflow task logs S3 user (create_task_logs_s3_user); copy into vault_airflow_task_logs_secret_key."
  value       = var.create_task_logs_s3_user ? oci_identity_customer_secret_key.task_logs_s3[0].key : null
  sensitive   = true
}

output "inventory_files" {
  description = "Files written for Ansible: the oracle.oci inventory and the infra_* variables."
  value       = [local_file.inventory.filename, local_file.infra_vars.filename]
}

output "bastion_max_session_ttl_seconds" {
  description = "Longest a bastion session may last (the deploy workflow asks its sessions for this long)."
  value       = var.bastion_max_session_ttl_seconds
}
