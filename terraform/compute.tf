# Service hosts: one instance per entry of local.instances (var.instance_groups),
# each in its group's NSG, all in the private subnet without a public IP (the
# edge too: the load balancer is the public entry, loadbalancer.tf; SSH comes
# through the Bastion service, bastion.tf; egress through the NAT and service
# gateways). Bare OS only: no user_data, no cloud-init software installation
# (Ansible installs everything).

# Newest image of the chosen OS and version compatible with each shape used
# (by a group with hosts: an optional group of count 0 looks nothing up).
data "oci_core_images" "os" {
  for_each = toset([for g in values(var.instance_groups) : g.shape if g.count > 0])

  compartment_id           = var.compartment_ocid
  operating_system         = var.instance_os
  operating_system_version = var.instance_os_version
  shape                    = each.key
  state                    = "AVAILABLE"
  sort_by                  = "TIMECREATED"
  sort_order               = "DESC"
}

resource "oci_core_instance" "this" {
  for_each = local.instances

  availability_domain = local.availability_domain
  compartment_id      = var.compartment_ocid
  # A valid Ansible variable name (letters, digits, underscores): the
  # oracle.oci inventory sets a host variable named after the display name,
  # and ansible-core deprecates invalid names (removal in 2.23).
  display_name = replace("${local.name}-${each.key}", "-", "_")
  shape        = each.value.shape

  shape_config {
    ocpus         = each.value.ocpus
    memory_in_gbs = each.value.memory_gbs
  }

  source_details {
    source_type             = "image"
    source_id               = data.oci_core_images.os[each.value.shape].images[0].id
    boot_volume_size_in_gbs = each.value.boot_volume_gbs
  }

  create_vnic_details {
    subnet_id        = oci_core_subnet.private.id
    assign_public_ip = false
    nsg_ids          = [oci_core_network_security_group.service[each.value.group].id]
    # An RFC 952/1123 label: letters and digits only ("airflow_worker-1"
    # becomes airflowworker1; an underscore would be refused).
    hostname_label = replace(each.key, "/[^a-z0-9]/", "")
    display_name   = "${local.name}-${each.key}-vnic"
  }

  metadata = {
    ssh_authorized_keys = var.ssh_public_key
  }

  # IMDSv2 only.
  instance_options {
    are_legacy_imds_endpoints_disabled = true
  }

  is_pv_encryption_in_transit_enabled = true

  launch_options {
    is_pv_encryption_in_transit_enabled = true
  }

  agent_config {
    is_monitoring_disabled = false
    is_management_disabled = false
  }

  # The inventory groups hosts by the freeform tag ansible_group and filters
  # on project/environment; the dynamic groups match the defined tag.
  freeform_tags = merge(local.common_tags, { ansible_group = each.value.group })
  defined_tags  = { "${oci_identity_tag_namespace.this.name}.${oci_identity_tag.ansible_group.name}" = each.value.group }
  # ...only once the new tag has propagated (iam.tf).
  depends_on = [time_sleep.tag_propagation]

  lifecycle {
    # A newer image must not replace running hosts; rebuild them on purpose
    # (terraform apply -replace=...). Tenancies may add Oracle-Tags on create.
    ignore_changes = [
      source_details[0].source_id,
      defined_tags["Oracle-Tags.CreatedBy"],
      defined_tags["Oracle-Tags.CreatedOn"],
    ]
  }
}
