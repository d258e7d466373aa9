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

  # The instance groups the topology marks optional (Airflow's Celery broker
  # and workers): their count may be 0, the group then has no host (its NSG
  # is still created, empty: the rules naming it stay valid and admit no
  # one). Every other group has 1 to 10 hosts (precondition, security.tf).
  optional_groups = sort([for group in local.instance_group_names : group if try(local.topology.groups[group].optional, false)])

  # Hosts per instance group (0 for a group missing from var.instance_groups,
  # which a precondition refuses by name).
  group_counts = { for group in local.instance_group_names : group => try(var.instance_groups[group].count, 0) }

  # What an optional group's hosts call must have hosts: for each optional
  # group with hosts, the services on instances whose clients (topology)
  # include it and whose group has none, e.g. Celery workers without the
  # broker they take their tasks from. Empty, or the precondition fails.
  unserved_optional_groups = flatten([
    for group in local.optional_groups : [
      for name, svc in local.topology.services :
      "${group} has ${local.group_counts[group]} host(s) and calls ${name} (its clients in the topology), whose group ${svc.group} has count 0"
      if contains(try(svc.clients, []), group) && contains(local.instance_group_names, svc.group) && try(local.group_counts[svc.group] == 0, false)
    ] if local.group_counts[group] > 0
  ])

  # The published services on instances (today the edge alone): what users
  # reach from outside, through the load balancer only (loadbalancer.tf). Each
  # gets a backend set over every instance of its group, an HTTPS listener on
  # its port and, with an http_port, an HTTP listener redirecting to HTTPS.
  lb_services = {
    for name, svc in local.topology.services : name => svc
    if svc.published && contains(local.instance_group_names, svc.group)
  }

  # The groups behind the load balancer (the front door's hosts).
  front_door_groups = sort(distinct([for name, svc in local.lb_services : svc.group]))

  # The instance groups that may have several instances: every service of
  # the group has scale_out in the topology (the edge balances over them).
  # Some need other groups' hosts first: local.unmet_scale_out_requirements.
  scale_out_groups = sort([
    for group in local.instance_group_names : group
    if alltrue([for name, svc in local.topology.services : try(svc.scale_out, false) if svc.group == group])
  ])

  # For each instance group with a count above 1, each of its services and
  # the groups its scale_out_requires (topology) lists that have no host. A
  # managed group (an OCI service, no instances) is always there; a name that
  # is no group of the topology never is.
  scale_out_requirements = flatten([
    for group in local.instance_group_names : [
      for name, svc in local.topology.services : {
        group   = group
        service = name
        missing = [for required in try(svc.scale_out_requires, []) : required if try(local.topology.groups[required].oci, null) != "managed" && try(local.group_counts[required], 0) < 1]
      } if svc.group == group
    ] if local.group_counts[group] > 1
  ])

  # What several hosts of a group need and lack, e.g. several airflow hosts
  # (HA schedulers and api-servers) without Celery workers (airflow_worker).
  # Empty, or the precondition fails (security.tf).
  unmet_scale_out_requirements = [
    for req in local.scale_out_requirements :
    "${req.group} has count ${local.group_counts[req.group]}, but its service ${req.service} runs on several hosts only with hosts in ${join(", ", req.missing)} (its scale_out_requires in the topology), and there are none: count 0 for ${join(", ", req.missing)}"
    if length(req.missing) > 0
  ]

  # The groups whose hosts call a routed service (the topology's clients of a
  # service with a route), the front door's own excepted: the edge's peers'
  # listener admits them (security.tf).
  peer_groups = sort(setsubtract(
    distinct(flatten([for name, svc in local.topology.services : try(svc.clients, []) if try(svc.route, null) != null])),
    local.front_door_groups
  ))

  # The ports the load balancer listens on: each published service's port and
  # http_port (SSH never: it goes through the Bastion service).
  lb_ports = sort(distinct(flatten([
    for name, svc in local.lb_services : [
      for port in [svc.port, try(svc.http_port, null)] : port if port != null
    ]
  ])))

  # Protocol number of ICMP in security rules.
  icmp = "1"

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

  # Who may reach the load balancer's listeners: the VCN, the admin CIDR and
  # any extra client CIDRs (["0.0.0.0/0"] for a platform on the internet).
  service_sources = distinct(concat([var.vcn_cidr, var.admin_ssh_cidr], var.service_client_cidrs))

  # The subnet CIDR of each instance group's hosts: all in the private one.
  group_subnet_cidrs = {
    for group in local.instance_group_names : group => var.private_subnet_cidr
  }

  # The host-firewall variables of the services on the instances, by the
  # topology's naming rule (<role>_client_cidrs), and what they admit: the
  # load balancer's subnet for a published service (its NSG admits only the
  # load balancer's NSG); for a private one, the subnets of its client groups
  # (their NSGs are the NSG rule's sources).
  service_client_cidr_vars = [
    for name, svc in local.topology.services : {
      name  = format(local.topology.client_cidrs_variable, svc.role)
      cidrs = svc.published ? [var.public_subnet_cidr] : sort(distinct([for client in try(svc.clients, []) : local.group_subnet_cidrs[client]]))
    } if contains(local.instance_group_names, svc.group)
  ]

  # One entry per instance: "mlflow-1", "airflow-1", "airflow-2", ... for the
  # topology's instance groups, sized by var.instance_groups (none for a
  # group of count 0).
  instances = merge([
    for group in local.instance_group_names : {
      for i in range(local.group_counts[group]) :
      "${group}-${i + 1}" => merge(var.instance_groups[group], {
        group = group
        index = i + 1
      })
    }
  ]...)

  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${local.name}-mlflow-artifacts")
  dags_bucket      = coalesce(var.dags_bucket_name, "${local.name}-airflow-dags")
  backups_bucket   = coalesce(var.backups_bucket_name, "${local.name}-backups")
  task_logs_bucket = coalesce(var.task_logs_bucket_name, "${local.name}-task-logs")
  tag_namespace    = coalesce(var.tag_namespace_name, local.name)

  inventory_dir = coalesce(var.inventory_dir, "${path.module}/../inventory/oci")
}

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}
