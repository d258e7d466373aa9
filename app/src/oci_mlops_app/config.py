"""Configuration, read only from environment variables (see README "Configuration")."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlparse

DEFAULT_ALIAS_REFRESH_SECONDS = 10.0
MAX_ALIAS_REFRESH_SECONDS = 30.0
DEFAULT_STAGE_ALIASES = "Production=champion,Staging=challenger"
DEFAULT_REF = "champion"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Defaults this application gives MLflow's own client settings when the operator has not set
# them: MLflow otherwise retries a failing HTTP call 7 times with exponential backoff (minutes),
# shows progress bars on downloads and sends telemetry.
MLFLOW_CLIENT_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
)


class ConfigError(ValueError):
    """An environment variable is missing or invalid."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model name plus a reference: an alias, a version number or a stage name."""

    name: str
    ref: str

    def __str__(self) -> str:
        return f"{self.name}@{self.ref}"


@dataclass(frozen=True)
class MlflowSettings:
    """How to reach the MLflow tracking server / model registry."""

    tracking_uri: str
    username: str | None
    password: str | None
    timeout_seconds: float

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)


@dataclass(frozen=True)
class ApiSettings:
    """Settings of the serving API."""

    mlflow: MlflowSettings
    api_keys: tuple[str, ...] = field(repr=False)
    preload_models: tuple[ModelRef, ...]
    alias_refresh_seconds: float
    stage_aliases: Mapping[str, str]
    max_rows: int
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        keys = tuple(k.strip() for k in env.get("OCI_MLOPS_API_KEYS", "").split(",") if k.strip())
        if not keys:
            raise ConfigError("OCI_MLOPS_API_KEYS must list at least one API key")
        if any(len(k) < 16 for k in keys):
            raise ConfigError("every key in OCI_MLOPS_API_KEYS must be at least 16 characters")
        refresh = _float(env, "OCI_MLOPS_ALIAS_REFRESH_SECONDS", DEFAULT_ALIAS_REFRESH_SECONDS)
        if not 0 < refresh <= MAX_ALIAS_REFRESH_SECONDS:
            raise ConfigError(
                f"OCI_MLOPS_ALIAS_REFRESH_SECONDS must be > 0 and <= {MAX_ALIAS_REFRESH_SECONDS:g}"
            )
        max_rows = _int(env, "OCI_MLOPS_MAX_ROWS", 10_000)
        if max_rows < 1:
            raise ConfigError("OCI_MLOPS_MAX_ROWS must be >= 1")
        return cls(
            mlflow=mlflow_settings_from_env(env),
            api_keys=keys,
            preload_models=parse_model_refs(env.get("OCI_MLOPS_PRELOAD_MODELS", "")),
            alias_refresh_seconds=refresh,
            stage_aliases=parse_stage_aliases(
                env.get("OCI_MLOPS_STAGE_ALIASES", DEFAULT_STAGE_ALIASES)
            ),
            max_rows=max_rows,
            log_level=log_level_from_env(env),
        )


@dataclass(frozen=True)
class DashboardSettings:
    """Settings of the Streamlit dashboard."""

    mlflow: MlflowSettings
    api_url: str
    api_key: str = field(repr=False)
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if environ is None else environ
        api_url = _http_url(env, "OCI_MLOPS_API_URL")
        api_key = env.get("OCI_MLOPS_API_KEY", "").strip()
        if not api_key:
            raise ConfigError(
                "OCI_MLOPS_API_KEY (the dashboard's key for the serving API) is empty"
            )
        return cls(
            mlflow=mlflow_settings_from_env(env),
            api_url=api_url.rstrip("/"),
            api_key=api_key,
            log_level=log_level_from_env(env),
        )


def mlflow_settings_from_env(env: Mapping[str, str]) -> MlflowSettings:
    username = env.get("MLFLOW_TRACKING_USERNAME") or None
    password = env.get("MLFLOW_TRACKING_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError(
            "set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or neither"
        )
    timeout = _float(env, "OCI_MLOPS_MLFLOW_TIMEOUT_SECONDS", 5.0)
    if timeout <= 0:
        raise ConfigError("OCI_MLOPS_MLFLOW_TIMEOUT_SECONDS must be > 0")
    return MlflowSettings(
        tracking_uri=_http_url(env, "MLFLOW_TRACKING_URI").rstrip("/"),
        username=username,
        password=password,
        timeout_seconds=timeout,
    )


def log_level_from_env(env: Mapping[str, str]) -> str:
    level = env.get("OCI_MLOPS_LOG_LEVEL", "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"OCI_MLOPS_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return level


def parse_model_refs(value: str) -> tuple[ModelRef, ...]:
    """Parse ``name@ref,name2`` (a bare name means ``name@champion``)."""
    refs = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, _, ref = item.rpartition("@") if "@" in item else (item, "", DEFAULT_REF)
        if not name.strip() or not ref.strip():
            raise ConfigError(f"OCI_MLOPS_PRELOAD_MODELS: invalid entry {item!r}, use name@ref")
        refs.append(ModelRef(name.strip(), ref.strip()))
    return tuple(refs)


def parse_stage_aliases(value: str) -> Mapping[str, str]:
    """Parse ``Stage=alias,...``; stage names are matched case-insensitively."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        stage, sep, alias = item.partition("=")
        if not sep or not stage.strip() or not alias.strip():
            raise ConfigError(f"OCI_MLOPS_STAGE_ALIASES: invalid entry {item!r}, use Stage=alias")
        mapping[stage.strip().lower()] = alias.strip()
    return MappingProxyType(mapping)


def apply_mlflow_client_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Give MLflow's client settings this application's defaults where the operator set none."""
    env = os.environ if environ is None else environ
    for key, value in MLFLOW_CLIENT_DEFAULTS.items():
        env.setdefault(key, value)


def _http_url(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
