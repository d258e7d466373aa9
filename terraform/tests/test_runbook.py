"""docs/deploy-oci.md against the Terraform it documents (issue #16, point 10).

The runbook's "Where this differs from seed 000" table states what the
product does (sizes, backups, maintenance window, egress, buckets, SSH), and
"What it costs per month" states the quantities a default apply pays for.
Each value here is read from the doc's tables and compared with the one in
terraform/*.tf (parsed with python-hcl2, conftest.Config): a default changed
in Terraform without the runbook, or a runbook figure that does not follow
from the defaults, fails.
"""

from __future__ import annotations

import operator
import re

import hcl2
import yaml
from conftest import ROOT, unquote

RUNBOOK = ROOT / "docs" / "deploy-oci.md"
SEED_SECTION = "Where this differs from seed 000"
COST_SECTION = "What it costs per month"
TOPOLOGY = yaml.safe_load(
    (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml").read_text(
        encoding="utf-8"
    )
)["oci_mlops_topology"]
INSTANCE_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "instances"}
# The groups whose count may be 0 (Airflow's CeleryExecutor): no host by default.
OPTIONAL_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec.get("optional")}
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}


# --------------------------------------------------------------------------
# Reading the runbook's tables and Terraform's defaults
# --------------------------------------------------------------------------
def _section(title: str) -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    heading = f"\n## {title}\n"
    assert heading in text, f"{RUNBOOK.name} has no section {title!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _table(title: str) -> dict[str, dict[str, str]]:
    """{first cell: {column header: cell}} of the first table of a section."""
    lines = [line for line in _section(title).splitlines() if line.startswith("|")]
    header, rows = lines[0], lines[2:]
    columns = [c.strip() for c in header.strip("|").split("|")]
    table = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(columns, cells, strict=True))
    return table


def _row(title: str, first_cell: str) -> dict[str, str]:
    """The row whose first cell starts with FIRST_CELL (exactly one)."""
    matches = [row for key, row in _table(title).items() if key.startswith(first_cell)]
    assert len(matches) == 1, f"{RUNBOOK.name} ({title}): {len(matches)} rows start with {first_cell!r}"
    return matches[0]


