# ---------------------------------------------------------------------------
# Where
# ---------------------------------------------------------------------------
variable "tenancy_ocid" {
  description = "OCID of the tenancy (dynamic groups and the optional S3 user are created at its root)."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.tenancy\\.", var.tenancy_ocid))
    error_message = "tenancy_ocid must be a tenancy OCID (ocid1.tenancy....)."
  }
}

variable "compartment_ocid" {
  description = "OCID of the compartment that receives every resource of the platform."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.(compartment|tenancy)\\.", var.compartment_ocid))
    error_message = "compartment_ocid must be a compartment OCID (ocid1.compartment....)."
  }
}

variable "region" {
  description = "OCI region identifier, e.g. eu-frankfurt-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]+$", var.region))
    error_message = "region must be an OCI region identifier such as eu-frankfurt-1."
  }
}

variable "home_region" {
  description = "The tenancy's home region, where IAM resources (tag namespace, dynamic groups, policies, the S3 user) are created; null: read from the tenancy's region subscriptions (is_home_region). When set it must be that region (checked at plan)."
  type        = string
  default     = null

  validation {
    condition     = var.home_region == null || can(regex("^[a-z]+-[a-z]+-[0-9]+$", var.home_region))
    error_message = "home_region must be null or an OCI region identifier such as eu-frankfurt-1."
  }
}

variable "oci_config_profile" {
  description = "Profile of ~/.oci/config used by the provider and written into the generated inventory (auth_type api_key)."
  type        = string
  default     = "DEFAULT"
}

variable "availability_domain_index" {
  description = "Index (0-based) of the availability domain for the instances and the DB System."
  type        = number
  default     = 0

  validation {
    condition     = var.availability_domain_index >= 0 && var.availability_domain_index <= 2
    error_message = "availability_domain_index must be 0, 1 or 2."
  }
}

# ---------------------------------------------------------------------------
# Naming and tags
# ---------------------------------------------------------------------------
variable "project" {
  description = "Project name: prefix of every display name, value of the freeform tag `project` (the inventory filters on it)."
  type        = string
  default     = "oci-mlops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 characters: lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (freeform tag `environment`; the inventory filters on it)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "tag_namespace_name" {
  description = "Name of the defined-tag namespace created for the dynamic groups (unique in the tenancy); null: <project>-<environment>."
  type        = string
  default     = null
}

variable "tag_propagation_wait" {
  description = "How long to wait after creating the defined tag before creating the resources that set it (OCI rejects a tag that has not propagated yet), as a duration such as 90s or 2m."
  type        = string
  default     = "90s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.tag_propagation_wait))
    error_message = "tag_propagation_wait must be a duration in seconds or minutes, e.g. 90s or 2m."
  }
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------
variable "vcn_cidr" {
  description = "CIDR of the VCN."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vcn_cidr, 0))
    error_message = "vcn_cidr must be an IPv4 CIDR."
  }
}

variable "public_subnet_cidr" {
  description = "CIDR of the public subnet (the load balancer, the only public entry), inside vcn_cidr."
  type        = string
  default     = "10.0.1.0/24"

  validation {
    condition     = can(cidrhost(var.public_subnet_cidr, 0))
    error_message = "public_subnet_cidr must be an IPv4 CIDR."
  }
}

variable "private_subnet_cidr" {
  description = "CIDR of the private subnet (every instance, the MySQL DB System, the bastion's endpoint), inside vcn_cidr."
  type        = string
  default     = "10.0.2.0/24"

  validation {
    condition     = can(cidrhost(var.private_subnet_cidr, 0))
    error_message = "private_subnet_cidr must be an IPv4 CIDR."
  }
}

variable "admin_ssh_cidr" {
  description = "The only CIDR allowed to connect to the bastion's sessions (its client allow-list; SSH to the hosts goes through the OCI Bastion service only), also admitted to the load balancer's listeners: your office or VPN. Never 0.0.0.0/0."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_ssh_cidr, 0)) && !endswith(var.admin_ssh_cidr, "/0")
    error_message = "admin_ssh_cidr must be an IPv4 CIDR narrower than /0 (0.0.0.0/0 is refused)."
  }
}

variable "service_client_cidrs" {
  description = "Extra CIDRs allowed to reach the load balancer's listeners (the topology's published services: the edge's HTTPS and HTTP ports), e.g. your users' networks; [\"0.0.0.0/0\"] for a platform on the internet. The VCN and admin_ssh_cidr always are."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.service_client_cidrs : can(cidrhost(c, 0))])
    error_message = "service_client_cidrs must be a list of IPv4 CIDRs."
  }
}

