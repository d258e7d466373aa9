"""Checks of one host's services through testinfra's `host` (the role suites of the api and mlflow hosts:
test_1j_model_api, test_1k_dashboard, test_1l_mlflow_server), beside sitekit's whole-platform helpers
(a host's address: sitekit.ip)."""


def copy_to(host, source):
    """Put a local file on the host under /tmp/molecule (readable by every user); return its path."""
    host.run("mkdir -p /tmp/molecule && chmod 0755 /tmp/molecule")
    host.run(f"cat > /tmp/molecule/{source.name} <<'PY'\n{source.read_text()}\nPY")
    host.run(f"chmod 0644 /tmp/molecule/{source.name}")
    return f"/tmp/molecule/{source.name}"


def assert_runs_as(host, unit, user):
    """The unit is running and enabled, and its main process runs as `user` (not root)."""
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled
    assert host.check_output(f"systemctl show -p User --value {unit}") == user
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
    assert pid != "0"
    assert host.check_output(f"ps -o user= -p {pid}") == user


def env_file(host, path, group):
    """The content of a service's environment file, after checking it is 0640 root:<group>."""
    env = host.file(path)
    assert env.mode == 0o640
    assert (env.user, env.group) == ("root", group)
    return env.content_string


def client_rules(port, *addresses):
    """The firewalld rich rules that admit each address's /32 to a port (a routed service's
    clients behind the edge: <role>_client_cidrs' default, the topology's `clients`)."""
    return {f'rule family="ipv4" source address="{a}/32" port port="{port}" protocol="tcp" accept' for a in addresses}


def port_rules(host, port):
    """The host's firewalld rich rules that mention the port."""
    return {r for r in host.check_output("firewall-cmd --list-rich-rules").splitlines() if f'port="{port}"' in r}


def unit_caps(host, unit):
    """MemoryMax= (bytes) and TasksMax= of a unit, as systemd applies them."""
    shown = host.check_output(f"systemctl show {unit} -p MemoryMax -p TasksMax")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    return props["MemoryMax"], props["TasksMax"]
