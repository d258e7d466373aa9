# The platform's only public entry on OCI: a flexible OCI Load Balancer in the
# public subnet, in front of the hosts of the topology's published services
# (local.lb_services: today the edge), which stay in the private subnet.
#
# Same shape as the lab: there the edge host is the front door in front of the
# private backends; here the load balancer is the public front, and it
# forwards to the edge hosts, which keep routing exactly as in the lab.
# Why the edge stays behind the load balancer instead of the load balancer
# routing to MLflow/Airflow/the API/the dashboard itself: the OCI Load
# Balancer routes by path and host name but cannot
# - rewrite the path: the edge strips /mlflow/ and /api/ before proxying
#   (strip_prefix; MLflow and the API serve at their root);
# - limit request rates: the edge throttles the sign-in/token paths per client
#   (limit_req, 429; the LB only caps connections per IP);
# - cap request bodies per route (client_max_body_size, 413), set
#   X-Forwarded-Prefix per route, or answer 404 for unknown paths and 302 on /;
# so routing to the services directly would change the published URLs or drop
# those protections. The edge role's routes, limits and headers therefore stay
# the one implementation, on both lab and OCI.
#
# TLS: the listener terminates it with a certificate of the OCI Certificates
# service (var.lb_certificate_id: no private key ever enters this
# configuration or its state), and re-encrypts to the edge's HTTPS port.
# The HTTP port only redirects to HTTPS, as the edge's own HTTP server does.

resource "oci_load_balancer_load_balancer" "this" {
  compartment_id             = var.compartment_ocid
  display_name               = "${local.name}-lb"
  shape                      = "flexible"
  subnet_ids                 = [oci_core_subnet.public.id]
  is_private                 = false
  network_security_group_ids = [oci_core_network_security_group.lb.id]
  freeform_tags              = local.common_tags

  shape_details {
    minimum_bandwidth_in_mbps = var.lb_min_bandwidth_mbps
    maximum_bandwidth_in_mbps = var.lb_max_bandwidth_mbps
  }

  lifecycle {
    precondition {
      condition     = var.lb_min_bandwidth_mbps <= var.lb_max_bandwidth_mbps
      error_message = "lb_min_bandwidth_mbps must not exceed lb_max_bandwidth_mbps."
    }
    precondition {
      condition     = length(local.lb_services) > 0
      error_message = "The topology has no published service on instances (ansible/roles/platform_defaults/defaults/main/topology.yml): the load balancer would have nothing to serve."
    }
    precondition {
      condition     = length(local.lb_ports) == length(flatten([for name, svc in local.lb_services : [for port in [svc.port, try(svc.http_port, null)] : port if port != null]]))
      error_message = "Two published services share a port (port/http_port in the topology): each becomes a listener of the load balancer, whose ports must be distinct."
    }
  }
}

# One backend set per published service: every instance of its group, on the
# service's port, over TLS (a published service terminates TLS itself: the
# edge serves HTTPS on its port). Health check: the service's health_path over
# HTTP(S) when the topology gives one, else a TCP connect to its port, which
# is what the edge role itself waits for after (re)starting nginx.
resource "oci_load_balancer_backend_set" "service" {
  for_each = local.lb_services

  load_balancer_id = oci_load_balancer_load_balancer.this.id
  name             = each.key
  policy           = "LEAST_CONNECTIONS"

  health_checker {
    protocol          = try(each.value.health_path, null) == null ? "TCP" : "HTTP"
    port              = each.value.port
    url_path          = try(each.value.health_path, null)
    return_code       = try(each.value.health_path, null) == null ? null : 200
    interval_ms       = 10000
    timeout_in_millis = 3000
    retries           = 3
  }

  # Re-encryption to the backend. Its certificate is not verified (the edge's
  # is issued for the public names, not the hosts' private addresses); the
  # hop is inside the VCN, between NSGs that admit nothing else.
  ssl_configuration {
    verify_peer_certificate = false
    protocols               = var.lb_tls_protocols
    cipher_suite_name       = var.lb_cipher_suite_name
  }
}

# Backends: every instance of each published service's group (count-based:
# var.instance_groups[<group>].count hosts).
locals {
  lb_backends = merge([
    for name, svc in local.lb_services : {
      for key, inst in local.instances :
      "${name}-${key}" => { service = name, instance = key } if inst.group == svc.group
    }
  ]...)
}

resource "oci_load_balancer_backend" "service" {
  for_each = local.lb_backends

  load_balancer_id = oci_load_balancer_load_balancer.this.id
  backendset_name  = oci_load_balancer_backend_set.service[each.value.service].name
  ip_address       = oci_core_instance.this[each.value.instance].private_ip
  port             = local.lb_services[each.value.service].port
}

# HTTPS: TLS terminated with the Certificates service certificate; the whole
# path goes to the service's backend set (the edge routes by path).
resource "oci_load_balancer_listener" "https" {
  for_each = local.lb_services

  load_balancer_id         = oci_load_balancer_load_balancer.this.id
  name                     = "${each.key}_https"
  default_backend_set_name = oci_load_balancer_backend_set.service[each.key].name
  port                     = each.value.port
  protocol                 = "HTTP"

  ssl_configuration {
    certificate_ids         = [var.lb_certificate_id]
    protocols               = var.lb_tls_protocols
    cipher_suite_name       = var.lb_cipher_suite_name
    server_order_preference = "ENABLED"
    verify_peer_certificate = false
  }

  # As long as the edge keeps an idle upstream (edge_websocket_read_timeout:
  # the dashboard's websocket).
  connection_configuration {
    idle_timeout_in_seconds = var.lb_idle_timeout_seconds
  }
}

# HTTP: every request answered with a permanent redirect to the same host and
# path on the service's HTTPS port (the edge's port-80 server does the same).
locals {
  lb_redirects = { for name, svc in local.lb_services : name => svc if try(svc.http_port, null) != null }
}

resource "oci_load_balancer_rule_set" "https_redirect" {
  for_each = local.lb_redirects

  load_balancer_id = oci_load_balancer_load_balancer.this.id
  name             = "${each.key}_https_redirect"

  items {
    action        = "REDIRECT"
    description   = "HTTP to HTTPS, same host, path and query"
    response_code = 301

    conditions {
      attribute_name  = "PATH"
      attribute_value = "/"
      operator        = "FORCE_LONGEST_PREFIX_MATCH"
    }

    redirect_uri {
      protocol = "HTTPS"
      host     = "{host}"
      port     = each.value.port
      path     = "{path}"
      query    = "{query}"
    }
  }
}

resource "oci_load_balancer_listener" "http" {
  for_each = local.lb_redirects

  load_balancer_id         = oci_load_balancer_load_balancer.this.id
  name                     = "${each.key}_http"
  default_backend_set_name = oci_load_balancer_backend_set.service[each.key].name
  port                     = each.value.http_port
  protocol                 = "HTTP"
  rule_set_names           = [oci_load_balancer_rule_set.https_redirect[each.key].name]
}

locals {
  # The load balancer's public address.
  lb_public_ips = [for ip in oci_load_balancer_load_balancer.this.ip_address_details : ip.ip_address if ip.is_public]
}