variable "public_hostnames" {
  description = "DNS names users reach the front door by (records you create for the load balancer's public IP): the names of the load balancer's certificate and the edge's server names (edge_server_names in the inventory), the first one canonical. Empty: the load balancer's public IP."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for n in var.public_hostnames : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", n))])
    error_message = "public_hostnames must be lower-case DNS names (e.g. mlops.example.com)."
  }
}

# ---------------------------------------------------------------------------
# Load balancer (the public entry) and bastion (SSH)
# ---------------------------------------------------------------------------
variable "lb_certificate_id" {
  description = "OCID of the OCI Certificates service certificate the load balancer's HTTPS listener presents (imported or issued there, naming public_hostnames). The private key stays in the Certificates service: nothing secret is in this configuration or its state."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.certificate\\.", var.lb_certificate_id))
    error_message = "lb_certificate_id must be a certificate OCID of the OCI Certificates service (ocid1.certificate....)."
  }
}

variable "lb_min_bandwidth_mbps" {
  description = "Minimum (pre-provisioned) bandwidth of the flexible load balancer, in Mbps (10 is the smallest, and free-tier eligible)."
  type        = number
  default     = 10

  validation {
    condition     = var.lb_min_bandwidth_mbps >= 10 && var.lb_min_bandwidth_mbps <= 8000
    error_message = "lb_min_bandwidth_mbps must be between 10 and 8000."
  }
}

variable "lb_max_bandwidth_mbps" {
  description = "Maximum bandwidth of the flexible load balancer, in Mbps (at least lb_min_bandwidth_mbps)."
  type        = number
  default     = 100

  validation {
    condition     = var.lb_max_bandwidth_mbps >= 10 && var.lb_max_bandwidth_mbps <= 8000
    error_message = "lb_max_bandwidth_mbps must be between 10 and 8000."
  }
}

variable "lb_tls_protocols" {
  description = "TLS versions of the load balancer's HTTPS listener and of its connections to the backends (the edge's own: TLSv1.2 and TLSv1.3). They must match lb_cipher_suite_name's ciphers."
  type        = list(string)
  default     = ["TLSv1.2"]

  validation {
    condition     = length(var.lb_tls_protocols) > 0 && alltrue([for p in var.lb_tls_protocols : contains(["TLSv1.2", "TLSv1.3"], p)])
    error_message = "lb_tls_protocols must list TLSv1.2 and/or TLSv1.3 (older versions are refused)."
  }
}

variable "lb_cipher_suite_name" {
  description = "Predefined or existing cipher suite of the load balancer (listener and backend TLS). The default, ECDHE with AES-GCM for TLS 1.2, matches the edge's edge_tls_ciphers; with TLSv1.3 in lb_tls_protocols pick a suite that has TLS 1.3 ciphers."
  type        = string
  default     = "oci-modern-ssl-cipher-suite-v1"
}

variable "lb_idle_timeout_seconds" {
  description = "Idle timeout of the load balancer's HTTPS connections, in seconds: as long as the edge keeps an idle websocket (edge_websocket_read_timeout, 3600 s, the dashboard); the OCI default (60 s) would cut idle dashboard sessions."
  type        = number
  default     = 3600

  validation {
    condition     = var.lb_idle_timeout_seconds >= 1 && var.lb_idle_timeout_seconds <= 7200
    error_message = "lb_idle_timeout_seconds must be between 1 and 7200."
  }
}

variable "bastion_max_session_ttl_seconds" {
  description = "Longest a bastion session may last, in seconds (the OCI Bastion service allows 1800 to 10800): a site.yml run must finish within one session."
  type        = number
  default     = 10800

  validation {
    condition     = var.bastion_max_session_ttl_seconds >= 1800 && var.bastion_max_session_ttl_seconds <= 10800
    error_message = "bastion_max_session_ttl_seconds must be between 1800 and 10800."
  }
}

variable "bastion_client_cidrs" {
  description = "More CIDRs allowed to connect to the bastion's sessions besides admin_ssh_cidr, e.g. a CI runner's fixed egress address (/32). GitHub-hosted runners have no fixed address: use a self-hosted runner (ssh_runner_cidrs) or a runner with a static IP. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.bastion_client_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "bastion_client_cidrs must be IPv4 CIDRs narrower than /0 (0.0.0.0/0 is refused)."
  }
}

