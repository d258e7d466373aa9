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

  # The groups users reach from outside: those serving a published service
  # (the front door, the edge). Their instances alone sit in the public subnet
  # with a public IP; every other instance group is in the private subnet.
  public_groups = sort(distinct([
    for name, svc in local.topology.services : svc.group
    if svc.published && contains(local.instance_group_names, svc.group)
  ]))

  # What each instance group serves to users: the published services' ports
  # and their http_port (SSH (22) is opened on every host separately).
  published_ports = {
    for group in local.instance_group_names : group => sort(distinct(flatten([
      for name, svc in local.topology.services : [
        for port in [svc.port, try(svc.http_port, null)] : port if port != null
      ] if svc.group == group && svc.published
    ])))
  }

  # The managed MySQL DB System: the topology's service of its group.
  db_service = local.topology.services.mysql
  db_port    = local.db_service.port

  # The groups that have an NSG (security.tf): the instance groups, and the
  # managed DB System's group. Private services of other managed groups
  # (Object Storage) are reached through the service gateway and IAM instead.
  nsg_groups = concat(local.instance_group_names, [local.db_service.group])

  # The private services behind an NSG: each one's port, admitted only from
  # the NSGs of its client groups (the topology's clients).
  private_services = {
    for name, svc in local.topology.services : name => svc
    if !svc.published && contains(local.nsg_groups, svc.group)
  }

  # Who may reach the published ports: the VCN, the admin CIDR and any extra
  # client CIDRs.
  service_sources = distinct(concat([var.vcn_cidr, var.admin_ssh_cidr], var.service_client_cidrs))

  # The subnet CIDR of each instance group's hosts.
  group_subnet_cidrs = {
    for group in local.instance_group_names : group => contains(local.public_groups, group) ? var.public_subnet_cidr : var.private_subnet_cidr
  }

  # The host-firewall variables of the services on the instances, by the
  # topology's naming rule (<role>_client_cidrs), and what they admit: the
  # NSGs' sources for a published service; for a private one, the subnets
  # of its client groups (their NSGs are the NSG rule's sources).
  service_client_cidr_vars = [
    for name, svc in local.topology.services : {
      name  = format(local.topology.client_cidrs_variable, svc.role)
      cidrs = svc.published ? local.service_sources : sort(distinct([for client in try(svc.clients, []) : local.group_subnet_cidrs[client]]))
    } if contains(local.instance_group_names, svc.group)
  ]

  # One entry per instance: "mlflow-1", "airflow-1", "airflow-2", ... for the
  # topology's instance groups, sized by var.instance_groups; public: in the
  # public subnet with a public IP (a public group's host).
  instances = merge([
    for group in local.instance_group_names : {
      for i in range(var.instance_groups[group].count) :
      "${group}-${i + 1}" => merge(var.instance_groups[group], {
        group  = group
        index  = i + 1
        public = contains(local.public_groups, group)
      })
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
