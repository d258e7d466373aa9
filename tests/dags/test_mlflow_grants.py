"""The mlflow role's grants helper (ansible/roles/mlflow/files/mlflow-grants.py) on a real MLflow.

The platform's users (platform_defaults/defaults/main/mlflow.yml) under the platform's default
permission NO_PERMISSIONS: the helper gives them their grants, takes the former wildcard EDIT of
the pipelines back, creates the pipelines' model as the admin, changes nothing on a second run and
only reports in check mode. Then, as those users: the pipelines register a version of their model
and move its alias, the API's reader reads it, and a new user can neither register that name nor
add a version to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import ROOT, mlflow_server_module, pipelines_bin

HELPER = ROOT / "ansible" / "roles" / "mlflow" / "files" / "mlflow-grants.py"
PLATFORM = ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "mlflow.yml"


def platform_users() -> list[dict[str, Any]]:
    """mlflow_users of the platform as the role hands them to the helper (vars/main.yml,
    mlflow_users_grants): permission on '*' of both kinds, then the grants."""
    users = []
    for user in yaml.safe_load(PLATFORM.read_text())["mlflow_users"]:
        wildcard = (
            [
                {"resource_type": kind, "resource_id": "*", "permission": user["permission"]}
                for kind in ("experiment", "registered_model")
            ]
            if user.get("permission")
            else []
        )
        users.append({"name": user["name"], "grants": wildcard + list(user.get("grants") or [])})
    return users


USERS = platform_users()
NAMES = [user["name"] for user in USERS]
PIPELINES = "mlflow-pipelines"
READER = "mlflow-reader"
MODEL = next(
    g["resource_id"]
    for u in USERS
    if u["name"] == PIPELINES
    for g in u["grants"]
    if g["resource_type"] == "registered_model"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    """A fresh server with the platform's users as the former role left them: the pipelines
    with EDIT on every experiment and registered model."""
    with mlflow_server_module.running_mlflow(
        tmp_path_factory.mktemp("grants"), mlflow_bin=pipelines_bin("mlflow"), default_permission="NO_PERMISSIONS"
    ) as srv:
        passwords = {name: srv.create_user(name) for name in NAMES}
        for kind in ("experiment", "registered_model"):
            srv.grant(PIPELINES, kind, "*", "EDIT")
        yield srv, passwords


def run_helper(srv: Any, check: bool = False) -> list[str]:
    request = {"url": srv.uri, "admin": ["admin", srv.admin_password], "users": USERS, "check": check}
    run = subprocess.run(
        [sys.executable, str(HELPER)], input=json.dumps(request), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert srv.admin_password not in run.stdout + run.stderr
    return json.loads(run.stdout)["changes"]


def grants(srv: Any, user: str) -> dict[tuple[str, str], str]:
    rows = srv.call("GET", "/api/3.0/mlflow/users/permissions/list", {"username": user})["permissions"]
    return {(r["resource_type"], r["resource_pattern"]): r["permission"] for r in rows}


def test_check_mode_reports_and_changes_nothing(server):
    srv, _ = server
    before = {user: grants(srv, user) for user in NAMES}
    changes = run_helper(srv, check=True)
    assert f"create registered model {MODEL} (as the admin)" in changes
    assert f"revoke {PIPELINES} EDIT on every registered_model (*)" in changes
    assert {user: grants(srv, user) for user in NAMES} == before
    with pytest.raises(urllib.error.HTTPError) as missing:
        srv.call("GET", "/api/2.0/mlflow/registered-models/get", {"name": MODEL})
    assert missing.value.code == 404


def test_the_helper_gives_the_platforms_grants_then_changes_nothing(server):
    srv, _ = server
    changes = run_helper(srv)
    assert changes, "nothing done on a server without the grants"
    assert grants(srv, PIPELINES) == {("registered_model", MODEL): "EDIT"}
    assert grants(srv, READER) == {("experiment", "*"): "READ", ("registered_model", "*"): "READ"}
    assert grants(srv, "data-scientist") == {("experiment", "*"): "READ", ("registered_model", "*"): "READ"}
    assert (
        srv.call("GET", "/api/2.0/mlflow/registered-models/get", {"name": MODEL})["registered_model"]["name"] == MODEL
    )
    assert run_helper(srv) == []


def test_a_weaker_grant_is_raised_and_a_stronger_one_stays(server):
    srv, _ = server
    srv.call(
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        {"username": PIPELINES, "resource_type": "registered_model", "resource_id": MODEL},
    )
    srv.grant(PIPELINES, "registered_model", MODEL, "READ")
    srv.call(
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        {"username": "data-scientist", "resource_type": "registered_model", "resource_id": "*"},
    )
    srv.grant("data-scientist", "registered_model", "*", "MANAGE")
    assert run_helper(srv) == [f"raise {PIPELINES} from READ to EDIT on registered_model {MODEL}"]
    assert grants(srv, PIPELINES) == {("registered_model", MODEL): "EDIT"}
    assert grants(srv, "data-scientist")[("registered_model", "*")] == "MANAGE"


def test_as_the_platforms_users_after_the_helper(server):
    srv, passwords = server
    run_helper(srv)
    as_pipelines = (PIPELINES, passwords[PIPELINES])
    # the pipelines: an experiment of their own, a version of their model, its alias
    experiment = srv.call("POST", "/api/2.0/mlflow/experiments/create", {"name": "iris-training"}, auth=as_pipelines)
    run = srv.call(
        "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment["experiment_id"]}, auth=as_pipelines
    )["run"]["info"]
    version = srv.call(
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        {"name": MODEL, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]},
        auth=as_pipelines,
    )["model_version"]["version"]
    srv.call(
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        {"name": MODEL, "alias": "champion", "version": version},
        auth=as_pipelines,
    )
    # the API's reader reads it
    got = srv.call(
        "GET",
        "/api/2.0/mlflow/registered-models/alias",
        {"name": MODEL, "alias": "champion"},
        auth=(READER, passwords[READER]),
    )
    assert got["model_version"]["version"] == version
    # but it may not delete the pipelines' model nor anything of it
    with pytest.raises(urllib.error.HTTPError) as refused:
        srv.call("DELETE", "/api/2.0/mlflow/registered-models/delete", {"name": MODEL}, auth=as_pipelines)
    assert refused.value.code == 403
    # a new user can neither register the name nor add a version to it
    intruder = ("someone", srv.create_user("someone"))
    with pytest.raises(urllib.error.HTTPError) as taken:
        srv.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": MODEL}, auth=intruder)
    assert taken.value.code == 400  # RESOURCE_ALREADY_EXISTS: the admin created it
    own = srv.call("POST", "/api/2.0/mlflow/experiments/create", {"name": "intruder"}, auth=intruder)
    intruder_run = srv.call(
        "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": own["experiment_id"]}, auth=intruder
    )["run"]["info"]
    with pytest.raises(urllib.error.HTTPError) as denied:
        srv.call(
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            {"name": MODEL, "source": f"{intruder_run['artifact_uri']}/model", "run_id": intruder_run["run_id"]},
            auth=intruder,
        )
    assert denied.value.code == 403
