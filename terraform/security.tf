# Network security groups: one per instance group, opening only what its
# hosts serve (the topology's published ports, local.service_ports), plus SSH from the
# VCN and admin_ssh_cidr on every host, and MySQL only from the hosts that use
# it. Egress: the VCN, and HTTP(S) out.

resource "oci_core_network_security_group" "service" {
  for_each = toset(local.instance_group_names)

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-${each.key}-nsg"
  freeform_tags  = merge(local.common_tags, { ansible_group = each.key })

  lifecycle {
    precondition {
      condition     = sort(keys(var.instance_groups)) == local.instance_group_names
      error_message = "instance_groups must have exactly the topology's instance groups: ${join(", ", local.instance_group_names)} (ansible/roles/platform_defaults/defaults/main/topology.yml)."
    }
  }
}

locals {
  # One rule per (group, port, source).
  service_rules = merge([
    for group, ports in local.service_ports : {
      for pair in setproduct(ports, local.service_sources) :
      "${group}-${pair[0]}-${pair[1]}" => { group = group, port = pair[0], source = pair[1] }
    }
  ]...)

  ssh_rules = merge([
    for group in local.instance_group_names : {
      for source in distinct([var.vcn_cidr, var.admin_ssh_cidr]) :
      "${group}-22-${source}" => { group = group, source = source }
    }
  ]...)
}

resource "oci_core_network_security_group_security_rule" "service" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose: a stateless ingress rule needs a matching stateless egress rule for the replies (ephemeral ports 1024-65535 to the same sources), which opens more than this rule.
  for_each = local.service_rules

  network_security_group_id = oci_core_network_security_group.service[each.value.group].id
  direction                 = "INGRESS"
  protocol                  = "6"
  source_type               = "CIDR_BLOCK"
  source                    = each.value.source
  stateless                 = false
  description               = "${each.value.group} serves ${each.value.port}/tcp"

  tcp_options {
    destination_port_range {
      min = each.value.port
      max = each.value.port
    }
  }
}

resource "oci_core_network_security_group_security_rule" "ssh" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose: a stateless ingress rule needs a matching stateless egress rule for the replies (ephemeral ports 1024-65535 to the same sources), which opens more than this rule.
  for_each = local.ssh_rules

  network_security_group_id = oci_core_network_security_group.service[each.value.group].id
  direction                 = "INGRESS"
  protocol                  = "6"
  source_type               = "CIDR_BLOCK"
  source                    = each.value.source
  stateless                 = false
  description               = "SSH from ${each.value.source}"

  tcp_options {
    destination_port_range {
      min = 22
      max = 22
    }
  }
}

# Egress: anything inside the VCN (the DB System, the other services), and
# HTTPS/HTTP out (packages, PyPI, Object Storage, OCI APIs). DNS and NTP use
# 169.254.169.254, which security rules do not govern.
locals {
  egress_rules = merge([
    for group in local.instance_group_names : {
      "${group}-vcn"   = { group = group, destination = var.vcn_cidr, protocol = "all", port = null }
      "${group}-https" = { group = group, destination = "0.0.0.0/0", protocol = "6", port = 443 }
      "${group}-http"  = { group = group, destination = "0.0.0.0/0", protocol = "6", port = 80 }
    }
  ]...)
}

resource "oci_core_network_security_group_security_rule" "egress" {
  for_each = local.egress_rules

  network_security_group_id = oci_core_network_security_group.service[each.value.group].id
  direction                 = "EGRESS"
  protocol                  = each.value.protocol
  destination_type          = "CIDR_BLOCK"
  destination               = each.value.destination
  stateless                 = false
  description               = each.value.port == null ? "Anything in the VCN" : "Outbound ${each.value.port}/tcp"

  dynamic "tcp_options" {
    for_each = each.value.port == null ? [] : [each.value.port]
    content {
      destination_port_range {
        min = tcp_options.value
        max = tcp_options.value
      }
    }
  }
}

# The MySQL DB System: its port only from the NSGs of its client groups
# (local.db_client_groups, from the topology).
resource "oci_core_network_security_group" "db" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-db-nsg"
  freeform_tags  = local.common_tags
}

resource "oci_core_network_security_group_security_rule" "db_mysql" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose: a stateless ingress rule needs a matching stateless egress rule for the replies (ephemeral ports 1024-65535 to the same sources), which opens more than this rule.
  for_each = toset(local.db_client_groups)

  network_security_group_id = oci_core_network_security_group.db.id
  direction                 = "INGRESS"
  protocol                  = "6"
  source_type               = "NETWORK_SECURITY_GROUP"
  source                    = oci_core_network_security_group.service[each.key].id
  stateless                 = false
  description               = "MySQL from the ${each.key} hosts"

  tcp_options {
    destination_port_range {
      min = local.db_port
      max = local.db_port
    }
  }
}
