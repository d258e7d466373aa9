"""The mlflow role writes MLflow's credential cache and the failed sign-in limiter into its configuration.

The role's own templates, rendered with its defaults and vars by a local
play: basic_auth.ini carries auth_cache_ttl_seconds (MLflow 3.17.2 reads it
from the [mlflow] section, default 0 = off) and the authorization function,
the environment file what the limiter reads. A bad value fails the role's
validation naming the variable. The platform trusts the X-Forwarded-For of
the edge hosts and of the dashboard's hosts (their private addresses), and
nothing without them.
"""

from __future__ import annotations

import configparser
import json

import pytest
from conftest import OCI_INFRA, ROLES, ansible_debug, run_local_play

ROLE = ROLES / "mlflow"
REQUIRED = {
    "mlflow_backend_store_uri": "mysql+pymysql://mlflow:pw@db:3306/mlflow",
    "mlflow_artifacts_destination": "/var/lib/mlflow/artifacts",
    "mlflow_admin_password": "an-admin-password-long-enough",
    "mlflow_flask_secret_key": "a-flask-secret-key-long-enough",
    "mlflow_s3_endpoint_url": "",
    "mlflow_s3_region": "",
    "mlflow_s3_access_key": "",
    "mlflow_s3_secret_key": "",
    "mlflow_auth_trusted_proxies": [],
    "mlflow_host": "0.0.0.0",
}


