"""The serving API's named keys (model_api_keys) and the dashboard's sign-in, as the roles deploy them.

What the platform gives (platform_defaults): the keys `clients` (secret
api_key, users' client.env) and `dashboard` (secret dashboard_api_key, the
dashboard's own key), rendered with Ansible itself into the roles' templates;
and model_api's check of the keys, which must fail before any change, name
the variable and the bad entries, and never print a key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import OCI_INFRA, ROLES, ansible_debug, run_local_play

TEMPLATES = {
    "keys": ROLES / "model_api" / "templates" / "api-keys.j2",
    "api_env": ROLES / "model_api" / "templates" / "api.env.j2",
    "dashboard_env": ROLES / "dashboard" / "templates" / "dashboard.env.j2",
}
INFRA = OCI_INFRA
KEY_A, KEY_B = "a" * 20 + "-first-key", "b" * 20 + "-second-key"


def _platform(tmp_path: Path, **api_host_vars) -> tuple[dict, Path]:
    """The api host's keys and rendered files as the platform gives them; and the secrets directory."""
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **INFRA},
            "children": {
                "mlflow": {"hosts": {"h-mlflow": {"private_ip": "10.0.1.10"}}},
                "api": {"hosts": {"h-api": {"private_ip": "10.0.1.12", **api_host_vars}}},
            },
        }
    }
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    secrets = tmp_path / "secrets"
    rendered = ", ".join(f"'{k}': lookup('ansible.builtin.template', '{p}')" for k, p in TEMPLATES.items())
    result = ansible_debug(
        tmp_path / "hosts.json",
        "h-api",
        "msg={{ {'model_api_keys': model_api_keys, 'dashboard_api_key': dashboard_api_key, " + rendered + "} }}",
        OCI_MLOPS_SECRETS_DIR=str(secrets),
    )
    return result["msg"], secrets


def _secret(secrets: Path, name: str) -> str:
    return (secrets / name).read_text().split()[0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    return _platform(tmp_path_factory.mktemp("platform"))


def test_the_platform_gives_the_clients_and_the_dashboard_keys(platform):
    shown, secrets = platform
    clients, dashboard = _secret(secrets, "api_key"), _secret(secrets, "dashboard_api_key")
    assert clients != dashboard and len(dashboard) == 40
    assert shown["model_api_keys"] == {"clients": clients, "dashboard": dashboard}
    assert shown["dashboard_api_key"] == dashboard


def test_the_keys_file_has_one_name_key_line_per_key(platform):
    shown, secrets = platform
    lines = [line for line in shown["keys"].splitlines() if line and not line.startswith("#")]
    assert lines == [f"clients={_secret(secrets, 'api_key')}", f"dashboard={_secret(secrets, 'dashboard_api_key')}"]


def test_the_api_env_points_at_the_keys_file_and_holds_no_key(platform):
    shown, secrets = platform
    env = shown["api_env"].splitlines()
    assert "OCI_MLOPS_API_KEYS_FILE=/etc/oci-mlops-api/api-keys" in env
    assert not [line for line in env if line.startswith("OCI_MLOPS_API_KEYS=")]
    assert _secret(secrets, "api_key") not in shown["api_env"]
    assert "MLFLOW_TRACKING_USERNAME=mlflow-reader" in env


def test_the_api_env_lists_the_served_models(platform):
    shown, _ = platform
    assert "OCI_MLOPS_SERVED_MODELS=iris-classifier" in shown["api_env"].splitlines()


def test_the_dashboard_signs_in_with_mlflow_and_uses_its_own_key(platform):
    shown, secrets = platform
    env = shown["dashboard_env"].splitlines()
    assert "OCI_MLOPS_DASHBOARD_AUTH=mlflow" in env
    assert f"OCI_MLOPS_API_KEY={_secret(secrets, 'dashboard_api_key')}" in env
    assert not [line for line in env if line.startswith("MLFLOW_TRACKING_USERNAME") or "PASSWORD" in line]
    assert _secret(secrets, "api_key") not in shown["dashboard_env"]


def test_the_dashboard_trusts_the_edges_forwarded_address_only(platform, tmp_path):
    """Without an edge nothing is trusted (no line); with one, its address (the browser's address
    it forwards goes to MLflow with each sign-in)."""
    shown, _ = platform
    assert not [line for line in shown["dashboard_env"].splitlines() if "FORWARDED" in line]
    shown, _ = _platform(tmp_path, dashboard_forwarded_allow_ips=["10.0.1.13", "fd00::13"])
    assert "OCI_MLOPS_FORWARDED_ALLOW_IPS=10.0.1.13,fd00::13" in shown["dashboard_env"].splitlines()


def test_without_sign_in_the_dashboard_reads_as_the_shared_reader(tmp_path):
    shown, secrets = _platform(tmp_path, dashboard_auth="none")
    env = shown["dashboard_env"].splitlines()
    assert "OCI_MLOPS_DASHBOARD_AUTH=none" in env
    assert "MLFLOW_TRACKING_USERNAME=mlflow-reader" in env
    assert f"MLFLOW_TRACKING_PASSWORD={_secret(secrets, 'mlflow_readonly_password')}" in env


def _run_role(tmp_path: Path, extra: dict, tasks_from: str | None = None) -> subprocess.CompletedProcess:
    """model_api (or one of its task files) on localhost with EXTRA as extra vars."""
    include = {"name": "model_api", **({"tasks_from": tasks_from} if tasks_from else {})}
    play = {
        "name": "model_api",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "The role", "ansible.builtin.include_role": include}],
    }
    return run_local_play(tmp_path, [play], extra, topology=True)


