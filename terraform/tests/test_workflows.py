"""The GitHub workflows that drive terraform/ and the deploy (issue #16, points 3-6).

Read with PyYAML; what GitHub would do is inferred from the YAML, not run.
The shape they must have:

- infra.yml: a plan job saves the plan and uploads it; an apply job in the
  protected `production` environment needs that job, downloads the artifact
  and applies exactly that file; destroy lifts the DB's deletion protection
  and empties the versioned buckets before anything is destroyed.
- OCI credentials are environment secrets: referenced only by jobs that name
  an environment, never at workflow level.
- infra.yml's state-changing jobs and deploy.yml share one concurrency group,
  never cancelled in progress; every terraform command that can take the
  state lock waits for it (-lock-timeout).
- deploy.yml checks out the infra run's SHA (or a SHA input), never applies
  (no -target), reads the state with `terraform output -json`.
- Terraform always gets home_region; every action is pinned by a commit SHA;
  nothing is piped from the network into a shell.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PRODUCTION = "production"
SHARED_GROUP = "oci-mlops-production"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def all_workflows() -> dict[str, dict]:
    return {p.name: load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def triggers(wf: dict) -> dict:
    """The `on:` mapping (PyYAML reads an unquoted `on` as True)."""
    on = wf.get("on", wf.get(True))
    assert isinstance(on, dict), "the workflow's on: must be a mapping"
    return on


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def run_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


# A terraform invocation in command position (line start, after ; & | ( ! then do; not inside
# an echoed text), optionally with -chdir=..., its subcommand and arguments.
TF_CMD = re.compile(
    r"(?:^|[;&|(!]|\bthen\b|\bdo\b)[ \t]*terraform(?:[ \t]+-chdir=\S+)?[ \t]+([a-z-]+)((?:[^\n\\]|\\\n)*)", re.M
)


def terraform_commands(text: str) -> list[tuple[str, str]]:
    """(subcommand, arguments) of every terraform command in shell text (line continuations joined)."""
    return [(m.group(1), m.group(2)) for m in TF_CMD.finditer(text)]


def job_environment(job: dict) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return env


def jobs_running(wf: dict, subcommand: str, must: str = "") -> dict[str, dict]:
    return {
        name: job
        for name, job in wf["jobs"].items()
        if any(sub == subcommand and must in args for sub, args in terraform_commands(run_text(job)))
    }


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def step_index(job: dict, predicate) -> int:
    for i, s in enumerate(steps(job)):
        if predicate(s):
            return i
    return -1


# ---------------------------------------------------------------------------
# Point 6: plan -> artifact -> gated apply of that artifact
# ---------------------------------------------------------------------------
def apply_jobs() -> dict[str, dict]:
    """infra.yml's jobs that run `terraform apply` on a saved plan file (no -target, no -destroy)."""
    wf = load("infra.yml")
    return {n: j for n, j in jobs_running(wf, "apply").items() if "-destroy" not in run_text(j)}


def test_apply_job_applies_the_uploaded_plan_artifact():
    wf = load("infra.yml")
    jobs = apply_jobs()
    assert jobs, "infra.yml: no job runs terraform apply"
    for name, job in jobs.items():
        applies = [args for sub, args in terraform_commands(run_text(job)) if sub == "apply"]
        plan_files = {m for args in applies for m in re.findall(r"(\S+\.tfplan)\b", args)}
        assert plan_files and all(re.search(r"\S+\.tfplan", a) for a in applies), (
            f"infra.yml job {name}: terraform apply must apply the saved plan file (terraform apply … plan.tfplan), "
            f"got {applies}"
        )
        assert not any("-auto-approve" in a and ".tfplan" not in a for a in applies)
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        planners = [
            n
            for n in needs
            if any(sub == "plan" and "-out=" in args for sub, args in terraform_commands(run_text(wf["jobs"][n])))
        ]
        assert planners, (
            f"infra.yml job {name}: must need the job that saves the plan (terraform plan -out=…), needs {needs}"
        )
        uploaded = {
            str(s["with"]["name"])
            for n in planners
            for s in uses(wf["jobs"][n], "actions/upload-artifact")
            if any(f in str(s["with"].get("path", "")) for f in {Path(p).name for p in plan_files})
        }
        assert uploaded, f"infra.yml: the plan job does not upload {plan_files} as an artifact"
        downloads = [
            s for s in uses(job, "actions/download-artifact") if str(s.get("with", {}).get("name")) in uploaded
        ]
        assert downloads, f"infra.yml job {name}: does not download the plan artifact {uploaded}"
        d = step_index(job, lambda s, dl=downloads: s in dl)
        a = step_index(job, lambda s: any(sub == "apply" for sub, _ in terraform_commands(str(s.get("run", "")))))
        assert d < a, f"infra.yml job {name}: the plan artifact must be downloaded before terraform apply"


