"""The Python checks of `make lint` see every Python file of the repository."""

import importlib.util
import subprocess
import sys
import tomllib
from importlib.machinery import SourceFileLoader

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _mypy_all():
    loader = SourceFileLoader("mypy_all", str(ROOT / "scripts" / "mypy-all"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


def _python_scripts_without_suffix() -> set[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    found = set()
    for name in filter(None, tracked):
        path = ROOT / name
        if "." in path.name or not path.is_file():
            continue
        with path.open("rb") as fh:
            first = fh.readline()
        if first.startswith(b"#!") and b"python" in first:
            found.add(name)
    return found


def test_ruff_includes_every_python_script_without_a_suffix():
    scripts = _python_scripts_without_suffix()
    assert "scripts/drift-report" in scripts
    assert scripts <= set(PYPROJECT["tool"]["ruff"]["extend-include"])


def test_mypy_checks_every_python_file_but_the_deliberately_broken():
    mypy_all = _mypy_all()
    files = mypy_all.python_files()
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "*.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    excluded = set(PYPROJECT["tool"]["ruff"]["extend-exclude"])
    assert {name for name in filter(None, tracked) if not mypy_all.is_excluded(name, excluded)} <= set(files)
    assert _python_scripts_without_suffix() <= set(files)
    assert not [name for name in files if mypy_all.is_excluded(name, excluded)]
    # A directory excludes what is under it (the vendored oracle.oci collection).
    assert mypy_all.is_excluded("tests/unit/data/oracle_oci/plugins/inventory/oci.py", excluded)
    assert not mypy_all.is_excluded("tests/unit/data/oracle_oci_other.py", excluded)


def test_mypy_gives_each_test_directory_its_own_run_and_path():
    root_of = _mypy_all().root_of
    assert root_of("tests/unit/conftest.py") == ("tests/unit", ["tests/unit"])
    assert root_of("molecule/site/tests/sitekit.py") == ("molecule/site/tests", ["molecule/site/tests"])
    assert root_of("tests/dags/conftest.py")[0] == root_of("dags/iris_pipeline/training.py")[0] == "dags"
    assert root_of("app/tests/lab.py")[0] == root_of("app/src/oci_mlops_app/api.py")[0] == "app"
    assert root_of("scripts/drift-report")[0] == "files"