def test_good_keys_pass_the_check(tmp_path):
    run = _run_role(tmp_path, {"model_api_keys": {"clients": KEY_A, "ci-2": KEY_B}}, tasks_from="validate")
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({}, []),
        ({"Clients": KEY_A}, ["Bad names: Clients"]),
        ({"c" * 33: KEY_A}, ["Bad names: " + "c" * 33]),
        ({"clients": "short-key-15-ch"}, ["bad keys (by name): clients"]),
        ({"clients": KEY_A + "#x", "dashboard": KEY_B + " x"}, ["bad keys (by name): clients, dashboard"]),
        ({"clients": KEY_A, "dashboard": KEY_A}, ["one key under several names: clients/dashboard"]),
    ],
    ids=["empty", "upper-case-name", "long-name", "short-key", "hash-and-space", "same-key-twice"],
)
def test_bad_keys_fail_naming_the_variable_and_entry_never_the_key(tmp_path, keys, named):
    run = _run_role(tmp_path, {"model_api_keys": keys}, tasks_from="validate")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "model_api_keys" in out
    for text in named:
        assert text in out, out[-3000:]
    for key in keys.values():
        assert key not in out


def test_the_former_list_is_refused_by_name(tmp_path):
    run = _run_role(
        tmp_path, {"model_api_keys": {"clients": KEY_A}, "model_api_api_keys": [KEY_B]}, tasks_from="validate"
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "model_api_api_keys (a list of bare keys) is replaced by model_api_keys" in out
    assert KEY_B not in out


def test_bad_keys_stop_the_role_before_any_change(tmp_path):
    required = {
        "model_api_mlflow_tracking_uri": "http://mlflow:5000",
        "model_api_mlflow_username": "reader",
        "model_api_mlflow_password": "x" * 20,
        "model_api_bind_address": "127.0.0.1",
        "model_api_client_cidrs": [],
        "model_api_root_path": "",
        "model_api_forwarded_allow_ips": [],
    }
    run = _run_role(tmp_path, {**required, "model_api_keys": {"clients": "short"}})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    tasks = [line for line in out.splitlines() if line.startswith("TASK [")]
    assert [t for t in tasks if "Validating arguments" not in t and "The role" not in t] == [
        next(t for t in tasks if "Validate the API keys (model_api_keys)" in t)
    ], tasks
    assert "bad keys (by name): clients" in out


GOOD_KEYS = {"model_api_keys": {"clients": KEY_A}}


def test_served_models_and_their_preloads_pass_the_check(tmp_path):
    served = {
        "model_api_served_models": ["iris-classifier", "wine"],
        "model_api_preload_models": ["wine", "iris-classifier@2"],
    }
    run = _run_role(tmp_path, {**GOOD_KEYS, **served}, tasks_from="validate")
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"model_api_served_models": []}, "bad: none"),
        ({"model_api_served_models": ["iris, wine"]}, "bad: iris, wine"),
        ({"model_api_served_models": [" iris"]}, "bad:  iris"),
        (
            {"model_api_served_models": ["iris"], "model_api_preload_models": ["iris", "other@champion"]},
            "not served: other",
        ),
    ],
    ids=["empty", "comma", "space", "preload-not-served"],
)
def test_bad_served_models_fail_naming_the_variables(tmp_path, settings, named):
    run = _run_role(tmp_path, {**GOOD_KEYS, **settings}, tasks_from="validate")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "model_api_served_models must list at least one registered model name" in out
    assert named in out, out[-3000:]