def test_state_changing_jobs_run_in_the_production_environment():
    wf = load("infra.yml")
    changing = {**jobs_running(wf, "apply"), **jobs_running(wf, "destroy")}
    assert changing
    for name, job in changing.items():
        assert job_environment(job) == PRODUCTION, (
            f"infra.yml job {name} changes the infrastructure: it must run in the protected "
            f"'{PRODUCTION}' environment (static, not an expression), has {job.get('environment')!r}"
        )
    deploy = load("deploy.yml")
    for name, job in deploy["jobs"].items():
        if "ansible-playbook" in run_text(job):
            assert job_environment(job) == PRODUCTION, f"deploy.yml job {name} must run in '{PRODUCTION}'"


def test_plan_is_shown_to_the_approver():
    """The plan job writes the plan into the run's summary, which the approver reads before approving."""
    wf = load("infra.yml")
    planners = [
        j for j in wf["jobs"].values() if any(s == "plan" and "-out=" in a for s, a in terraform_commands(run_text(j)))
    ]
    assert planners
    assert any("GITHUB_STEP_SUMMARY" in run_text(j) and "terraform show" in run_text(j) for j in planners)


# ---------------------------------------------------------------------------
# Credentials: environment secrets only
# ---------------------------------------------------------------------------
SECRET = re.compile(r"secrets\.([A-Za-z0-9_]+)")


def secrets_in(obj) -> set[str]:
    return set(SECRET.findall(yaml.safe_dump(obj))) - {"GITHUB_TOKEN"}


def test_secrets_only_in_environment_scoped_jobs():
    for name, wf in all_workflows().items():
        top = {k: v for k, v in wf.items() if k != "jobs"}
        assert not secrets_in(top), f"{name}: secrets referenced at workflow level: {sorted(secrets_in(top))}"
    for name, wf in all_workflows().items():
        for jname, job in wf["jobs"].items():
            found = secrets_in(job)
            if found:
                env = job_environment(job)
                assert env and "${{" not in env, (
                    f"{name} job {jname} reads {sorted(found)}: only jobs of a named environment may "
                    "(environment secrets, not repository secrets)"
                )


def test_no_long_lived_key_outside_production_environments():
    """The read-write OCI API key is a secret of `production` only; other environments get their own."""
    for name, wf in all_workflows().items():
        for jname, job in wf["jobs"].items():
            if "OCI_PRIVATE_KEY" in secrets_in(job):
                assert job_environment(job) in {PRODUCTION, "production-plan"}, f"{name} job {jname}"


# ---------------------------------------------------------------------------
# One concurrency group, -lock-timeout
# ---------------------------------------------------------------------------
def concurrency_of(wf: dict, job: dict) -> dict:
    c = job.get("concurrency", wf.get("concurrency"))
    if isinstance(c, str):
        c = {"group": c, "cancel-in-progress": False}
    return c or {}


