# Network security groups: one per instance group, and the DB System's. The
# ingress rules, all in one resource (ingress), follow the topology:
# - a published service's ports (the edge's port and http_port) from the VCN,
#   admin_ssh_cidr and service_client_cidrs (local.published_ports);
# - a private service's port only from the NSGs of its client groups
#   (local.private_services; the DB System's MySQL the same way);
# - SSH (22) on every instance from the VCN and admin_ssh_cidr.
# Egress: the VCN, and HTTP(S) out (through NAT from the private subnet).

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
    precondition {
      condition     = alltrue(flatten([for name, svc in local.private_services : [for client in try(svc.clients, []) : contains(local.instance_group_names, client)]]))
      error_message = "Every client group of a private service must be an instance group (its NSG is the rule's source): see the services' clients in the topology."
    }
  }
}

# The MySQL DB System's NSG (its rules: the private-service rules below).
resource "oci_core_network_security_group" "db" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-db-nsg"
  freeform_tags  = local.common_tags
}

locals {
  # The NSG of each group in local.nsg_groups.
  group_nsg_ids = merge(
    { for group in local.instance_group_names : group => oci_core_network_security_group.service[group].id },
    { (local.db_service.group) = oci_core_network_security_group.db.id },
  )

  # One rule per (group, published port, CIDR source).
  published_rules = merge([
    for group, ports in local.published_ports : {
      for pair in setproduct(ports, local.service_sources) :
      "${group}-${pair[0]}-${pair[1]}" => {
        group       = group
        port        = pair[0]
        source_type = "CIDR_BLOCK"
        source      = pair[1]
        description = "${group} serves ${pair[0]}/tcp to ${pair[1]}"
      }
    }
  ]...)

  # One rule per (private service, client group): the client's NSG as source.
  client_rules = merge([
    for name, svc in local.private_services : {
      for client in try(svc.clients, []) :
      "${svc.group}-${svc.port}-${client}" => {
        group       = svc.group
        port        = svc.port
        source_type = "NETWORK_SECURITY_GROUP"
        source      = local.group_nsg_ids[client]
        description = "${name} (${svc.port}/tcp) from the ${client} hosts"
      }
    }
  ]...)

  ssh_rules = merge([
    for group in local.instance_group_names : {
      for source in distinct([var.vcn_cidr, var.admin_ssh_cidr]) :
      "${group}-22-${source}" => {
        group       = group
        port        = 22
        source_type = "CIDR_BLOCK"
        source      = source
        description = "SSH from ${source}"
      }
    }
  ]...)

  ingress_rules = merge(local.published_rules, local.client_rules, local.ssh_rules)
}

resource "oci_core_network_security_group_security_rule" "ingress" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose: a stateless ingress rule needs a matching stateless egress rule for the replies (ephemeral ports 1024-65535 to the same sources), which opens more than this rule.
  for_each = local.ingress_rules

  network_security_group_id = local.group_nsg_ids[each.value.group]
  direction                 = "INGRESS"
  protocol                  = "6"
  source_type               = each.value.source_type
  source                    = each.value.source
  stateless                 = false
  description               = each.value.description

  tcp_options {
    destination_port_range {
      min = each.value.port
      max = each.value.port
    }
  }
}

# Egress: anything inside the VCN (the DB System, the other services), and
# HTTPS/HTTP out (packages, PyPI, Object Storage, OCI APIs: through the NAT
# and service gateways from the private subnet). DNS and NTP use
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
