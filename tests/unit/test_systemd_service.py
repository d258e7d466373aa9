"""One service pattern: units come from the shared systemd_service role, whose template applies overrides."""

import json

import yaml
from conftest import OCI_INFRA, ROLES, ansible_debug, run_local_play


def test_no_service_role_writes_its_own_unit_template():
    own = sorted(
        str(p.relative_to(ROLES))
        for ext in ("service", "timer")
        for p in ROLES.glob(f"*/templates/*.{ext}.j2")
        if p.parts[-3] != "systemd_service"
    )
    assert not own, f"hand-written units (use the systemd_service role): {own}"


def _render(tmp_path, data: dict) -> str:
    defaults = yaml.safe_load((ROLES / "systemd_service/defaults/main.yml").read_text())
    out = tmp_path / "unit"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {**defaults, **data},
            "tasks": [
                {
                    "ansible.builtin.copy": {
                        "content": "{{ lookup('ansible.builtin.template', '%s') }}"
                        % (ROLES / "systemd_service/templates/unit.service.j2"),
                        "dest": str(out),
                        "mode": "0644",
                    }
                }
            ],
        }
    ]
    run = run_local_play(tmp_path, play)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return out.read_text()


def test_baseline_overrides_and_syscall_allow(tmp_path):
    unit = _render(
        tmp_path,
        {
            "systemd_service_name": "x",
            "systemd_service_description": "X",
            "systemd_service_user": "svc",
            "systemd_service_exec_start": "/bin/x --flag",
            "systemd_service_env_file": "/etc/x/x.env",
            "systemd_service_hardening_overrides": {"MemoryDenyWriteExecute": None, "ProtectHome": "read-only"},
            "systemd_service_syscall_allow": ["mbind"],
            "systemd_service_wanted_by": "",
        },
    )
    lines = unit.splitlines()
    assert "MemoryDenyWriteExecute=true" not in unit and "MemoryDenyWriteExecute" not in unit
    assert "ProtectHome=read-only" in lines and "ProtectHome=true" not in lines
    assert "NoNewPrivileges=true" in lines and "Group=svc" in lines and "EnvironmentFile=/etc/x/x.env" in lines
    filters = [line for line in lines if line.startswith("SystemCallFilter=")]
    # The allow list must come after the deny list, or systemd would deny mbind again.
    assert filters == [
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallFilter=mbind",
    ]
    assert "[Install]" not in unit


def test_defaults_give_an_install_section_and_restart_policy(tmp_path):
    unit = _render(
        tmp_path,
        {
            "systemd_service_name": "y",
            "systemd_service_description": "Y",
            "systemd_service_user": "svc",
            "systemd_service_exec_start": "/bin/y",
        },
    )
    lines = unit.splitlines()
    assert "MemoryDenyWriteExecute=true" in lines and "SystemCallErrorNumber=EPERM" in lines
    assert "Restart=on-failure" in lines and "StartLimitIntervalSec=0" in lines
    assert lines[-2:] == ["[Install]", "WantedBy=multi-user.target"]


def test_resource_caps_on_every_unit_with_overrides_and_null(tmp_path):
    base = {
        "systemd_service_name": "z",
        "systemd_service_description": "Z",
        "systemd_service_user": "svc",
        "systemd_service_exec_start": "/bin/z",
    }
    lines = _render(tmp_path, base).splitlines()
    assert "MemoryMax=512M" in lines and "TasksMax=256" in lines
    caps = {"systemd_service_memory_max": "3G", "systemd_service_tasks_max": 1024}
    lines = _render(tmp_path, {**base, **caps}).splitlines()
    assert "MemoryMax=3G" in lines and "TasksMax=1024" in lines
    unit = _render(tmp_path, {**base, "systemd_service_memory_max": None, "systemd_service_tasks_max": None})
    assert "MemoryMax" not in unit and "TasksMax" not in unit


def _unit_includes():
    """(role, task file, vars) of every include of systemd_service's main entry point."""
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("name") == "systemd_service" and "tasks_from" not in include:
                yield path.parts[-3], path.name, task.get("vars", {})


def test_every_unit_passes_its_roles_own_resource_caps():
    """Every unit the platform writes gets MemoryMax=/TasksMax= from variables of its own role
    (<role>_..._memory_max / _tasks_max), documented and overridable there."""
    includes = list(_unit_includes())
    assert {role for role, _, _ in includes} >= {"mlflow", "airflow", "model_api", "dashboard", "object_store"}
    for role, where, data in includes:
        for cap in ("memory_max", "tasks_max"):
            value = data.get(f"systemd_service_{cap}", "")
            assert f"{role}_" in value and cap in value, f"{role}/{where}: systemd_service_{cap} = {value!r}"
    # the edge's nginx.service (the distribution's unit) gets them in the role's drop-in
    dropin = (ROLES / "edge/templates/nginx-dropin.conf.j2").read_text()
    assert "MemoryMax={{ edge_memory_max }}" in dropin and "TasksMax={{ edge_tasks_max }}" in dropin


def test_airflow_caps_follow_the_workers_and_task_slots(tmp_path):
    """The api-server's and the scheduler's defaults grow with their workers / task slots."""
    names = ["api_server", "scheduler", "dag_processor", "triggerer", "dag_sync"]
    template = "msg={{ [" + ", ".join(f"airflow_{n}_memory_max, airflow_{n}_tasks_max | string" for n in names) + "] }}"
    rendered = {}
    for label, host_vars in (("defaults", {}), ("bigger", {"airflow_parallelism": 16, "airflow_api_workers": 4})):
        inventory = tmp_path / f"{label}.json"
        airflow = {"hosts": {"h-airflow": {"private_ip": "10.0.1.11", **host_vars}}}
        hosts = {"vars": {"ansible_connection": "local", **OCI_INFRA}, "children": {"airflow": airflow}}
        inventory.write_text(json.dumps({"all": hosts}))
        rendered[label] = ansible_debug(inventory, "h-airflow", template)["msg"]
    assert rendered["defaults"] == ["1536M", "512", "4096M", "1024", "1G", "256", "1G", "256", "512M", "128"]
    assert rendered["bigger"][:4] == ["2560M", "512", "7168M", "1536"]
