"""Configuration, read only from environment variables (see README "Configuration")."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

DEFAULT_ALIAS_REFRESH_SECONDS = 10.0
MAX_ALIAS_REFRESH_SECONDS = 30.0
DEFAULT_STAGE_ALIASES = "Production=champion,Staging=challenger"
DEFAULT_REF = "champion"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_API_KEY_LENGTH = 16
API_KEY_NAME_RE = re.compile(r"^[a-z0-9-]{1,32}$")
# A URL path prefix such as /api or /tools/dashboard: segments of unreserved characters.
_PATH_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
DASHBOARD_AUTH_MODES = ("mlflow", "none")

# Hostile input (OWASP API4), see README "Limits". The body cap: 2 MiB holds the default
# OCI_MLOPS_MAX_ROWS (10,000) rows of a ~20-feature model in the compact form ("data", ~10
# bytes a value), or of the iris model as records, and the dashboard's batches (at most
# 50,000 values); beyond it a body costs more than ~0.1 s of CPU and ~100 MB of memory to
# decode. The edge's own cap (10 MB) is for all the routes behind it.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
MIN_MAX_BODY_BYTES = 1024
DEFAULT_MAX_ROWS = 10_000
# Columns per request (and per row or record): beyond any tabular model this API serves.
DEFAULT_MAX_COLUMNS = 1000
# The dashboard: Streamlit's upload cap (MiB; Streamlit's own default is 200: 8 stays under the
# edge's 10 MiB body cap for /dashboard/ with the multipart envelope), and the rows and
# columns of a CSV it scores.
DEFAULT_DASHBOARD_MAX_UPLOAD_MB = 8
DEFAULT_DASHBOARD_MAX_ROWS = 100_000

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
class ApiKey:
    """One named API key. The name is what logs and metrics show; the key never is."""

    name: str
    key: str = field(repr=False)


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
    api_keys: tuple[ApiKey, ...]
    preload_models: tuple[ModelRef, ...]
    # The registered model names this API serves (OCI_MLOPS_SERVED_MODELS): any other name is a
    # 404 before any MLflow call, so nothing of it is downloaded or loaded.
    served_models: frozenset[str]
    alias_refresh_seconds: float
    stage_aliases: Mapping[str, str]
    max_rows: int
    log_level: str
    root_path: str = ""
    forwarded_allow_ips: str | None = None
    # Deprecation notices found while reading the settings, for the caller to log.
    warnings: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_columns: int = DEFAULT_MAX_COLUMNS
    # Where models are downloaded (OCI_MLOPS_DOWNLOAD_DIR); None: the temporary directory.
    download_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        keys, warnings = api_keys_from_env(env)
        refresh = _float(env, "OCI_MLOPS_ALIAS_REFRESH_SECONDS", DEFAULT_ALIAS_REFRESH_SECONDS)
        if not 0 < refresh <= MAX_ALIAS_REFRESH_SECONDS:
            raise ConfigError(
                f"OCI_MLOPS_ALIAS_REFRESH_SECONDS must be > 0 and <= {MAX_ALIAS_REFRESH_SECONDS:g}"
            )
        max_rows = _int(env, "OCI_MLOPS_MAX_ROWS", DEFAULT_MAX_ROWS)
        if max_rows < 1:
            raise ConfigError("OCI_MLOPS_MAX_ROWS must be >= 1")
        served = parse_served_models(env.get("OCI_MLOPS_SERVED_MODELS", ""))
        preload = parse_model_refs(env.get("OCI_MLOPS_PRELOAD_MODELS", ""))
        unserved = sorted({ref.name for ref in preload} - served)
        if unserved:
            raise ConfigError(
                f"OCI_MLOPS_PRELOAD_MODELS names models that OCI_MLOPS_SERVED_MODELS does not "
                f"list: {', '.join(unserved)}"
            )
        max_columns = _int(env, "OCI_MLOPS_MAX_COLUMNS", DEFAULT_MAX_COLUMNS)
        if max_columns < 1:
            raise ConfigError("OCI_MLOPS_MAX_COLUMNS must be >= 1")
        max_body_bytes = _int(env, "OCI_MLOPS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        if max_body_bytes < MIN_MAX_BODY_BYTES:
            raise ConfigError(
                f"OCI_MLOPS_MAX_BODY_BYTES must be >= {MIN_MAX_BODY_BYTES} (a number of bytes, "
                f"e.g. {DEFAULT_MAX_BODY_BYTES} for 2 MiB)"
            )
        download_dir = env.get("OCI_MLOPS_DOWNLOAD_DIR", "").strip() or None
        if download_dir is not None and not os.path.isabs(download_dir):
            raise ConfigError("OCI_MLOPS_DOWNLOAD_DIR must be an absolute path")
        return cls(
            mlflow=mlflow_settings_from_env(env),
            api_keys=keys,
            preload_models=preload,
            served_models=served,
            alias_refresh_seconds=refresh,
            stage_aliases=parse_stage_aliases(
                env.get("OCI_MLOPS_STAGE_ALIASES", DEFAULT_STAGE_ALIASES)
            ),
            max_rows=max_rows,
            log_level=log_level_from_env(env),
            root_path=_path_prefix(env, "OCI_MLOPS_API_ROOT_PATH"),
            forwarded_allow_ips=_forwarded_allow_ips(env),
            warnings=warnings,
            max_body_bytes=max_body_bytes,
            max_columns=max_columns,
            download_dir=download_dir,
        )


@dataclass(frozen=True)
class DashboardSettings:
    """Settings of the Streamlit dashboard."""

    mlflow: MlflowSettings
    api_url: str
    api_key: str = field(repr=False)
    log_level: str
    # "mlflow": every user signs in with their MLflow user and reads MLflow as that user;
    # "none": no sign-in, MLflow is read as the dashboard's own user (local development only).
    auth: str = "mlflow"
    base_path: str = ""
    # The reverse proxy whose X-Forwarded-For names the browser (OCI_MLOPS_FORWARDED_ALLOW_IPS):
    # that address is forwarded to MLflow with each sign-in (per-browser failed sign-in limit).
    forwarded_allow_ips: str | None = None
    warnings: tuple[str, ...] = ()
    # Caps on batch scoring: the uploaded CSV's size (MiB, Streamlit's server.maxUploadSize),
    # rows and columns.
    max_upload_mb: int = DEFAULT_DASHBOARD_MAX_UPLOAD_MB
    max_rows: int = DEFAULT_DASHBOARD_MAX_ROWS
    max_columns: int = DEFAULT_MAX_COLUMNS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if environ is None else environ
        api_url = _http_url(env, "OCI_MLOPS_API_URL")
        api_key = env.get("OCI_MLOPS_API_KEY", "").strip()
        if not api_key:
            raise ConfigError(
                "OCI_MLOPS_API_KEY (the dashboard's key for the serving API) is empty"
            )
        auth = env.get("OCI_MLOPS_DASHBOARD_AUTH", "mlflow").strip().lower() or "mlflow"
        if auth not in DASHBOARD_AUTH_MODES:
            raise ConfigError(
                f"OCI_MLOPS_DASHBOARD_AUTH must be one of {', '.join(DASHBOARD_AUTH_MODES)}, "
                f"got {auth!r}"
            )
        mlflow = mlflow_settings_from_env(env)
        warnings: list[str] = []
        if auth == "none":
            warnings.append(
                "OCI_MLOPS_DASHBOARD_AUTH=none: the dashboard has NO sign-in and reads MLflow as "
                "its own user; use it for local development only"
            )
        elif mlflow.username is not None:
            warnings.append(
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD are set but unused: with "
                "OCI_MLOPS_DASHBOARD_AUTH=mlflow the dashboard reads MLflow as the signed-in user"
            )
        base_path = _path_prefix(env, "OCI_MLOPS_DASHBOARD_BASE_PATH")
        caps = {
            name: _int(env, var, default)
            for name, var, default in (
                (
                    "max_upload_mb",
                    "OCI_MLOPS_DASHBOARD_MAX_UPLOAD_MB",
                    DEFAULT_DASHBOARD_MAX_UPLOAD_MB,
                ),
                ("max_rows", "OCI_MLOPS_DASHBOARD_MAX_ROWS", DEFAULT_DASHBOARD_MAX_ROWS),
                ("max_columns", "OCI_MLOPS_DASHBOARD_MAX_COLUMNS", DEFAULT_MAX_COLUMNS),
            )
        }
        for name, value in caps.items():
            if value < 1:
                raise ConfigError(f"OCI_MLOPS_DASHBOARD_{name.upper()} must be >= 1")
        return cls(
            mlflow=mlflow,
            api_url=api_url.rstrip("/"),
            api_key=api_key,
            log_level=log_level_from_env(env),
            auth=auth,
            base_path=base_path,
            forwarded_allow_ips=_forwarded_allow_ips(env),
            warnings=tuple(warnings),
            **caps,
        )


def api_keys_from_env(env: Mapping[str, str]) -> tuple[tuple[ApiKey, ...], tuple[str, ...]]:
    """The API keys from ``OCI_MLOPS_API_KEYS`` or ``OCI_MLOPS_API_KEYS_FILE``, and warnings.

    ``OCI_MLOPS_API_KEYS``: comma-separated ``name=key`` entries (bare keys are still accepted
    for one release and named ``key-1``, ``key-2``, ... with a deprecation warning).
    ``OCI_MLOPS_API_KEYS_FILE``: a file with one ``name=key`` per line; ``#`` starts a comment.
    """
    inline = env.get("OCI_MLOPS_API_KEYS", "").strip()
    path = env.get("OCI_MLOPS_API_KEYS_FILE", "").strip()
    if inline and path:
        raise ConfigError(
            "set either OCI_MLOPS_API_KEYS or OCI_MLOPS_API_KEYS_FILE, not both "
            "(the keys must come from one place)"
        )
    if path:
        var = "OCI_MLOPS_API_KEYS_FILE"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{var}: cannot read {path}: {exc}") from None
        entries = [
            (f"line {number}", line.split("#", 1)[0].strip())
            for number, line in enumerate(text.splitlines(), start=1)
        ]
        keys = parse_api_keys(((where, item) for where, item in entries if item), var, bare=False)
        return keys, ()
    var = "OCI_MLOPS_API_KEYS"
    items = [item.strip() for item in inline.split(",")]
    keys = parse_api_keys(
        ((f"entry {n}", item) for n, item in enumerate(items, start=1) if item), var, bare=True
    )
    # parse_api_keys names the entries without "name=" key-1, key-2, ... in order
    bare = [f"key-{n}" for n in range(1, sum(1 for i in items if i and "=" not in i) + 1)]
    if not bare:
        return keys, ()
    return keys, (
        f"OCI_MLOPS_API_KEYS: {len(bare)} key(s) without a name, called {', '.join(bare)} in "
        "logs and metrics; unnamed keys are deprecated and will be refused by the next release: "
        "write each one as name=key (name: 1-32 of a-z, 0-9, -)",
    )


def parse_api_keys(
    entries: Iterable[tuple[str, str]], var: str, *, bare: bool
) -> tuple[ApiKey, ...]:
    """Parse ``(where, "name=key")`` entries; with ``bare``, a lone key is named ``key-<n>``.

    Error messages name the variable and the entry, never the key.
    """
    keys: list[ApiKey] = []
    unnamed = 0
    for where, item in entries:
        name, sep, key = item.partition("=")
        name, key = name.strip(), key.strip()
        if not sep:
            if not bare:
                raise ConfigError(f"{var}: {where} is not name=key")
            unnamed += 1
            name, key = f"key-{unnamed}", item
        elif not API_KEY_NAME_RE.match(name):
            raise ConfigError(
                f"{var}: {where}: the name before '=' must be 1-32 characters of a-z, 0-9 and -"
            )
        if len(key) < MIN_API_KEY_LENGTH:
            raise ConfigError(
                f"{var}: {where} ({name}): the key must be at least {MIN_API_KEY_LENGTH} characters"
            )
        if any(k.name == name for k in keys):
            raise ConfigError(f"{var}: {where}: the name {name!r} is used twice")
        if any(k.key == key for k in keys):
            raise ConfigError(f"{var}: {where} ({name}): the same key is listed twice")
        keys.append(ApiKey(name, key))
    if not keys:
        raise ConfigError(f"{var} must list at least one API key")
    return tuple(keys)


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


def parse_served_models(value: str) -> frozenset[str]:
    """Parse ``OCI_MLOPS_SERVED_MODELS``: comma-separated registered model names, at least one.

    A registered model's loader runs in the API process when it is loaded, and any MLflow user
    may register a model: only the names the operator lists here are ever looked up or loaded.
    """
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise ConfigError(
            "OCI_MLOPS_SERVED_MODELS must list the registered model names the API serves "
            "(comma-separated); any other name is refused"
        )
    return names


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


def _path_prefix(env: Mapping[str, str], name: str) -> str:
    """A URL path prefix (``/api``; surrounding slashes optional), normalised to ``/api``, or
    "" when unset."""
    raw = env.get(name, "").strip().strip("/")
    if not raw:
        return ""
    value = f"/{raw}"
    if not _PATH_PREFIX_RE.match(value):
        raise ConfigError(
            f"{name} must be a URL path such as /api (letters, digits, . _ ~ - and /), "
            f"got {env.get(name)!r}"
        )
    return value


def _forwarded_allow_ips(env: Mapping[str, str]) -> str | None:
    """``OCI_MLOPS_FORWARDED_ALLOW_IPS``: ``*`` or comma-separated addresses / networks whose
    X-Forwarded-For/-Proto headers are trusted; None (trust no one) when unset."""
    name = "OCI_MLOPS_FORWARDED_ALLOW_IPS"
    items = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    if not items:
        return None
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name}: {item!r} is neither an IP address, a network (CIDR) nor *"
            ) from None
    return ",".join(items)


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
