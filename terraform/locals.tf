locals {
  name = "${var.project}-${var.environment}"

  # Freeform tags on every resource; the generated inventory filters on
  # project and environment, and groups hosts by ansible_group.
  common_tags = {
    project     = var.project
    environment = var.environment
  }

  availability_domain = data.oci_identity_availability_domains.ads.availability_domains[var.availability_domain_index].name

  # What each inventory group serves: the ports its Ansible roles declare to
  # firewalld (mlflow: role mlflow; airflow: the airflow api-server; api: roles
  # model_api and dashboard). Checked against the roles by
  # tests/test_terraform.py. SSH (22) is opened on every host separately.
  service_ports = {
    mlflow  = [5000]
    airflow = [8080]
    api     = [8000, 8501]
  }

  # Who may reach the service ports: the VCN (services call each other), the
  # admin CIDR (UIs) and any extra client CIDRs.
  service_sources = distinct(concat([var.vcn_cidr, var.admin_ssh_cidr], var.service_client_cidrs))

  # One entry per instance: "mlflow-1", "airflow-1", "airflow-2", ...
  instances = merge([
    for group, spec in var.instance_groups : {
      for i in range(spec.count) : "${group}-${i + 1}" => merge(spec, { group = group, index = i + 1 })
    }
  ]...)

  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${local.name}-mlflow-artifacts")
  dags_bucket      = coalesce(var.dags_bucket_name, "${local.name}-airflow-dags")
  tag_namespace    = coalesce(var.tag_namespace_name, local.name)

  inventory_dir = coalesce(var.inventory_dir, "${path.module}/../inventory/oci")
}

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}
