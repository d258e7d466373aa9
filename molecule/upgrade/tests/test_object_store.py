"""rclone serve s3: an authenticated, path-style S3 API over the bucket directories."""

import ipaddress
import os
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

# The scenario's objectstore host (the db host as site.yml converges it: groups db and objectstore).
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(
    "objectstore"
)

BUCKETS = ("mlflow-artifacts", "airflow-dags")
LAB_CIDR = os.environ["LAB_NETWORK_CIDR"]  # the scenario's network (its molecule.yml)


def _secret(name):
    return (Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".secrets" / name).read_text().split()[0]


@pytest.fixture(scope="module")
def endpoint(host):
    address = next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)
    return f"http://{address}:9000"


def _curl(host, endpoint, path, *args, key=None):
    auth = f"--aws-sigv4 aws:amz:lab-1:s3 --user {key}" if key else ""
    return host.run(f"curl -sS -o /dev/stdout -w '\\n%{{http_code}}' {auth} {' '.join(args)} {endpoint}{path}")


def _status(result):
    return result.stdout.strip().splitlines()[-1]


def test_service_hardened_and_running(host):
    assert host.service("object-store").is_running
    assert host.service("object-store").is_enabled
    assert host.user("object-store").shell == "/usr/sbin/nologin"
    env = host.file("/etc/object-store/object-store.env")
    assert env.mode == 0o640
    assert env.group == "object-store"
    score = host.check_output("systemd-analyze security object-store.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
    caps = host.check_output("systemctl show object-store -p MemoryMax -p TasksMax").splitlines()
    assert sorted(caps) == sorted([f"MemoryMax={1024**3}", "TasksMax=256"])


@pytest.mark.parametrize("bucket", BUCKETS)
def test_put_get_list_with_the_key(host, endpoint, bucket):
    key = f"{_secret('s3_access_key')}:{_secret('s3_secret_key')}"
    put = _curl(host, endpoint, f"/{bucket}/probe/hello.txt", "-X PUT --data-binary hello-world", key=key)
    assert _status(put) == "200", put.stdout
    assert host.file(f"/var/lib/object-store/{bucket}/probe/hello.txt").content_string == "hello-world"
    get = _curl(host, endpoint, f"/{bucket}/probe/hello.txt", key=key)
    assert get.stdout.strip().splitlines() == ["hello-world", "200"]
    listing = _curl(host, endpoint, f"/{bucket}?list-type=2", key=key)
    assert "probe/hello.txt" in listing.stdout
    delete = _curl(host, endpoint, f"/{bucket}/probe/hello.txt", "-X DELETE", key=key)
    assert _status(delete) in ("200", "204")
    assert not host.file(f"/var/lib/object-store/{bucket}/probe/hello.txt").exists


@pytest.mark.parametrize("key", [None, "WRONG:wrong-secret"], ids=["anonymous", "wrong-key"])
def test_anonymous_and_wrong_key_refused(host, endpoint, key):
    result = _curl(host, endpoint, "/mlflow-artifacts?list-type=2", key=key)
    assert _status(result) in ("400", "403"), result.stdout
    assert "<Code>" in result.stdout and "ListBucketResult" not in result.stdout, result.stdout


def test_port_open_to_the_lab_network_only(host):
    rules = host.check_output("firewall-cmd --list-rich-rules").splitlines()
    assert f'rule family="ipv4" source address="{LAB_CIDR}" port port="9000" protocol="tcp" accept' in rules


# --- the read-only endpoint (issue #15 point 3) ---------------------------------
@pytest.fixture(scope="module")
def readonly(endpoint):
    return endpoint.rsplit(":", 1)[0] + ":9001"


def test_readonly_endpoint_serves_the_dag_bucket_and_refuses_writes(host, readonly):
    assert host.service("object-store-readonly").is_running
    assert host.service("object-store-readonly").is_enabled
    env = host.file("/etc/object-store/object-store-readonly.env")
    assert (env.mode, env.group) == (0o640, "object-store")
    score = host.check_output("systemd-analyze security object-store-readonly.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
    host.check_output(
        "install -o object-store -g object-store -m 0640 /dev/null /var/lib/object-store/airflow-dags/ro-probe.py"
        " && echo 'x = 1' > /var/lib/object-store/airflow-dags/ro-probe.py"
    )
    reader = f"{_secret('s3_dags_reader_access_key')}:{_secret('s3_dags_reader_secret_key')}"
    try:
        listing = _curl(host, readonly, "/airflow-dags?list-type=2", key=reader)
        assert _status(listing) == "200" and "ro-probe.py" in listing.stdout, listing.stdout
        fetched = _curl(host, readonly, "/airflow-dags/ro-probe.py", key=reader).stdout.splitlines()
        assert [line for line in fetched if line] == ["x = 1", "200"], fetched
        put = _curl(host, readonly, "/airflow-dags/new.py", "-X PUT --data-binary y=2", key=reader)
        delete = _curl(host, readonly, "/airflow-dags/ro-probe.py", "-X DELETE", key=reader)
        assert _status(put) not in ("200", "204") and _status(delete) not in ("200", "204"), (put.stdout, delete.stdout)
        assert not host.file("/var/lib/object-store/airflow-dags/new.py").exists
        assert host.file("/var/lib/object-store/airflow-dags/ro-probe.py").exists
        # the DAG bucket alone: not the artifacts
        other = _curl(host, readonly, "/mlflow-artifacts?list-type=2", key=reader)
        assert "ListBucketResult" not in other.stdout, other.stdout
        # the read-write key is no key there, and the reader's none at the read-write endpoint
        writer = f"{_secret('s3_access_key')}:{_secret('s3_secret_key')}"
        assert _status(_curl(host, readonly, "/airflow-dags?list-type=2", key=writer)) in ("400", "403")
    finally:
        host.check_output("rm -f /var/lib/object-store/airflow-dags/ro-probe.py")


def test_the_reader_key_is_refused_at_the_read_write_endpoint(host, endpoint):
    reader = f"{_secret('s3_dags_reader_access_key')}:{_secret('s3_dags_reader_secret_key')}"
    put = _curl(host, endpoint, "/airflow-dags/new.py", "-X PUT --data-binary y=2", key=reader)
    assert _status(put) in ("400", "403"), put.stdout


def test_readonly_port_open_to_the_lab_network_only(host):
    rules = host.check_output("firewall-cmd --list-rich-rules").splitlines()
    assert f'rule family="ipv4" source address="{LAB_CIDR}" port port="9001" protocol="tcp" accept' in rules
