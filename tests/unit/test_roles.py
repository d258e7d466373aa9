"""Every role documents its inputs, and bad input fails before any change."""

from pathlib import Path

import pytest
import yaml
from conftest import ROLES, run_local_play

ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "tasks" / "main.yml").exists())


def test_platform_defaults_is_defaults_only():
    """kubespray_defaults' pattern: no tasks, defaults split by concern, its plugins."""
    role = ROLES / "platform_defaults"
    assert not (role / "tasks").exists() and not (role / "vars").exists()
    assert sorted(p.name for p in (role / "defaults" / "main").glob("*.yml"))
    assert (role / "README.md").is_file() and (role / "meta" / "main.yml").is_file()


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _specs(role: Path) -> dict:
    return _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]


def _is_template(value) -> bool:
    return isinstance(value, str) and "{{" in value


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_role_has_the_standard_files(role):
    for rel in ("defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml"):
        assert (role / rel).is_file(), f"{role.name}: {rel} is missing"
    assert "main" in _specs(role)


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = _yaml(role / "defaults" / "main.yml")
    options: dict[str, dict] = {}
    for entry in _specs(role).values():
        for name, option in entry.get("options", {}).items():
            options.setdefault(name, option)
    for name, value in defaults.items():
        assert name in options, f"{role.name}: default {name} has no argument_specs entry"
        assert options[name].get("description"), f"{role.name}: {name} has no description"
        if not _is_template(value) and "default" in options[name]:
            assert options[name]["default"] == value, f"{role.name}: {name} default differs from argument_specs"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_option_is_named_after_its_role(role):
    for entry_point, entry in _specs(role).items():
        for name in entry.get("options", {}):
            assert name.startswith(f"{role.name}_"), f"{role.name}/{entry_point}: option {name} lacks the role prefix"


def _bad_value(option: dict):
    """A value the option's type or choices cannot accept, or None."""
    if "choices" in option:
        return "not-one-of-the-choices"
    return {"int": "not-a-number", "bool": "maybe", "list": {"not": "a list"}, "dict": 5}.get(option.get("type", "str"))


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_bad_input_fails_before_any_task_naming_the_variable(role, tmp_path):
    options = _specs(role)["main"].get("options", {})
    bad = {name: _bad_value(opt) for name, opt in options.items() if _bad_value(opt) is not None}
    if not bad:
        pytest.skip(f"{role.name}: every option is a str or path, which accept any value")
    # The inputs the platform sets (platform_defaults, absent from the role's
    # defaults) get a plain value, as the platform gives them: the role's own
    # defaults may read them (mlflow_auth_database_uri).
    defaults = _yaml(role / "defaults" / "main.yml")
    given = {
        name: "x"
        for name, opt in options.items()
        if name not in bad and name not in defaults and opt.get("type", "str") == "str"
    }
    play = {"name": "bad input", "hosts": "localhost", "gather_facts": True, "roles": [role.name]}
    # the topology, which the service roles' port defaults read (the rest of
    # the platform's settings left out: the role alone)
    run = run_local_play(tmp_path, [play], {**given, **bad}, topology=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Validating arguments against arg spec" in out
    tasks = [line for line in out.splitlines() if line.startswith("TASK [") and "Gathering Facts" not in line]
    assert len(tasks) == 1, f"{role.name}: tasks ran after the validation failed: {tasks}"
    for name in bad:
        assert name in out, f"{role.name}: the failure does not name {name}"
