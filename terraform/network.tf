# VCN: a public subnet for the public entry points alone (the load balancer,
# loadbalancer.tf; the bastion's sessions arrive through the Bastion service),
# a private one for every instance and the MySQL DB System (no public IPs;
# outbound through the NAT gateway, Oracle services through the service
# gateway). Access is granted by network security groups, one per instance
# group, the DB's and the load balancer's (security.tf); the VCN's default
# security list carries only the ICMP that path MTU discovery needs.

resource "oci_core_vcn" "this" {
  compartment_id = var.compartment_ocid
  cidr_blocks    = [var.vcn_cidr]
  display_name   = "${local.name}-vcn"
  dns_label      = substr(replace(var.project, "-", ""), 0, 15)
  freeform_tags  = local.common_tags
}

resource "oci_core_internet_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-igw"
  enabled        = true
  freeform_tags  = local.common_tags
}

resource "oci_core_nat_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-nat"
  freeform_tags  = local.common_tags
}

# "All <region> Services in Oracle Services Network".
data "oci_core_services" "all" {
  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

resource "oci_core_service_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-sgw"
  freeform_tags  = local.common_tags

  services {
    service_id = data.oci_core_services.all.services[0].id
  }
}

# Public subnet (the load balancer): default route to the internet gateway.
resource "oci_core_route_table" "public" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-public-rt"
  freeform_tags  = local.common_tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.this.id
    description       = "Internet"
  }
}

# Private subnet (every instance, the DB System, the bastion's endpoint):
# internet through NAT (outbound only: packages, PyPI), Oracle services
# (Object Storage, the OCI APIs, the MySQL backups) through the service
# gateway. No instance has a public IP, so this is their only way out.
resource "oci_core_route_table" "private" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-private-rt"
  freeform_tags  = local.common_tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_nat_gateway.this.id
    description       = "Internet, outbound only"
  }

  route_rules {
    destination       = data.oci_core_services.all.services[0].cidr_block
    destination_type  = "SERVICE_CIDR_BLOCK"
    network_entity_id = oci_core_service_gateway.this.id
    description       = "Oracle Services Network"
  }
}

# Locked down but for ICMP errors: security lists and NSGs add up, so every
# service opening is an NSG rule (security.tf). Both subnets use this list:
# - ICMP type 3 code 4 ("fragmentation needed") from anywhere: path MTU
#   discovery. Without it a host behind the NAT gateway or the load balancer
#   whose path has a smaller MTU never learns it and large replies hang
#   (OCI's own default security list has this rule for that reason);
# - ICMP type 3 (destination unreachable) from inside the VCN.
# No TCP/UDP rule: no port is open through this list.
resource "oci_core_default_security_list" "this" {
  manage_default_resource_id = oci_core_vcn.this.default_security_list_id
  display_name               = "${local.name}-default-sl"
  freeform_tags              = local.common_tags

  ingress_security_rules {
    protocol    = local.icmp
    source      = "0.0.0.0/0"
    source_type = "CIDR_BLOCK"
    stateless   = false
    description = "Path MTU discovery: ICMP fragmentation needed"

    icmp_options {
      type = 3
      code = 4
    }
  }

  ingress_security_rules {
    protocol    = local.icmp
    source      = var.vcn_cidr
    source_type = "CIDR_BLOCK"
    stateless   = false
    description = "ICMP destination unreachable from inside the VCN"

    icmp_options {
      type = 3
    }
  }
}

resource "oci_core_subnet" "public" {
  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.public_subnet_cidr
  display_name               = "${local.name}-public"
  dns_label                  = "pub"
  route_table_id             = oci_core_route_table.public.id
  security_list_ids          = [oci_core_vcn.this.default_security_list_id]
  prohibit_public_ip_on_vnic = false
  freeform_tags              = local.common_tags
}

resource "oci_core_subnet" "private" {
  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.private_subnet_cidr
  display_name               = "${local.name}-private"
  dns_label                  = "priv"
  route_table_id             = oci_core_route_table.private.id
  security_list_ids          = [oci_core_vcn.this.default_security_list_id]
  prohibit_public_ip_on_vnic = true
  freeform_tags              = local.common_tags
}
