"""One service pattern: units come from the shared systemd_service role, whose template applies overrides."""

import yaml
from conftest import ROLES, run_local_play


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