def test_infra_and_deploy_share_one_concurrency_group():
    infra, deploy = load("infra.yml"), load("deploy.yml")
    changing = {**jobs_running(infra, "apply"), **jobs_running(infra, "destroy")}
    groups = {}
    for name, job in changing.items():
        groups[f"infra.yml:{name}"] = concurrency_of(infra, job)
    for name, job in deploy["jobs"].items():
        groups[f"deploy.yml:{name}"] = concurrency_of(deploy, job)
    assert changing and deploy["jobs"]
    for where, c in groups.items():
        assert c.get("group") == SHARED_GROUP, (
            f"{where}: concurrency group must be {SHARED_GROUP!r}, is {c.get('group')!r}"
        )
        assert c.get("cancel-in-progress") is False, f"{where}: an apply/deploy in progress must never be cancelled"


STATE_COMMANDS = {"init", "plan", "apply", "destroy", "refresh", "import", "taint", "untaint"}


def locks_state(sub: str, args: str) -> bool:
    """Whether `terraform <sub><args>` can take the state lock (init -backend=false cannot)."""
    if sub == "state":
        return bool(re.match(r"\s*(rm|mv|push|replace-provider)\b", args))
    return sub in STATE_COMMANDS and "-backend=false" not in args


def test_every_state_locking_terraform_command_waits_for_the_lock():
    seen = 0
    for name, wf in all_workflows().items():
        for jname, job in wf["jobs"].items():
            for sub, args in terraform_commands(run_text(job)):
                if locks_state(sub, args):
                    seen += 1
                    assert re.search(r"-lock-timeout=\d+[smh]", args), (
                        f"{name} job {jname}: `terraform {sub}{args}` must wait for the state lock (-lock-timeout=…)"
                    )
    assert seen, "no terraform command found in the workflows"


# ---------------------------------------------------------------------------
# Point 3: deploy
# ---------------------------------------------------------------------------
def test_deploy_never_applies_and_reads_the_outputs():
    deploy = load("deploy.yml")
    text = "\n".join(run_text(j) for j in deploy["jobs"].values())
    cmds = terraform_commands(text)
    assert not [c for c in cmds if c[0] in {"apply", "destroy", "plan", "import", "refresh", "taint", "untaint"}], (
        f"deploy.yml must only read the state: {cmds}"
    )
    assert "-target" not in text, "deploy.yml: no -target (a targeted apply plans the DB, network and buckets too)"
    assert any(s == "output" and "-json" in a for s, a in cmds), (
        "deploy.yml must read the infrastructure with terraform output -json"
    )


def test_deploy_checks_out_the_infra_runs_sha():
    deploy = load("deploy.yml")
    dispatch = triggers(deploy)["workflow_dispatch"] or {}
    inputs = dispatch.get("inputs") or {}
    sha_inputs = [k for k, v in inputs.items() if v.get("required") and "sha" in k.lower()]
    assert sha_inputs, "deploy.yml: workflow_dispatch needs a required SHA input"
    for jname, job in deploy["jobs"].items():
        for s in uses(job, "actions/checkout"):
            ref = str((s.get("with") or {}).get("ref", ""))
            assert "github.event.workflow_run.head_sha" in ref and f"inputs.{sha_inputs[0]}" in ref, (
                f"deploy.yml job {jname}: checkout must use the infra run's head_sha or the SHA input, has ref={ref!r}"
            )
        assert re.search(r"\[0-9a-f\]\{40\}", run_text(job)), f"deploy.yml job {jname}: the SHA is not validated"


def test_deploy_reaches_the_hosts_through_the_bastion_or_a_runner_in_the_vcn():
    deploy = load("deploy.yml")
    dispatch = triggers(deploy)["workflow_dispatch"] or {}
    assert "runner" in (dispatch.get("inputs") or {}), "deploy.yml: a documented input chooses a self-hosted runner"
    text = "\n".join(run_text(j) for j in deploy["jobs"].values())
    assert "scripts/oci-bastion-ssh-config" in text
    assert "bastion_id" in text
    assert (ROOT / "scripts" / "oci-bastion-ssh-config").is_file()


