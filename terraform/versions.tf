# Terraform and provider versions. The OCI provider is configured from the
# usual sources (~/.oci/config profile, or the TF_VAR_/OCI_ environment
# variables in CI); no credential is ever written in these files.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 6.0.0, < 8.0.0"
    }
    local = {
      source  = "hashicorp/local"
      version = ">= 2.4.0, < 3.0.0"
    }
    # time_sleep: the wait for the defined tag to propagate (iam.tf).
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9.0, < 1.0.0"
    }
  }
}

provider "oci" {
  region              = var.region
  config_file_profile = var.oci_config_profile
}

# IAM resources (tag namespace, dynamic groups, policies, users) are written
# in the tenancy's home region (OCI refuses IAM writes elsewhere): the region
# the tenancy's subscriptions mark is_home_region, read with the default
# provider (any region answers). var.home_region, when set, must be that
# region (precondition on the tag namespace, iam.tf).
data "oci_identity_region_subscriptions" "home" {
  tenancy_id = var.tenancy_ocid

  filter {
    name   = "is_home_region"
    values = ["true"]
  }
}

locals {
  subscribed_home_region = one(data.oci_identity_region_subscriptions.home.region_subscriptions[*].region_name)
  home_region            = coalesce(var.home_region, local.subscribed_home_region)
}

provider "oci" {
  alias               = "home"
  region              = local.home_region
  config_file_profile = var.oci_config_profile
}