def _find(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """re.search that fails the test, naming the text, when it no longer says it that way."""
    m = re.search(pattern, text, flags)
    assert m, f"{pattern!r} not found in: {text}"
    return m


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _default(tf, name):
    return unquote(tf.variables()[name]["default"])


def _instance_groups(tf) -> dict[str, dict]:
    """var.instance_groups' default with the optional() defaults of its type filled in,
    as Terraform fills them: {group: {count, shape, ocpus, memory_gbs, boot_volume_gbs}}."""
    var = tf.variables()["instance_groups"]
    optional = {
        attr: unquote(value) if value.startswith('"') else int(value)
        for attr, value in re.findall(r'(\w+) = optional\(\w+, ("[^"]*"|\d+)\)', var["type"])
    }
    assert set(optional) == {"shape", "boot_volume_gbs"}, optional
    return {group: {**optional, **spec} for group, spec in var["default"].items()}


def _terms(text: str) -> tuple[dict[str, int], int]:
    """'mlflow 1 + airflow 2 + ... = 5 X' -> ({mlflow: 1, airflow: 2, ...}, 5)."""
    sum_, total = text.split("=", 1)
    terms = {group: int(n) for group, n in re.findall(r"(\w+) (\d+)", sum_)}
    return terms, _number(_find(r"^\s*([\d,]+)", total).group(1))


def _hours_a_month() -> int:
    return int(_find(r"(\d+) hours a month", _section(COST_SECTION)).group(1))


def _single(tf, rtype):
    """The one resource of RTYPE, created once (no count or for_each)."""
    resources = tf.resources(rtype)
    assert len(resources) == 1, f"{rtype}: {sorted(resources)}"
    (body,) = resources.values()
    assert "count" not in body and "for_each" not in body, rtype
    return body


def _db(tf):
    return _single(tf, "oci_mysql_mysql_db_system")


def test_the_tables_are_read():
    """A parser that found nothing would let everything below pass vacuously."""
    seed, cost = _table(SEED_SECTION), _table(COST_SECTION)
    assert {"instance sizes", "DB backups", "maintenance window", "egress", "buckets", "SSH"} <= set(seed)
    assert all(set(row) == {"what", "seed 000", "here", "why"} for row in seed.values())
    assert len(cost) >= 9 and all(set(row) == {"item", "default quantity", "per month"} for row in cost.values())
    assert _hours_a_month() == 730


def test_the_default_sizes_cover_exactly_the_topologys_instance_groups(tf):
    assert set(_instance_groups(tf)) == INSTANCE_GROUPS


# --------------------------------------------------------------------------
# Where this differs from seed 000
# --------------------------------------------------------------------------
def test_seed_000_instance_sizes_are_the_instance_groups_defaults(tf):
    here = _row(SEED_SECTION, "instance sizes")["here"]
    groups = _instance_groups(tf)
    assert "`instance_groups`" in here
    doc = {
        group: (int(ocpus), int(memory))
        for group, ocpus, memory in re.findall(r"(\w+)(?: \([^)]*\))? (\d+)(?: OCPUs?)?/(\d+)", here)
    }
    assert doc == {g: (spec["ocpus"], spec["memory_gbs"]) for g, spec in groups.items()}, here
    hosts = _find(r"(\w+) hosts? each", here).group(1)
    required = {g: spec for g, spec in groups.items() if g not in OPTIONAL_GROUPS}
    assert {spec["count"] for spec in required.values()} == {WORDS.get(hosts) or int(hosts)}, here
    # The optional groups: sized, and without a host by default.
    optional = _find(r"; ([^;]+), without a host by default", here).group(1)
    assert set(re.findall(r"(\w+) \d+/\d+", optional)) == OPTIONAL_GROUPS, here
    assert {groups[g]["count"] for g in OPTIONAL_GROUPS} == {0}
    (shape,) = re.findall(r"`(VM\.[^`]+)`", here)
    assert {spec["shape"] for spec in groups.values()} == {shape}
    boot = int(_find(r"(\d+) GB boot each", here).group(1))
    assert {spec["boot_volume_gbs"] for spec in groups.values()} == {boot}


def test_seed_000_db_backups_are_the_db_systems(tf):
    here = _row(SEED_SECTION, "DB backups")["here"]
    policy = _db(tf)["backup_policy"][0]
    assert policy["is_enabled"] is True
    assert policy["window_start_time"] == "${var.db_backup_window_start}" and "`db_backup_window_start`" in here
    assert _find(r"`db_backup_window_start` \(`([^`]+)`, UTC\)", here).group(1) == _default(
        tf, "db_backup_window_start"
    )
    window = _find(r"daily (\d+)-minute window", here).group(1)
    assert f"daily {window}-minute backup window" in unquote(tf.variables()["db_backup_window_start"]["description"])
    assert policy["retention_in_days"] == "${var.db_backup_retention_days}"
    kept = _find(r"kept `db_backup_retention_days` \((\d+)\)", here).group(1)
    assert int(kept) == _default(tf, "db_backup_retention_days")
    assert "PITR on" in here and policy["pitr_policy"][0]["is_enabled"] is True
    assert "final backup on deletion" in here
    assert unquote(_db(tf)["deletion_policy"][0]["final_backup"]) == "REQUIRE_FINAL_BACKUP"


def test_seed_000_maintenance_window_is_the_db_systems_and_after_the_backups(tf):
    here = _row(SEED_SECTION, "maintenance window")["here"]
    assert _db(tf)["maintenance"][0]["window_start_time"] == "${var.db_maintenance_window_start}"
    start = _find(r"weekly from `db_maintenance_window_start` \(`([^`]+)`, UTC\)", here).group(1)
    assert start == _default(tf, "db_maintenance_window_start")
    # The "why" says: after the backup window (which lasts 30 minutes).
    assert "after the backup window" in _row(SEED_SECTION, "maintenance window")["why"]
    hh, mm = (int(x) for x in start.split()[1].split(":"))
    bh, bm = (int(x) for x in _default(tf, "db_backup_window_start")[:5].split(":"))
    assert hh * 60 + mm >= bh * 60 + bm + 30, f"maintenance {start} starts inside the backup window"


def test_seed_000_egress_is_the_private_subnets_routes_and_nsg_egress(tf):
    here = _row(SEED_SECTION, "egress")["here"]
    routes = {
        r["network_entity_id"]: r["destination_type"]
        for r in tf.resources("oci_core_route_table")[("oci_core_route_table", "private")]["route_rules"]
    }
    assert "NAT gateway" in here and routes["${oci_core_nat_gateway.this.id}"] == '"CIDR_BLOCK"'
    assert "through the service gateway" in here
    assert routes["${oci_core_service_gateway.this.id}"] == '"SERVICE_CIDR_BLOCK"'
    # "TCP 443/80 only beyond the VCN": the instance groups' NSG egress rules
    # to the internet are TCP to exactly these ports.
    doc_ports = {int(p) for p in _find(r"TCP ([\d/]+) only beyond the VCN", here).group(1).split("/")}
    egress = tf.locals()["egress_rules"]
    outside = re.findall(r'destination = "0\.0\.0\.0/0", protocol = "(\w+)", port = (\d+)', egress)
    assert {proto for proto, _ in outside} == {"6"}, egress
    assert {int(port) for _, port in outside} == doc_ports
    assert re.findall(r"destination = ([^,]+),", egress) == ["var.vcn_cidr", '"0.0.0.0/0"', '"0.0.0.0/0"']
    # ICMP type 3 code 4 from anywhere in the default security list.
    assert "ICMP type 3 code 4 admitted" in here
    (sl,) = tf.resources("oci_core_default_security_list").values()
    assert any(
        r["icmp_options"][0] == {"type": 3, "code": 4, "__is_block__": True} and unquote(r["source"]) == "0.0.0.0/0"
        for r in sl["ingress_security_rules"]
    )


def test_seed_000_bucket_names_are_the_locals(tf):
    here = _row(SEED_SECTION, "buckets")["here"]
    locals_ = tf.locals()
    # local.name is <project>-<environment>; the doc writes it that way.
    assert unquote(locals_["name"]) == "${var.project}-${var.environment}"
    doc_names = re.findall(r"`(<project>-<environment>-[a-z-]+)`", here)
    doc_vars = re.findall(r"`(\w+_bucket_name)`", here)
    terraform = {}
    for local in ("artifacts_bucket", "dags_bucket"):
        m = re.fullmatch(r'\$\{coalesce\(var\.(\w+), "\$\{local\.name\}(-[a-z-]+)"\)\}', locals_[local])
        assert m, locals_[local]
        terraform[m.group(1)] = "<project>-<environment>" + m.group(2)
    assert dict(zip(doc_vars, doc_names, strict=True)) == terraform
    assert "private, versioned" in here
    for body in tf.resources("oci_objectstorage_bucket").values():
        assert unquote(body["access_type"]) == "NoPublicAccess" and unquote(body["versioning"]) == "Enabled"


def test_seed_000_ssh_sessions_are_the_bastions(tf):
    here = _row(SEED_SECTION, "SSH")["here"]
    bastion = _single(tf, "oci_bastion_bastion")
    assert bastion["max_session_ttl_in_seconds"] == "${var.bastion_max_session_ttl_seconds}"
    hours = int(_find(r"`bastion_max_session_ttl_seconds` \((\d+) h\)", here).group(1))
    assert hours * 3600 == _default(tf, "bastion_max_session_ttl_seconds")
    assert "sessions only from `admin_ssh_cidr`" in here
    assert bastion["client_cidr_block_allow_list"] == "${concat([var.admin_ssh_cidr], var.bastion_client_cidrs)}"


def test_seed_000_public_entry_ports_are_the_load_balancers(tf):
    here = _row(SEED_SECTION, "public entry")["here"]
    https, http = (int(p) for p in _find(r"HTTPS (\d+) .*?, (\d+) redirects", here).groups())
    published = [s for s in TOPOLOGY["services"].values() if s["published"] and s["group"] in INSTANCE_GROUPS]
    assert [(s["port"], s.get("http_port")) for s in published] == [(https, http)]
    lb = _single(tf, "oci_load_balancer_load_balancer")
    assert unquote(lb["shape"]) == "flexible" and lb["is_private"] is False


# --------------------------------------------------------------------------
# What it costs per month: quantities that follow from the defaults
# --------------------------------------------------------------------------
def _assert_per_group_quantity(row: dict[str, str], groups: dict, key: str, unit: str) -> None:
    """A cost row of one term per group with hosts (count x the group's KEY), their
    total, and the total x 730 UNIT."""
    terms, total = _terms(row["default quantity"])
    assert terms == {g: spec["count"] * spec[key] for g, spec in groups.items() if spec["count"]}, row
    assert total == sum(terms.values())
    assert _number(_find(rf"^([\d,]+) {unit}$", row["per month"]).group(1)) == total * _hours_a_month()


def test_cost_ocpus_follow_from_instance_groups(tf):
    row = _row(COST_SECTION, "compute OCPUs")
    groups = _instance_groups(tf)
    (shape,) = re.findall(r"`([^`]+)`", row["item"])
    assert {spec["shape"] for spec in groups.values()} == {shape}
    _assert_per_group_quantity(row, groups, "ocpus", "OCPU-hours")


def test_cost_memory_follows_from_instance_groups(tf):
    row = _row(COST_SECTION, "compute memory")
    _assert_per_group_quantity(row, _instance_groups(tf), "memory_gbs", "GB-hours")


def test_cost_boot_volumes_follow_from_instance_groups(tf):
    row = _row(COST_SECTION, "boot volumes")
    groups = _instance_groups(tf)
    n, size = (int(x) for x in _find(r"^(\d+) × (\d+) GB$", row["default quantity"]).groups())
    assert n == sum(spec["count"] for spec in groups.values())
    assert {spec["boot_volume_gbs"] for spec in groups.values()} == {size}
    storage, vpus_months, vpus = (int(x) for x in re.findall(r"\d+", row["per month"]))
    assert storage == vpus_months == n * size and vpus == 10
    # "Balanced, 10 VPUs/GB": the default performance, so nothing may set another.
    assert "Balanced, 10 VPUs/GB" in row["item"]
    (instance,) = tf.resources("oci_core_instance").values()
    assert "boot_volume_vpus_per_gb" not in instance["source_details"][0]
    assert instance["source_details"][0]["boot_volume_size_in_gbs"] == "${each.value.boot_volume_gbs}"


def test_cost_the_db_system_is_one_standalone_db_shape(tf):
    row = _row(COST_SECTION, "MySQL DB System")
    db = _db(tf)
    assert db["shape_name"] == "${var.db_shape}"
    shape = _find(r"`db_shape` \(`([^`]+)`\)", row["default quantity"]).group(1)
    assert shape == _default(tf, "db_shape")
    assert row["default quantity"].startswith("1 × ") and "standalone" in row["default quantity"]
    assert db.get("is_highly_available", False) is False
    assert row["per month"].startswith(f"{_hours_a_month()} shape-hours")


def test_cost_db_storage_and_backups_are_the_defaults(tf):
    row = _row(COST_SECTION, "MySQL storage")
    db = _db(tf)
    assert db["data_storage_size_in_gb"] == "${var.db_data_storage_size_gbs}"
    storage = int(_find(r"`db_data_storage_size_gbs` (\d+) GB", row["default quantity"]).group(1))
    assert storage == _default(tf, "db_data_storage_size_gbs")
    days = int(_find(r"(\d+) days of backups with PITR", row["default quantity"]).group(1))
    assert days == _default(tf, "db_backup_retention_days")
    assert db["backup_policy"][0]["pitr_policy"][0]["is_enabled"] is True
    assert row["per month"].startswith(f"{storage} GB-months")


def test_cost_load_balancer_bandwidth_is_the_defaults(tf):
    row = _row(COST_SECTION, "load balancer")
    lb = _single(tf, "oci_load_balancer_load_balancer")
    assert unquote(lb["shape"]) == "flexible" and "(flexible)" in row["item"]
    assert lb["shape_details"][0] == {
        "minimum_bandwidth_in_mbps": "${var.lb_min_bandwidth_mbps}",
        "maximum_bandwidth_in_mbps": "${var.lb_max_bandwidth_mbps}",
        "__is_block__": True,
    }
    quantity = row["default quantity"]
    low = int(_find(r"`lb_min_bandwidth_mbps` (\d+)", quantity).group(1))
    high = int(_find(r"`lb_max_bandwidth_mbps` (\d+) Mbps", quantity).group(1))
    assert (low, high) == (_default(tf, "lb_min_bandwidth_mbps"), _default(tf, "lb_max_bandwidth_mbps"))
    assert quantity.startswith("1 ") and "1 public IP" in quantity and lb["is_private"] is False
    hours = _hours_a_month()
    per_month = row["per month"]
    assert per_month.startswith(f"{hours} LB-hours")
    mbps, h, mbps_hours = _find(r"(\d+) Mbps × (\d+) h = ([\d,]+) Mbps-hours", per_month).groups()
    assert (int(mbps), int(h), _number(mbps_hours)) == (low, hours, low * hours)
    assert f"up to {high} Mbps" in per_month


def test_cost_one_bastion_and_one_gateway_each(tf):
    bastion = _row(COST_SECTION, "bastion")["default quantity"]
    _single(tf, "oci_bastion_bastion")
    hours = int(_find(r"^1, sessions of at most (\d+) h when someone deploys$", bastion).group(1))
    assert hours * 3600 == _default(tf, "bastion_max_session_ttl_seconds")
    gateways = _row(COST_SECTION, "NAT, service and internet gateways")
    assert gateways["default quantity"] == "1 each"
    for rtype in ("oci_core_nat_gateway", "oci_core_service_gateway", "oci_core_internet_gateway"):
        _single(tf, rtype)


def test_cost_the_edge_host_counted_is_its_default(tf):
    """The paragraph after the cost table: the edge stays behind the load balancer."""
    section = _section(COST_SECTION)
    m = _find(r"The `edge` host \((\d+) OCPU, (\d+) GB, one (\d+) GB boot volume\)", section)
    spec = _instance_groups(tf)["edge"]
    assert tuple(int(x) for x in m.groups()) == (spec["ocpus"], spec["memory_gbs"], spec["boot_volume_gbs"])
    assert spec["count"] == 1


def test_cost_the_optional_groups_cost_nothing_by_default(tf):
    """The paragraph after the cost table: the optional groups (count 0 by
    default) and what each of their hosts adds (their default sizes)."""
    section = _section(COST_SECTION)
    m = _find(
        r"The optional groups \((.*?)\) have no host by default"
        r".*?\(`instance_groups`: ([^)]*)\) and a (\d+) GB boot volume",
        section,
        re.S,
    )
    assert set(re.findall(r"`(\w+)`", m.group(1))) == OPTIONAL_GROUPS
    groups = _instance_groups(tf)
    sizes = {g: (int(o), int(gb)) for g, o, gb in re.findall(r"(\w+) (\d+)/(\d+)", m.group(2))}
    assert sizes == {g: (groups[g]["ocpus"], groups[g]["memory_gbs"]) for g in OPTIONAL_GROUPS}
    assert {groups[g]["count"] for g in OPTIONAL_GROUPS} == {0}
    assert {groups[g]["boot_volume_gbs"] for g in OPTIONAL_GROUPS} == {int(m.group(3))}


# --------------------------------------------------------------------------
# The Terraform version: versions.tf, the state backend the runbook and CI
# configure, and the versions CI runs
# --------------------------------------------------------------------------
# The first Terraform release of each state backend the runbook or CI
# configures. oci: hashicorp/terraform CHANGELOG, 1.12.0 (May 14, 2025),
# "Added Terraform backend implementation for OCI Object Storage".
BACKEND_SINCE = {"oci": (1, 12, 0)}
CI_SETUP = ROOT / "scripts" / "ci-oci-setup"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "=": operator.eq}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def _constraint(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """'>= 1.5.0, < 2.0.0' -> [('>=', (1, 5, 0)), ('<', (2, 0, 0))] (only these simple forms)."""
    parts = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(>=|<=|>|<|=)\s*(\d+\.\d+\.\d+)\s*", part)
        assert m, f"version constraint {text!r}: {part!r} is not an operator and a full version"
        parts.append((m.group(1), _version(m.group(2))))
    return parts


def _bound(text: str, op: str) -> tuple[int, ...]:
    (bound,) = [version for o, version in _constraint(text) if o == op]
    return bound


def _satisfies(version: str, constraint: str) -> bool:
    return all(OPERATORS[op](_version(version), bound) for op, bound in _constraint(constraint))


def _required_version(tf) -> str:
    (block,) = tf.terraform()
    return unquote(block["required_version"])


def _backend_files() -> dict[str, dict]:
    """The terraform blocks of the backend override files: the runbook's (step 3)
    and the one scripts/ci-oci-setup writes for the workflows, parsed."""
    (runbook,) = re.findall(r"```hcl\n(.*?)```", _section("3. Terraform state"), re.S)
    ci = _find(r"<<BACKEND\n(.*?)^BACKEND$", CI_SETUP.read_text(encoding="utf-8"), re.S | re.M).group(1)
    return {name: hcl2.loads(code)["terraform"][0] for name, code in (("runbook", runbook), ("ci", ci))}


def _controller_terraform() -> str:
    """The runbook's bullet on the controller's Terraform (step 2)."""
    section = _section("2. Tenancy prerequisites and the Terraform principal's IAM policy")
    (bullet,) = [b for b in section.split("\n- ") if b.startswith("Terraform ")]
    return re.sub(r"\s+", " ", bullet)


def _ci_terraform_versions() -> dict[str, tuple[set[str], bool]]:
    """{workflow: ({terraform_version of its setup-terraform steps}, whether it runs scripts/ci-oci-setup)}."""
    found = {}
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        for job_name, job in workflow["jobs"].items():
            steps = job.get("steps", [])
            versions = {
                str(step["with"]["terraform_version"])
                for step in steps
                if str(step.get("uses", "")).startswith("hashicorp/setup-terraform@")
            }
            if versions:
                oci_backend = any("scripts/ci-oci-setup" in str(step.get("run", "")) for step in steps)
                found[f"{path.name}:{job_name}"] = (versions, oci_backend)
    return found


def test_the_runbook_states_versions_tfs_required_version(tf):
    bullet = _controller_terraform()
    stated = _find(r"\(`required_version` in `terraform/versions\.tf`\) accepts `([^`]+)`", bullet)
    assert stated.group(1) == _required_version(tf)


def test_each_backend_file_requires_the_terraform_of_its_backend(tf):
    """An override's required_version replaces versions.tf's: it must carry the
    backend's minimum and keep versions.tf's upper bound."""
    code = _required_version(tf)
    files = _backend_files()
    for name, block in files.items():
        (backend,) = (unquote(b) for entry in block["backend"] for b in entry)
        assert "required_version" in block, f"{name}'s backend file: {backend} needs a required_version"
        required = unquote(block["required_version"])
        assert _bound(required, ">=") == BACKEND_SINCE[backend], f"{name}: {required}"
        assert _bound(required, ">=") >= _bound(code, ">="), f"{name}: {required} accepts less than {code}"
        assert _bound(required, "<") == _bound(code, "<"), f"{name}: {required} vs versions.tf {code}"
    assert unquote(files["runbook"]["required_version"]) == unquote(files["ci"]["required_version"])
    # The runbook says so in words too.
    stated = _find(r"^Terraform `([^`]+)` with the native `oci` state backend", _controller_terraform())
    assert stated.group(1) == unquote(files["runbook"]["required_version"])


def test_every_version_the_runbook_gives_for_the_oci_backend_is_its_first_release():
    text = re.sub(r"\s+", " ", RUNBOOK.read_text(encoding="utf-8"))
    since = ".".join(str(x) for x in BACKEND_SINCE["oci"])
    mentions = re.findall(r"Terraform (?:older than )?(\d+\.\d+(?:\.\d+)?)(?: or later|\b)", text)
    assert mentions, "the runbook names no Terraform version"
    assert set(mentions) == {since}, mentions


def test_ci_runs_a_terraform_that_the_configuration_and_its_backend_accept(tf):
    code = _required_version(tf)
    backend = unquote(_backend_files()["ci"]["required_version"])
    jobs = _ci_terraform_versions()
    assert any(oci for _, oci in jobs.values()), "no workflow job runs scripts/ci-oci-setup"
    for job, (versions, oci_backend) in jobs.items():
        for version in versions:
            assert _satisfies(version, code), f"{job}: Terraform {version} outside versions.tf's {code}"
            if oci_backend:
                assert _satisfies(version, backend), f"{job}: Terraform {version} has no oci backend ({backend})"
    ci_uses = _find(r"CI uses (\d+\.\d+\.\d+)", _controller_terraform()).group(1)
    assert {v for versions, _ in jobs.values() for v in versions} == {ci_uses}