def test_deploy_runs_site_then_the_outside_in_suite_against_the_load_balancer():
    deploy = load("deploy.yml")
    (job,) = [j for j in deploy["jobs"].values() if "ansible-playbook" in run_text(j)]
    runs = [str(s.get("run", "")) for s in steps(job)]
    site = next(i for i, r in enumerate(runs) if "ansible-playbook site.yml" in r)
    outside = next((i for i, r in enumerate(runs) if "outside-test" in r), -1)
    assert outside > site, "deploy.yml: the outside-in suite (make outside-test) must run after site.yml"
    assert "INVENTORY=inventory/oci" in runs[outside]
    assert any("load_balancer_urls" in r for r in runs[site:outside]), (
        "deploy.yml: the users' URLs must be checked against the load balancer's (load_balancer_urls)"
    )


# ---------------------------------------------------------------------------
# Point 5: destroy
# ---------------------------------------------------------------------------
def test_destroy_lifts_deletion_protection_and_empties_buckets_first():
    wf = load("infra.yml")
    jobs = {
        n: j
        for n, j in {**jobs_running(wf, "destroy"), **jobs_running(wf, "plan", "-destroy")}.items()
        if any(s in {"apply", "destroy"} for s, _ in terraform_commands(run_text(j)))
    }
    assert jobs, "infra.yml: no destroy job"
    for name, job in jobs.items():
        runs = [str(s.get("run", "")) for s in steps(job)]

        def first(pred, runs=runs):
            return next((i for i, r in enumerate(runs) if pred(r)), -1)

        destroy = first(
            lambda r: any(s == "destroy" or (s == "plan" and "-destroy" in a) for s, a in terraform_commands(r))
        )
        unprotect = first(lambda r: "db_deletion_protection=false" in r and "terraform apply" in r)
        empty = first(lambda r: "bulk-delete-versions" in r)
        assert 0 <= unprotect < destroy, f"infra.yml job {name}: lift db deletion protection before destroying"
        assert 0 <= empty < destroy, (
            f"infra.yml job {name}: delete every object version of the buckets before destroying"
        )
        preflight = first(lambda r: "retention-rule" in r)
        assert 0 <= preflight < min(unprotect, empty), (
            f"infra.yml job {name}: refuse up front (retention rules) before changing anything"
        )


# ---------------------------------------------------------------------------
# Point 4: home_region
# ---------------------------------------------------------------------------
def test_home_region_reaches_terraform_wherever_it_runs():
    for name, wf in all_workflows().items():
        top_env = wf.get("env") or {}
        for jname, job in wf["jobs"].items():
            cmds = [c for c in terraform_commands(run_text(job)) if locks_state(*c) or c[0] in {"output", "show"}]
            if not cmds:
                continue
            env = {**top_env, **(job.get("env") or {})}
            assert "TF_VAR_home_region" in env and str(env["TF_VAR_home_region"]).strip(), (
                f"{name} job {jname} runs terraform without TF_VAR_home_region (IAM writes go to the home region)"
            )