def _render(tmp_path, **settings):
    play = {
        "name": "render",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [
            {
                "name": f"Render {name}",
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / f"{name}.j2"),
                    "dest": str(tmp_path / name),
                },
            }
            for name in ("basic_auth.ini", "mlflow.env")
        ],
    }
    run = run_local_play(tmp_path, [play], {**REQUIRED, **settings})
    assert run.returncode == 0, run.stdout + run.stderr
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(tmp_path / "basic_auth.ini")
    env = dict(
        line.split("=", 1)
        for line in (tmp_path / "mlflow.env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    return ini["mlflow"], env


def test_the_defaults_turn_the_cache_and_the_limiter_on(tmp_path):
    ini, env = _render(tmp_path)
    assert ini["default_permission"] == "NO_PERMISSIONS"
    assert ini.getint("auth_cache_ttl_seconds") == 30
    assert ini["authorization_function"] == "oci_mlops_auth_throttle:authenticate_request_basic_auth_throttled"
    assert env["PYTHONPATH"] == "/opt/mlflow/lib"
    assert (env["OCI_MLOPS_AUTH_FAILED_LIMIT"], env["OCI_MLOPS_AUTH_FAILED_WINDOW"]) == ("3", "60")
    assert env["OCI_MLOPS_AUTH_TRUSTED_PROXIES"] == '""'
    # listening on every address, the role's own checks come from loopback
    assert env["OCI_MLOPS_AUTH_LOCAL_ADDRESSES"] == '"127.0.0.1"'


def test_zero_turns_them_off(tmp_path):
    ini, env = _render(tmp_path, mlflow_auth_cache_ttl=0, mlflow_auth_failed_login_limit=0)
    assert ini.getint("auth_cache_ttl_seconds") == 0
    assert ini["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    assert not [name for name in env if name.startswith("OCI_MLOPS_AUTH") or name == "PYTHONPATH"]


def test_the_settings_reach_the_files(tmp_path):
    ini, env = _render(
        tmp_path,
        mlflow_auth_cache_ttl=120,
        mlflow_auth_failed_login_limit=3,
        mlflow_auth_failed_login_window=300,
        mlflow_auth_trusted_proxies=["10.0.0.4", "fd00::4"],
        mlflow_host="10.0.0.9",
    )
    assert ini.getint("auth_cache_ttl_seconds") == 120
    assert (env["OCI_MLOPS_AUTH_FAILED_LIMIT"], env["OCI_MLOPS_AUTH_FAILED_WINDOW"]) == ("3", "300")
    assert env["OCI_MLOPS_AUTH_TRUSTED_PROXIES"] == '"10.0.0.4,fd00::4"'
    # behind the edge MLflow listens on the private address: the role's own checks come from there
    assert env["OCI_MLOPS_AUTH_LOCAL_ADDRESSES"] == '"10.0.0.9"'


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mlflow_auth_cache_ttl", -1),
        ("mlflow_auth_failed_login_limit", -5),
        ("mlflow_auth_failed_login_window", 0),
        ("mlflow_auth_trusted_proxies", ["edge.example"]),
        ("mlflow_auth_trusted_proxies", ["10.0.0.0/24"]),
    ],
)
def test_a_bad_value_fails_naming_the_variable(tmp_path, name, value):
    play = {"name": "bad", "hosts": "localhost", "gather_facts": False, "roles": ["mlflow"]}
    platform: dict[str, object] = {
        "oci_mlops_client_cidrs": [],
        "mlflow_users": [],
        "mlflow_allowed_hosts": [],
        "mlflow_host": "127.0.0.1",
    }
    run = run_local_play(tmp_path, [play], {**REQUIRED, **platform, name: value}, topology=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    task = "TASK [mlflow : Validate the credential cache and the failed sign-in limit]"
    assert task in out, out
    failed = out.split(task, 1)[1]
    # the failing assertion (the expression) names the variable
    assertion = failed.split("assertion:", 1)[1].split("changed:", 1)[0]
    assert name in assertion, failed
    assert "Load the OS-family variables" not in out, "tasks ran after the validation failed"


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({"mlflow": {"203.0.113.10": "10.0.1.10"}}, []),
        ({"mlflow": {"203.0.113.10": "10.0.1.10"}, "edge": {"203.0.113.5": "10.0.0.5"}}, ["10.0.0.5"]),
        # the dashboard's hosts (group api) forward the address of the browser a sign-in comes from
        ({"mlflow": {"203.0.113.10": "10.0.1.10"}, "api": {"203.0.113.12": "10.0.1.12"}}, ["10.0.1.12"]),
        (
            {
                "mlflow": {"203.0.113.10": "10.0.1.10"},
                "edge": {"203.0.113.5": "10.0.0.5"},
                "api": {"203.0.113.12": "10.0.1.12", "203.0.113.14": "10.0.1.14"},
            },
            ["10.0.0.5", "10.0.1.12", "10.0.1.14"],
        ),
    ],
)
def test_the_platform_trusts_the_edges_and_the_dashboards_private_addresses(tmp_path, groups, expected):
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **OCI_INFRA},
            "children": {
                group: {"hosts": {public: {"private_ip": private} for public, private in hosts.items()}}
                for group, hosts in groups.items()
            },
        }
    }
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    got = ansible_debug(
        path, "203.0.113.10", "var=mlflow_auth_trusted_proxies", OCI_MLOPS_SECRETS_DIR=str(tmp_path / "secrets")
    )
    assert got["mlflow_auth_trusted_proxies"] == expected


def test_the_platform_users_grants(tmp_path):
    """What the role's grants helper gets for the platform's users (vars/main.yml mlflow_users_grants):
    READ on every experiment and registered model for the API's reader and the users' account, EDIT on
    the pipelines' model only for the pipelines (no password in it: it goes to the helper's stdin)."""
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", **OCI_INFRA},
            "children": {"mlflow": {"hosts": {"203.0.113.10": {"private_ip": "10.0.1.10"}}}},
        }
    }
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    got = ansible_debug(path, "203.0.113.10", "var=mlflow_users_grants", OCI_MLOPS_SECRETS_DIR=str(tmp_path / "s"))
    everything = [
        {"resource_type": "experiment", "resource_id": "*", "permission": "READ"},
        {"resource_type": "registered_model", "resource_id": "*", "permission": "READ"},
    ]
    assert got["mlflow_users_grants"] == [
        {"name": "mlflow-reader", "grants": everything},
        {
            "name": "mlflow-pipelines",
            "grants": [{"resource_type": "registered_model", "resource_id": "iris-classifier", "permission": "EDIT"}],
        },
        {"name": "data-scientist", "grants": everything},
    ]
    assert "password" not in json.dumps(got["mlflow_users_grants"])
