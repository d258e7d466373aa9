# The inventory Ansible uses on OCI (git-ignored, rewritten by every apply):
#   inventory/oci/<inventory_name>.oci.yml   the oracle.oci.oci plugin's config:
#       the project's instances, grouped by their ansible_group freeform tag
#       (group names are exactly the playbooks' groups)
#   inventory/oci/group_vars/all/infra.yml   the infra_* variables the
#       playbooks read (DB endpoint, buckets, namespace, region...), the
#       host firewalls' client CIDRs, the edge's server names, and how SSH
#       reaches the hosts: through the OCI Bastion (inventory_ssh_jump)
# Secrets are never written here: see docs/deploy-oci.md (Ansible Vault).

resource "local_file" "inventory" {
  filename        = "${local.inventory_dir}/${var.inventory_name}.oci.yml"
  file_permission = "0644"
  content = templatefile("${path.module}/templates/inventory.oci.yml.tftpl", {
    auth_type        = var.inventory_auth_type
    config_profile   = var.oci_config_profile
    regions          = [var.region]
    compartment_ocid = var.compartment_ocid
    project          = var.project
    environment      = var.environment
  })
}

locals {
  # What users type: public_hostnames, or else the load balancer's public IP.
  front_door_names = length(var.public_hostnames) > 0 ? var.public_hostnames : local.lb_public_ips

  # SSH to the hosts' private IPs through the OCI Bastion: a ProxyCommand (not
  # ProxyJump, whose jump connection ignores the options Ansible passes on the
  # command line) to the bastion's SSH endpoint as the session (its OCID is
  # the user name), a dynamic port forwarding (SOCKS5) session valid for every
  # host, accepting the bastion's key on first use, with the user's ssh
  # defaults (agent, ~/.ssh/config) for the session's key. The session OCID
  # is read at run time (sessions expire): infra_bastion_session_id.
  ssh_common_args = var.inventory_ssh_jump ? format(
    "-o ProxyCommand=\"ssh -W %%h:%%p -p 22 -o BatchMode=yes -o StrictHostKeyChecking=accept-new {{ infra_bastion_session_id }}@%s\"",
    local.bastion_host,
  ) : ""
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
    backups_bucket   = oci_objectstorage_bucket.backups.name
    task_logs_bucket = oci_objectstorage_bucket.task_logs.name
    db_endpoint      = local.db_endpoint
    db_admin_user    = var.db_admin_username
    vcn_cidr         = var.vcn_cidr
    ssh_sources      = concat([local.bastion_source], var.ssh_runner_cidrs)
    # The roles' client-CIDR variables, [{name, cidrs}] (topology).
    service_firewall_vars = local.service_client_cidr_vars
    front_door_names      = local.front_door_names
    lb_subnet_cidrs       = [var.public_subnet_cidr]
    ssh_jump              = var.inventory_ssh_jump
    ssh_common_args       = local.ssh_common_args
    ansible_user          = var.ansible_user
    bastion_id            = oci_bastion_bastion.this.id
    bastion_host          = local.bastion_host
  })
}