variable "ssh_runner_cidrs" {
  description = "CIDRs inside the VCN (e.g. a self-hosted CI runner in the private subnet, /32) admitted to SSH on every host directly, in the NSGs and the hosts' firewalls, besides the bastion. Empty (default): SSH only through the bastion."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_runner_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "ssh_runner_cidrs must be IPv4 CIDRs narrower than /0."
  }
}

# ---------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------
variable "ssh_public_key" {
  description = "SSH public key installed for the image's default user (opc on Oracle Linux)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp(256|384|521)) ", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key (ssh-ed25519 ..., ssh-rsa ..., ecdsa-sha2-...)."
  }
}

variable "instance_os" {
  description = "Operating system of the instance image (oci_core_images operating_system)."
  type        = string
  default     = "Oracle Linux"
}

variable "instance_os_version" {
  description = "Version of the instance image's operating system (oci_core_images operating_system_version)."
  type        = string
  default     = "9"
}

variable "instance_groups" {
  description = <<-EOT
    Compute instances per inventory group: count, flex shape, OCPUs, memory
    and boot volume size. The keys must be exactly the topology's instance
    groups (oci: instances in ansible/roles/platform_defaults/defaults/main/topology.yml;
    checked by a precondition on the NSGs); its managed groups (db,
    objectstore) are OCI services, not instances. The edge (the front door
    behind the load balancer) needs little: nginx. Counts are 1 to 10, and
    0 only for the groups the topology marks optional: broker and
    airflow_worker, Airflow's CeleryExecutor (0 by default: the airflow
    hosts run the tasks, LocalExecutor). Workers need the broker (count 1:
    one Redis). A count above 1 only for groups whose services all have
    scale_out in the topology (mlflow, api, edge, airflow_worker, airflow),
    and only once the groups their scale_out_requires lists have hosts:
    several airflow hosts (HA schedulers and api-servers) need airflow_worker
    1 or more. Preconditions refuse the rest, naming them (docs/scaling.md).
  EOT
  type = map(object({
    count           = number
    shape           = optional(string, "VM.Standard.E4.Flex")
    ocpus           = number
    memory_gbs      = number
    boot_volume_gbs = optional(number, 50)
  }))
  default = {
    mlflow         = { count = 1, ocpus = 1, memory_gbs = 8 }
    airflow        = { count = 1, ocpus = 2, memory_gbs = 16 }
    api            = { count = 1, ocpus = 1, memory_gbs = 8 }
    edge           = { count = 1, ocpus = 1, memory_gbs = 4 }
    broker         = { count = 0, ocpus = 1, memory_gbs = 4 }
    airflow_worker = { count = 0, ocpus = 2, memory_gbs = 16 }
  }

  # 0 only for the topology's optional groups: a precondition (security.tf),
  # since a validation cannot read the topology (a local) before Terraform 1.9.
  validation {
    condition     = alltrue([for g in values(var.instance_groups) : g.count >= 0 && g.count <= 10 && floor(g.count) == g.count])
    error_message = "instance_groups: each group's count must be a whole number from 0 to 10 (0 only for the groups the topology marks optional)."
  }

  validation {
    condition     = alltrue([for g in values(var.instance_groups) : endswith(g.shape, ".Flex") && g.ocpus >= 1 && g.memory_gbs >= g.ocpus && g.memory_gbs <= 64 * g.ocpus])
    error_message = "Shapes must be flex shapes, with at least 1 OCPU and 1 to 64 GB of memory per OCPU."
  }

  validation {
    condition     = alltrue([for g in values(var.instance_groups) : g.boot_volume_gbs >= 50])
    error_message = "boot_volume_gbs must be at least 50."
  }
}

# ---------------------------------------------------------------------------
# MySQL DB System
# ---------------------------------------------------------------------------
variable "db_shape" {
  description = "Shape of the MySQL DB System."
  type        = string
  default     = "MySQL.2"
}

variable "db_data_storage_size_gbs" {
  description = "Initial data storage of the MySQL DB System, in GB."
  type        = number
  default     = 50

  validation {
    condition     = var.db_data_storage_size_gbs >= 50
    error_message = "db_data_storage_size_gbs must be at least 50."
  }
}

variable "db_admin_username" {
  description = "Administrator of the MySQL DB System (infra_db_admin_user in the inventory)."
  type        = string
  default     = "mlopsadmin"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.db_admin_username)) && !contains(["root", "administrator", "ociadmin", "ocirpl"], lower(var.db_admin_username))
    error_message = "db_admin_username must be 1-32 letters, digits or underscores, start with a letter, and not be a reserved name (root, administrator, ociadmin, ocirpl)."
  }
}

