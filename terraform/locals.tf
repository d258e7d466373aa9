locals {
  name = "${var.project}-${var.environment}"

  # Freeform tags on every resource; the generated inventory filters on
  # project and environment, and groups hosts by ansible_group.
  common_tags = {
    project     = var.project
    environment = var.environment
  }

  availability_domain = data.oci_identity_availability_domains.ads.availability_domains[var.availability_domain_index].name

  # The platform's topology (groups, services, ports), shared with Ansible:
  # one file, read by both (see its header).
  topology = yamldecode(file("${path.module}/../ansible/roles/platform_defaults/defaults/main/topology.yml")).oci_mlops_topology

  # The groups Terraform creates instances for (the others are OCI managed
  # services); var.instance_groups must have exactly these keys.
  instance_group_names = sort([for group, spec in local.topology.groups : group if spec.oci == "instances"])

  # What each instance group serves to users: the published services' ports
  # (SSH (22) is opened on every host separately).
  service_ports = {
    for group in local.instance_group_names : group => sort([
      for name, svc in local.topology.services : svc.port if svc.group == group && svc.published
    ])
  }

  # The managed MySQL DB System: its port, and the groups that call it.
  db_service       = local.topology.services.mysql
  db_port          = local.db_service.port
  db_client_groups = local.db_service.clients

  # The host-firewall variables of the published services on the instances,
  # by the topology's naming rule (<role>_client_cidrs).
  service_client_cidr_vars = sort([
    for name, svc in local.topology.services : format(local.topology.client_cidrs_variable, svc.role)
    if svc.published && contains(local.instance_group_names, svc.group)
  ])

  # Who may reach the service ports: the VCN (services call each other), the
  # admin CIDR (UIs) and any extra client CIDRs.
  service_sources = distinct(concat([var.vcn_cidr, var.admin_ssh_cidr], var.service_client_cidrs))

  # One entry per instance: "mlflow-1", "airflow-1", "airflow-2", ... for the
  # topology's instance groups, sized by var.instance_groups.
  instances = merge([
    for group in local.instance_group_names : {
      for i in range(var.instance_groups[group].count) :
      "${group}-${i + 1}" => merge(var.instance_groups[group], { group = group, index = i + 1 })
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