def test_every_required_variable_reaches_the_plans_and_applies():
    """A variable without a default (variables.tf) must come from TF_VAR_ in
    every job that plans or applies: the jobs run with TF_INPUT=false and no
    tfvars file is committed, so a missing one fails every plan."""
    import hcl2

    required = set()
    for path in sorted((ROOT / "terraform").glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            for block in hcl2.load(fh).get("variable", []):
                for name, body in block.items():
                    if "default" not in body:
                        required.add(name.strip('"'))
    assert {"mysql_version", "lb_certificate_id", "tenancy_ocid"} <= required
    seen = 0
    for name, wf in all_workflows().items():
        top_env = wf.get("env") or {}
        for jname, job in wf["jobs"].items():
            if not any(sub in {"plan", "apply", "destroy"} for sub, _ in terraform_commands(run_text(job))):
                continue
            seen += 1
            env = {**top_env, **(job.get("env") or {})}
            missing = sorted(v for v in required if not str(env.get(f"TF_VAR_{v}", "")).strip())
            assert not missing, f"{name} job {jname} plans or applies without TF_VAR_ for {missing}"
    assert seen, "no job plans or applies"


# ---------------------------------------------------------------------------
# Supply chain
# ---------------------------------------------------------------------------
def test_every_action_is_pinned_by_a_commit_sha():
    for name, wf in all_workflows().items():
        for jname, job in wf["jobs"].items():
            for s in steps(job):
                if "uses" in s and not str(s["uses"]).startswith("./"):
                    assert re.fullmatch(r"[^@\s]+@[0-9a-f]{40}", str(s["uses"])), (
                        f"{name} job {jname}: {s['uses']} must be pinned by a 40-hex commit SHA"
                    )


NET_TO_SHELL = re.compile(r"(curl|wget)[^\n|]*\|\s*(sudo\s+)?(ba|z)?sh\b|(ba|z)?sh\s+<\(\s*(curl|wget)")


def test_nothing_is_piped_from_the_network_into_a_shell():
    for name, wf in all_workflows().items():
        for jname, job in wf["jobs"].items():
            assert not NET_TO_SHELL.search(run_text(job)), f"{name} job {jname}: a download is run as a script"


# ---------------------------------------------------------------------------
# The deploy's scripts (pure parts; the OCI calls need a tenancy)
# ---------------------------------------------------------------------------
def load_script(name: str):
    path = ROOT / "scripts" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def state_with(*resources: dict) -> dict:
    return {"values": {"root_module": {"resources": list(resources)}}}


def test_inventory_from_state_copies_the_rendered_files():
    mod = load_script("oci-inventory-from-state")
    state = state_with(
        {"address": "oci_core_vcn.this", "values": {}},
        {
            "address": "local_file.inventory",
            "values": {
                "filename": "/home/runner/work/x/terraform/../inventory/oci/oci-mlops.oci.yml",
                "content": "a: 1\n",
            },
        },
        {"address": "local_file.infra_vars", "values": {"filename": "/x/infra.yml", "content": "b: 2\n"}},
    )
    assert mod.inventory_files(state) == {"oci-mlops.oci.yml": "a: 1\n", "group_vars/all/infra.yml": "b: 2\n"}
    with pytest.raises(SystemExit, match="local_file.infra_vars not in the state: run the infra workflow's apply"):
        mod.inventory_files(state_with(state["values"]["root_module"]["resources"][1]))


def test_bastion_ssh_config_tunnels_each_host_through_its_session():
    mod = load_script("oci-bastion-ssh-config")
    listing = {
        "_meta": {
            "hostvars": {
                "10.0.2.15": {"id": "ocid1.instance.oc1..a", "private_ip": "10.0.2.15"},
                "10.0.2.16": {"id": "ocid1.instance.oc1..b"},
            }
        }
    }
    assert mod.hosts_from_listing(listing) == {
        "10.0.2.15": "ocid1.instance.oc1..a",
        "10.0.2.16": "ocid1.instance.oc1..b",
    }
    with pytest.raises(SystemExit, match="lists no hosts"):
        mod.hosts_from_listing({"_meta": {"hostvars": {}}})
    host = mod.bastion_host("eu-frankfurt-1")
    assert host == "host.bastion.eu-frankfurt-1.oci.oraclecloud.com"
    block = mod.ssh_config_block("10.0.2.15", "ocid1.bastionsession.oc1..s", host, "/tmp/k")
    assert block.startswith("Host 10.0.2.15\n  ProxyCommand ssh -i /tmp/k ")
    assert "-W %h:%p -p 22 ocid1.bastionsession.oc1..s@host.bastion.eu-frankfurt-1.oci.oraclecloud.com" in block
    assert mod.MAX_TTL == 10800