variable "db_admin_password" {
  description = "Password of the DB System administrator (8-32 characters with upper case, lower case, a digit and a special character). Put the same value in vault_db_admin_password."
  type        = string
  sensitive   = true

  validation {
    condition = (
      length(var.db_admin_password) >= 8 && length(var.db_admin_password) <= 32 &&
      can(regex("[A-Z]", var.db_admin_password)) && can(regex("[a-z]", var.db_admin_password)) &&
      can(regex("[0-9]", var.db_admin_password)) && can(regex("[^A-Za-z0-9]", var.db_admin_password))
    )
    error_message = "db_admin_password must be 8-32 characters with an upper-case letter, a lower-case letter, a digit and a special character."
  }
}

variable "db_backup_retention_days" {
  description = "Days automatic backups of the DB System are kept."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_backup_window_start" {
  description = "Start of the DB System's daily 30-minute backup window, in the provider's format HH:MM-00:00 (UTC; what the API returns, so the plan stays without a diff)."
  type        = string
  default     = "02:00-00:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-00:00$", var.db_backup_window_start))
    error_message = "db_backup_window_start must be HH:MM-00:00 (UTC), e.g. 02:00-00:00."
  }
}

variable "db_endpoint_override" {
  description = "Private IP of the MySQL DB System the platform uses instead of the one this configuration manages: a DB System restored from a backup or to a point in time (a new system, in the same private subnet and db NSG; docs/operations.md). null: the managed one."
  type        = string
  default     = null

  validation {
    condition     = var.db_endpoint_override == null || can(cidrhost("${coalesce(var.db_endpoint_override, "0.0.0.0")}/32", 0))
    error_message = "db_endpoint_override must be null or an IPv4 address."
  }
}

variable "db_maintenance_window_start" {
  description = "Start of the DB System's weekly maintenance window (UTC), as the provider writes it: \"<ddd> HH:MM\" with a lower-case day, e.g. \"sun 03:00\". Keep it away from the backup window."
  type        = string
  default     = "sun 03:00"

  validation {
    condition     = can(regex("^(mon|tue|wed|thu|fri|sat|sun) ([01][0-9]|2[0-3]):[0-5][0-9]$", var.db_maintenance_window_start))
    error_message = "db_maintenance_window_start must be \"<ddd> HH:MM\" with ddd one of mon tue wed thu fri sat sun, e.g. \"sun 03:00\"."
  }
}

variable "mysql_version" {
  description = "MySQL server version of the DB System, pinned (e.g. 8.4.6; `oci mysql version list --compartment-id <ocid>` lists what the region offers). Changing it later is an upgrade of the DB System; Airflow supports MySQL 8.0, 8.4 and the 9.x innovation releases."
  type        = string

  validation {
    condition     = can(regex("^(8\\.(0|4)|9\\.[0-9]+)\\.[0-9]+(-u[0-9]+)?$", var.mysql_version))
    error_message = "mysql_version must be a full MySQL version such as 8.4.6 or 9.5.1 (8.0.x, 8.4.x or 9.x.y)."
  }
}

variable "db_deletion_protection" {
  description = "Protect the DB System against deletion (set false before terraform destroy)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Object Storage
# ---------------------------------------------------------------------------
variable "artifacts_bucket_name" {
  description = "Bucket of the MLflow artifacts; null: <project>-<environment>-mlflow-artifacts."
  type        = string
  default     = null
}

variable "dags_bucket_name" {
  description = "Bucket of the Airflow DAGs; null: <project>-<environment>-airflow-dags."
  type        = string
  default     = null
}

variable "backups_bucket_name" {
  description = "Bucket of the backup role's MySQL dumps; null: <project>-<environment>-backups."
  type        = string
  default     = null
}

variable "backups_retention_days" {
  description = "Days the backups bucket keeps an object (lifecycle rule; the backup role's own retention, backup_keep_days, should be shorter)."
  type        = number
  default     = 35

  validation {
    condition     = var.backups_retention_days >= 1
    error_message = "backups_retention_days must be at least 1."
  }
}

variable "task_logs_bucket_name" {
  description = "Bucket of Airflow's remote task logs (S3 task log handler, read and written with the task logs S3 user's key); null: <project>-<environment>-task-logs."
  type        = string
  default     = null
}

variable "task_logs_retention_days" {
  description = "Days the task logs bucket keeps a task's log (lifecycle rule)."
  type        = number
  default     = 30

  validation {
    condition     = var.task_logs_retention_days >= 1
    error_message = "task_logs_retention_days must be at least 1."
  }
}

variable "previous_versions_retention_days" {
  description = "Days a previous (overwritten or deleted) object version is kept in the artifacts, backups and task logs buckets (lifecycle rules)."
  type        = number
  default     = 30

  validation {
    condition     = var.previous_versions_retention_days >= 1
    error_message = "previous_versions_retention_days must be at least 1."
  }
}

variable "kms_key_id" {
  description = "OCID of a Vault (KMS) key to encrypt the buckets with; null: Oracle-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_id == null || can(regex("^ocid1\\.key\\.", var.kms_key_id))
    error_message = "kms_key_id must be null or a key OCID (ocid1.key....)."
  }
}

# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------
variable "dags_publisher_group" {
  description = "Name of an existing IAM group (e.g. the CI user's) allowed to write the DAG bucket's objects: ansible/playbooks/publish-dags.yml publishes from the controller with its OCI API key. null: no grant. The airflow instances only ever read the bucket."
  type        = string
  default     = null

  validation {
    condition     = var.dags_publisher_group == null || can(regex("^[A-Za-z0-9_.@-]+$", var.dags_publisher_group))
    error_message = "dags_publisher_group must be null or an IAM group name (letters, digits, . _ - @)."
  }
}

variable "create_mlflow_s3_user" {
  description = "Create an IAM user limited to the artifacts bucket and a customer secret key for MLflow's S3-compatible access (the secret lands in the Terraform state). Needs mlflow_s3_user_email."
  type        = bool
  default     = false
}

variable "mlflow_s3_user_email" {
  description = "Primary email of the MLflow S3 user (create_mlflow_s3_user): identity-domain tenancies refuse a user without one. A mailbox the operators read (OCI may send it notices)."
  type        = string
  default     = null

  validation {
    condition     = var.mlflow_s3_user_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.mlflow_s3_user_email))
    error_message = "mlflow_s3_user_email must be null or an email address (name@example.com)."
  }
}

variable "create_task_logs_s3_user" {
  description = "Create an IAM user limited to the task logs bucket and a customer secret key for Airflow's remote task logs (S3 task log handler; the S3 compatibility API takes no instance principal; the secret lands in the Terraform state). Needed when the inventory has airflow_worker hosts. Needs task_logs_s3_user_email."
  type        = bool
  default     = false
}

variable "task_logs_s3_user_email" {
  description = "Primary email of the task logs S3 user (create_task_logs_s3_user): identity-domain tenancies refuse a user without one. A mailbox the operators read (OCI may send it notices)."
  type        = string
  default     = null

  validation {
    condition     = var.task_logs_s3_user_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.task_logs_s3_user_email))
    error_message = "task_logs_s3_user_email must be null or an email address (name@example.com)."
  }
}

# ---------------------------------------------------------------------------
# Generated inventory
# ---------------------------------------------------------------------------
variable "inventory_dir" {
  description = "Directory the inventory is written to; null: inventory/oci of this repository."
  type        = string
  default     = null
}

variable "inventory_name" {
  description = "Base name of the inventory file: <inventory_dir>/<inventory_name>.oci.yml."
  type        = string
  default     = "oci-mlops"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.inventory_name))
    error_message = "inventory_name must be letters, digits, dashes or underscores (the file name gets .oci.yml)."
  }
}

variable "inventory_ssh_jump" {
  description = "How Ansible reaches the hosts, which the inventory names by their private IPs: true (default) through the OCI Bastion: an ssh ProxyCommand over the dynamic port forwarding (SOCKS5) session whose OCID is in OCI_BASTION_SESSION_ID (written to inventory/oci/group_vars/all/infra.yml; the controller must be in admin_ssh_cidr); false: nothing is written, you configure SSH through the bastion yourself (e.g. ~/.ssh/config). The hosts accept SSH from the bastion only."
  type        = bool
  default     = true
}

variable "inventory_auth_type" {
  description = "auth_type of the oracle.oci inventory plugin: api_key (~/.oci/config, profile oci_config_profile) or instance_principal (a controller inside OCI)."
  type        = string
  default     = "api_key"

  validation {
    condition     = contains(["api_key", "instance_principal", "security_token"], var.inventory_auth_type)
    error_message = "inventory_auth_type must be api_key, instance_principal or security_token."
  }
}

variable "ansible_user" {
  description = "SSH user Ansible logs in as (opc on Oracle Linux images)."
  type        = string
  default     = "opc"
}
