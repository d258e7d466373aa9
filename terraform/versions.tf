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
  }
}

provider "oci" {
  region              = var.region
  config_file_profile = var.oci_config_profile
}

# IAM resources (tag namespace, dynamic groups, policies, users) live in the
# tenancy's home region.
provider "oci" {
  alias               = "home"
  region              = coalesce(var.home_region, var.region)
  config_file_profile = var.oci_config_profile
}
