# SSH to the instances: only through the OCI Bastion service. No instance has
# a public IP and no NSG admits SSH from outside the VCN; the bastion's
# private endpoint sits in the private subnet and is the one SSH source the
# instances' NSGs admit (security.tf, local.ssh_rules). Clients connect to
# the bastion's public SSH endpoint (host.bastion.<region>.oci.oraclecloud.com)
# from admin_ssh_cidr (and bastion_client_cidrs) only, with a time-limited session (at most
# bastion_max_session_ttl_seconds) created through the OCI API/CLI with the
# operator's SSH public key.
#
# Ansible: a dynamic port forwarding (SOCKS5) session lets one session reach
# every host; the generated inventory (inventory.tf) jumps through it with an
# ssh ProxyCommand that names the session OCID from OCI_BASTION_SESSION_ID.

resource "oci_bastion_bastion" "this" {
  bastion_type     = "STANDARD"
  compartment_id   = var.compartment_ocid
  target_subnet_id = oci_core_subnet.private.id
  # Letters and digits only.
  name                         = "${replace(local.name, "-", "")}bastion"
  client_cidr_block_allow_list = concat([var.admin_ssh_cidr], var.bastion_client_cidrs)
  max_session_ttl_in_seconds   = var.bastion_max_session_ttl_seconds
  # Needed for dynamic port forwarding (SOCKS5) sessions.
  dns_proxy_status = "ENABLED"
  freeform_tags    = local.common_tags
}

locals {
  # The bastion's private endpoint, the only SSH source of the instances.
  bastion_source = "${oci_bastion_bastion.this.private_endpoint_ip_address}/32"

  # The bastion's public SSH endpoint (sessions are users of it).
  bastion_host = "host.bastion.${var.region}.oci.oraclecloud.com"
}
