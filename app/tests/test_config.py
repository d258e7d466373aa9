"""Settings from environment variables (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oci_mlops_app.config import ApiKey, ApiSettings, ConfigError, DashboardSettings

BASE = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "OCI_MLOPS_SERVED_MODELS": "iris"}
K1, K2 = "a" * 20, "b" * 20


def api(**env: str) -> ApiSettings:
    return ApiSettings.from_env({**BASE, **env})


def test_named_keys() -> None:
    settings = api(OCI_MLOPS_API_KEYS=f" ci={K1} , dashboard={K2} ")
    assert settings.api_keys == (ApiKey("ci", K1), ApiKey("dashboard", K2))
    assert settings.warnings == ()
    assert K1 not in repr(settings)


def test_bare_keys_are_named_in_order_with_a_deprecation_warning() -> None:
    settings = api(OCI_MLOPS_API_KEYS=f"{K1},ci=c{K2},{K2}")
    assert [k.name for k in settings.api_keys] == ["key-1", "ci", "key-2"]
    (warning,) = settings.warnings
    assert "key-1, key-2" in warning
    assert "deprecated" in warning
    assert K1 not in warning


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# API keys\nci={K1}   # CI\n\n  dashboard = {K2}\n")
    settings = api(OCI_MLOPS_API_KEYS_FILE=str(path))
    assert settings.api_keys == (ApiKey("ci", K1), ApiKey("dashboard", K2))


def test_keys_file_needs_names(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"ci={K1}\n{K2}\n")
    with pytest.raises(ConfigError, match=r"^OCI_MLOPS_API_KEYS_FILE: line 2 is not name=key$"):
        api(OCI_MLOPS_API_KEYS_FILE=str(path))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "OCI_MLOPS_API_KEYS must list at least one API key"),
        (" , ", "OCI_MLOPS_API_KEYS must list at least one API key"),
        (f"CI={K1}", "entry 1: the name before '=' must be"),
        (f"{'n' * 33}={K1}", "entry 1: the name before '=' must be"),
        (f"={K1}", "entry 1: the name before '=' must be"),
        ("ci=0123456789abcde", r"entry 1 \(ci\): the key must be at least 16 characters"),
        ("0123456789abcde", r"entry 1 \(key-1\): the key must be at least 16"),
        (f"ci={K1},ci={K2}", "entry 2: the name 'ci' is used twice"),
        (f"ci={K1},cd={K1}", r"entry 2 \(cd\): the same key is listed twice"),
    ],
)
def test_bad_key_entries_name_the_variable_not_the_key(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^OCI_MLOPS_API_KEYS(: {message}| must)") as info:
        api(OCI_MLOPS_API_KEYS=value)
    assert K1 not in str(info.value)


def test_keys_from_both_places_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"ci={K1}\n")
    with pytest.raises(ConfigError, match="either OCI_MLOPS_API_KEYS or OCI_MLOPS_API_KEYS_FILE"):
        api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_API_KEYS_FILE=str(path))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ""), ("/api", "/api"), ("api/", "/api"), ("/tools/api/", "/tools/api")],
)
def test_root_path(value: str, expected: str) -> None:
    assert api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_API_ROOT_PATH=value).root_path == expected


@pytest.mark.parametrize("value", ["/a pi", "/api?x=1", "https://host/api", "/api//v1"])
def test_bad_root_path(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^OCI_MLOPS_API_ROOT_PATH must be a URL path"):
        api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_API_ROOT_PATH=value)


def test_forwarded_allow_ips() -> None:
    assert api(OCI_MLOPS_API_KEYS=f"ci={K1}").forwarded_allow_ips is None
    settings = api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_FORWARDED_ALLOW_IPS="10.0.1.5, ::1")
    assert settings.forwarded_allow_ips == "10.0.1.5,::1"
    settings = api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_FORWARDED_ALLOW_IPS="10.0.1.0/24")
    assert settings.forwarded_allow_ips == "10.0.1.0/24"


DASHBOARD = {**BASE, "OCI_MLOPS_API_URL": "http://api:8000", "OCI_MLOPS_API_KEY": K1}


def test_dashboard_defaults_to_mlflow_sign_in() -> None:
    settings = DashboardSettings.from_env(DASHBOARD)
    assert settings.auth == "mlflow"
    assert settings.base_path == ""
    assert settings.warnings == ()


def test_dashboard_shared_mlflow_user_is_unused_with_sign_in() -> None:
    env = {**DASHBOARD, "MLFLOW_TRACKING_USERNAME": "r", "MLFLOW_TRACKING_PASSWORD": "p"}
    (warning,) = DashboardSettings.from_env(env).warnings
    assert "unused" in warning


def test_dashboard_without_sign_in_warns() -> None:
    settings = DashboardSettings.from_env({**DASHBOARD, "OCI_MLOPS_DASHBOARD_AUTH": "none"})
    assert settings.auth == "none"
    (warning,) = settings.warnings
    assert "NO sign-in" in warning


def test_dashboard_bad_auth_and_base_path() -> None:
    with pytest.raises(ConfigError, match=r"^OCI_MLOPS_DASHBOARD_AUTH must be one of mlflow, none"):
        DashboardSettings.from_env({**DASHBOARD, "OCI_MLOPS_DASHBOARD_AUTH": "basic"})
    env = {**DASHBOARD, "OCI_MLOPS_DASHBOARD_BASE_PATH": "dashboard/"}
    assert DashboardSettings.from_env(env).base_path == "/dashboard"
    with pytest.raises(ConfigError, match=r"^OCI_MLOPS_DASHBOARD_BASE_PATH must be a URL path"):
        DashboardSettings.from_env({**DASHBOARD, "OCI_MLOPS_DASHBOARD_BASE_PATH": "/dash board"})


def test_served_models_are_required_and_bound_the_preload_list() -> None:
    settings = api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_SERVED_MODELS=" iris , wine,,iris ")
    assert settings.served_models == frozenset({"iris", "wine"})
    for value in ("", " , "):
        with pytest.raises(ConfigError, match=r"^OCI_MLOPS_SERVED_MODELS must list"):
            api(OCI_MLOPS_API_KEYS=f"ci={K1}", OCI_MLOPS_SERVED_MODELS=value)
    with pytest.raises(ConfigError, match=r"does not list: other, wine$"):
        api(
            OCI_MLOPS_API_KEYS=f"ci={K1}",
            OCI_MLOPS_SERVED_MODELS="iris",
            OCI_MLOPS_PRELOAD_MODELS="iris@champion,wine,other@2",
        )


def test_dashboard_trusts_the_forwarded_address_of_the_configured_proxy_only() -> None:
    assert DashboardSettings.from_env(DASHBOARD).forwarded_allow_ips is None
    env = {**DASHBOARD, "OCI_MLOPS_FORWARDED_ALLOW_IPS": "10.0.1.13"}
    assert DashboardSettings.from_env(env).forwarded_allow_ips == "10.0.1.13"
    with pytest.raises(ConfigError, match=r"^OCI_MLOPS_FORWARDED_ALLOW_IPS: 'edge' is neither"):
        DashboardSettings.from_env({**DASHBOARD, "OCI_MLOPS_FORWARDED_ALLOW_IPS": "edge"})


def test_download_dir() -> None:
    assert api(OCI_MLOPS_API_KEYS=K1).download_dir is None
    settings = api(OCI_MLOPS_API_KEYS=K1, OCI_MLOPS_DOWNLOAD_DIR="/var/cache/x")
    assert settings.download_dir == "/var/cache/x"
    with pytest.raises(ConfigError, match="OCI_MLOPS_DOWNLOAD_DIR must be an absolute path"):
        api(OCI_MLOPS_API_KEYS=K1, OCI_MLOPS_DOWNLOAD_DIR="relative/dir")
