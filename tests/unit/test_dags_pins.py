"""The pipelines' pins agree everywhere: airflow role, DAG test lock, Makefile, serving app."""

import re

import jinja2
import yaml
from conftest import LOCK, ROLES, ROOT

ROLE = ROLES / "airflow"
# The freeze `make dags-lock` writes; the role's pipelines lock adds its hashes
# (tests/unit/test_venv_locks.py checks they agree).
PIPELINES_CONSTRAINTS = ROLE / "files" / "pipelines-constraints-python3.11.txt"


def _pins(path):
    """{normalized name: version} of a requirements/constraints file or lock
    (several versions of a name in a universal lock: joined with ' or ')."""
    return {
        name: " or ".join(sorted(versions))
        for name, versions in LOCK.lock_versions(path.read_text(encoding="utf-8")).items()
    }


def _role_packages():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    return dict(p.lower().split("==") for p in defaults["airflow_pipelines_packages"])


def test_role_packages_are_in_the_pipelines_constraints():
    constraints = _pins(PIPELINES_CONSTRAINTS)
    for name, version in _role_packages().items():
        assert constraints.get(name) == version, f"{name}=={version} vs constraints {constraints.get(name)}"


def test_dag_test_lock_contains_the_deployed_pipelines_set():
    deployed = _pins(PIPELINES_CONSTRAINTS)
    tested = _pins(ROOT / "tests" / "dags" / "requirements-pipelines.txt")
    assert {k: tested.get(k) for k in deployed} == deployed


def test_makefile_lock_recipe_uses_the_role_packages():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^PIPELINES_PACKAGES := (.*)$", makefile, re.M)
    assert match, "no PIPELINES_PACKAGES in the Makefile"
    line = match[1]
    assert dict(p.lower().split("==") for p in line.split()) == _role_packages()


def test_pipelines_train_with_the_versions_the_serving_app_loads_with():
    app = _pins(ROOT / "app" / "requirements.txt")
    for name, version in _role_packages().items():
        if name in app:
            assert app[name] == version, f"{name}: pipelines {version}, serving app {app[name]}"
    assert {"scikit-learn", "skops", "mlflow-skinny"} <= set(app)


def test_airflow_side_of_the_dag_tests_matches_the_role():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    text = (ROOT / "tests" / "dags" / "requirements-airflow.in").read_text(encoding="utf-8")
    assert f"apache-airflow=={defaults['airflow_version']}" in text
    # the constraints file the role's lock was compiled from
    env = jinja2.Environment()
    env.filters["bool"] = bool
    lock_file = env.from_string(defaults["airflow_lock_file"]).render(airflow_executor="LocalExecutor")
    source = (ROLE / "files" / lock_file).with_suffix(".in").read_text(encoding="utf-8")
    constraints = re.search(r"^-c \.\./(\S+)$", source, re.M)
    assert constraints, "the airflow lock's .in names no constraints file"
    assert f"ansible/roles/airflow/files/{constraints[1]}" in text
