"""Data access for the dashboard: MLflow (registry, runs, model signatures) and the serving API.

Kept free of Streamlit so that it can be used and tested on its own.
"""

from __future__ import annotations

import io
import ipaddress
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import mlflow.artifacts
import pandas as pd
import requests
import yaml
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
from mlflow.types import DataType
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import MlflowHostCreds, http_request

from ..registry import ModelInfo, Registry, first_line

BATCH_ROWS = 1000
# Values (rows x columns) per API request when scoring a CSV: at ~10-20 bytes a value, well
# under the API's body cap (OCI_MLOPS_MAX_BODY_BYTES, 2 MiB by default) however wide the CSV.
BATCH_VALUES = 50_000
PREDICTION_COLUMN = "prediction"
MAX_RUNS = 500
MAX_EXPERIMENTS = 1000


@dataclass(frozen=True)
class InputColumn:
    """One input column of a model signature."""

    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class MlflowAccess:
    """How the dashboard reads MLflow: the tracking server, and as whom.

    With a ``username`` (the signed-in user) every call carries that user's basic-auth
    credentials, so MLflow applies that user's permissions. Without, MLflow's own client settings
    apply (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``: the dashboard's user, ``auth=none``).
    """

    tracking_uri: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def host_creds(self) -> MlflowHostCreds:
        defaults = get_default_host_creds(self.tracking_uri)  # TLS settings, env credentials
        if self.username is None:
            return defaults
        return MlflowHostCreds(
            host=self.tracking_uri,
            username=self.username,
            password=self.password,
            ignore_tls_verification=defaults.ignore_tls_verification,
            client_cert_path=defaults.client_cert_path,
            server_cert_path=defaults.server_cert_path,
        )

    def registry_store(self) -> RegistryRestStore:
        return RegistryRestStore(self.host_creds)

    def tracking_store(self) -> TrackingRestStore:
        return TrackingRestStore(self.host_creds)

    def registry(self) -> Registry:
        return Registry(self.tracking_uri, client=self.registry_store())


class SignInRefusedError(Exception):
    """MLflow refused the username/password."""


class SignInUnavailableError(Exception):
    """The credentials could not be checked (MLflow unreachable, or without basic auth)."""


class SignInThrottledError(Exception):
    """MLflow refuses sign-ins from the browser's address for a while (its failed sign-in limit:
    429 with Retry-After) without checking the password."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-ins: retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


# When MLflow's 429 carries no usable Retry-After: the platform's failed sign-in window
# (mlflow_auth_failed_login_window).
DEFAULT_RETRY_AFTER_SECONDS = 60


def browser_address(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: str | None
) -> str | None:
    """The address a browser signs in from, or None when it is not known.

    ``peer`` is the connection's address as Streamlit reports it (``st.context.ip_address``:
    None for a loopback connection). When it is one of ``trusted_proxies`` (the edge:
    ``OCI_MLOPS_FORWARDED_ALLOW_IPS``, ``*`` or comma-separated addresses and networks), the
    browser is the last ``X-Forwarded-For`` entry: the edge replaces that header with the address
    it saw, so a browser cannot choose it. A header from anyone else is the browser's own claim
    and is ignored.
    """
    if peer is None:
        return None
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return None
    if not _is_trusted(peer_ip, trusted_proxies):
        return str(peer_ip)
    entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
    entries = [entry for entry in entries if entry]
    if not entries:
        return str(peer_ip)
    try:
        return str(ipaddress.ip_address(entries[-1]))
    except ValueError:
        return str(peer_ip)


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: str | None
) -> bool:
    for item in (trusted or "").split(","):
        item = item.strip()
        if item == "*":
            return True
        if item and address in ipaddress.ip_network(item, strict=False):
            return True
    return False


# Endpoints of MLflow's basic-auth app that any user may call about themself: the first is
# MLflow >= 3.x's "who am I"; the second (older servers) answers only for the sender's own name.
_WHOAMI_ENDPOINTS = (
    ("/api/2.0/mlflow/users/current", False),
    ("/api/2.0/mlflow/users/get", True),
)


def verify_mlflow_user(
    tracking_uri: str,
    username: str,
    password: str,
    timeout_seconds: float,
    client_address: str | None = None,
) -> str:
    """Check a username/password with MLflow's basic auth (one call); the user's name.

    ``client_address`` (the browser's, see ``browser_address``) goes to MLflow as
    ``X-Forwarded-For``: MLflow's failed sign-in limiter, which trusts it from the dashboard's
    host, then counts each browser on its own instead of every dashboard user as one address.
    """
    creds = MlflowAccess(tracking_uri, username, password).host_creds()
    headers = {"X-Forwarded-For": client_address} if client_address else None
    response = None
    for endpoint, with_name in _WHOAMI_ENDPOINTS:
        try:
            response = http_request(
                creds,
                endpoint,
                "GET",
                max_retries=0,
                extra_headers=headers,
                timeout=timeout_seconds,
                # a 429 is an answer (the limiter's), not a transient error to raise
                raise_on_status=False,
                params={"username": username} if with_name else None,
            )
        except (requests.RequestException, MlflowException) as exc:
            raise SignInUnavailableError("MLflow cannot be reached") from exc
        if response.status_code != 404:  # 404: an older MLflow, try the next endpoint
            break
    assert response is not None
    if response.status_code in (401, 403):
        raise SignInRefusedError
    if response.status_code == 429:
        raise SignInThrottledError(_retry_after_seconds(response))
    if response.status_code == 404:
        raise SignInUnavailableError(
            "MLflow does not run its basic-auth app (--app-name basic-auth)"
        )
    if response.status_code != 200:
        raise SignInUnavailableError(f"MLflow answered HTTP {response.status_code}")
    try:
        return str(response.json()["user"]["username"])
    except (ValueError, KeyError, TypeError):
        raise SignInUnavailableError("unexpected answer from MLflow") from None


def _retry_after_seconds(response: requests.Response) -> int:
    try:
        seconds = int(response.headers.get("Retry-After", ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS
    return max(seconds, 1)


def is_unauthenticated(exc: BaseException) -> bool:
    """Whether an MLflow error is a 401: the credentials are no longer accepted."""
    return isinstance(exc, MlflowException) and exc.get_http_status_code() == 401


class ApiError(Exception):
    """The serving API refused a request or could not be reached."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class ApiClient:
    """Calls the serving API with the dashboard's API key."""

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key}
        self._timeout = timeout_seconds

    def served_models(self) -> frozenset[str]:
        """The names of the registered models the API serves (its ``GET /models``): the only
        ones the prediction form offers."""
        try:
            response = httpx.get(
                f"{self._base_url}/models", headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise ApiError(None, f"serving API unreachable at {self._base_url}: {exc}") from exc
        if response.status_code != 200:
            raise ApiError(response.status_code, _error_detail(response))
        return frozenset(str(m["name"]) for m in response.json()["models"])

    def predict(self, name: str, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base_url}/predict/{quote(name, safe='')}/{quote(ref, safe='')}"
        try:
            response = httpx.post(url, json=payload, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ApiError(None, f"serving API unreachable at {self._base_url}: {exc}") from exc
        if response.status_code != 200:
            raise ApiError(response.status_code, _error_detail(response))
        result: dict[str, Any] = response.json()
        return result


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):  # FastAPI request-validation errors
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}" for item in detail
        )
    return str(detail)


def list_models(access: MlflowAccess) -> list[ModelInfo]:
    return access.registry().list_models()


def versions_table(access: MlflowAccess, models: Sequence[ModelInfo]) -> pd.DataFrame:
    """One row per model version with its aliases and the metrics of the run that produced it."""
    client = access.tracking_store()
    metrics_by_run: dict[str, dict[str, float]] = {}
    rows = []
    for model in models:
        for version in model.versions:
            row: dict[str, Any] = {
                "model": model.name,
                "version": int(version.version),
                "aliases": ", ".join(version.aliases),
                "status": version.status,
                "created": pd.to_datetime(version.creation_timestamp, unit="ms", utc=True),
                "run_id": version.run_id or "",
            }
            if version.run_id:
                if version.run_id not in metrics_by_run:
                    metrics_by_run[version.run_id] = _run_metrics(client, version.run_id)
                row.update(
                    {f"metric: {k}": v for k, v in sorted(metrics_by_run[version.run_id].items())}
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _run_metrics(client: TrackingRestStore, run_id: str) -> dict[str, float]:
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException as exc:  # deleted run, or a run this user may not read
        if is_unauthenticated(exc):
            raise
        return {}


def input_columns(access: MlflowAccess, name: str, version: str) -> list[InputColumn] | None:
    """The named input columns of a model version's signature, or None if it has none."""
    signature = _mlmodel(access, name, version).signature
    schema = signature.inputs if signature is not None else None
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    return [
        InputColumn(
            name=str(c.name),
            type=c.type.name if isinstance(c.type, DataType) else str(c.type),
            required=bool(c.required),
        )
        for c in schema.inputs
    ]


def _mlmodel(access: MlflowAccess, name: str, version: str) -> Model:
    """A model version's MLmodel file, read with ``access``'s credentials.

    Artifacts served by the tracking server (``mlflow-artifacts:``, the platform's
    ``--serve-artifacts``) are read through its artifact proxy as the user; other artifact
    stores only with MLflow's own client settings (``auth=none``).
    """
    location = access.registry_store().get_model_version_download_uri(name, version)
    parsed = urlparse(location)
    if parsed.scheme == "mlflow-artifacts":
        path = f"{parsed.path.strip('/')}/{MLMODEL_FILE_NAME}"
        response = http_request(
            access.host_creds(), f"/api/2.0/mlflow-artifacts/artifacts/{quote(path)}", "GET"
        )
        if response.status_code != 200:
            raise MlflowException(
                f"cannot read {MLMODEL_FILE_NAME} of {name} version {version}: "
                f"HTTP {response.status_code}"
            )
        return Model.from_dict(yaml.safe_load(response.text))
    if access.username is not None:
        raise MlflowException(
            f"the artifacts of {name} version {version} are not served by the tracking server "
            f"({parsed.scheme}:), so they cannot be read as the signed-in user"
        )
    with tempfile.TemporaryDirectory(prefix="oci-mlops-mlmodel-") as destination:
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}/{MLMODEL_FILE_NAME}",
            dst_path=destination,
            tracking_uri=access.tracking_uri,
            registry_uri=access.tracking_uri,
        )
        return Model.load(mlmodel)


class CsvRefusedError(ValueError):
    """The uploaded CSV cannot be scored: unreadable, or over the dashboard's caps."""


def read_batch_csv(content: bytes, *, max_rows: int, max_columns: int) -> pd.DataFrame:
    """The CSV to score, refused before it is parsed whole when it has more than ``max_columns``
    columns (its header is read first) or more than ``max_rows`` rows."""
    header = _read_csv(content, nrows=0)
    if len(header.columns) > max_columns:
        raise CsvRefusedError(
            f"the CSV has {len(header.columns)} columns; at most {max_columns} can be scored"
        )
    frame = _read_csv(content, nrows=max_rows + 1)
    if len(frame) > max_rows:
        raise CsvRefusedError(
            f"the CSV has more than {max_rows} rows; at most {max_rows} are scored at once: "
            "split it into smaller files"
        )
    return frame


def _read_csv(content: bytes, nrows: int) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(content), nrows=nrows)
    except ValueError as exc:  # pandas' parser and empty-data errors, undecodable text
        raise CsvRefusedError(f"cannot read the CSV: {first_line(str(exc))}") from exc


def score_frame(
    api: ApiClient, name: str, ref: str, frame: pd.DataFrame, batch_rows: int | None = None
) -> pd.DataFrame:
    """Score every row of ``frame`` through the API in batches; append the predictions.

    A batch is ``batch_rows`` rows, by default BATCH_ROWS or fewer for a wide frame (at most
    BATCH_VALUES values), so that no request goes over the API's body cap."""
    if frame.empty:
        raise ApiError(None, "the CSV has no rows")
    if batch_rows is None:
        batch_rows = max(1, min(BATCH_ROWS, BATCH_VALUES // max(1, len(frame.columns))))
    predictions: list[Any] = []
    versions: set[str] = set()
    for start in range(0, len(frame), batch_rows):
        chunk = frame.iloc[start : start + batch_rows]
        rows = [[_json_value(v) for v in row] for row in chunk.itertuples(index=False)]
        answer = api.predict(name, ref, {"columns": [str(c) for c in chunk.columns], "data": rows})
        predictions.extend(answer["predictions"])
        versions.add(str(answer["model_version"]))
    scored = frame.copy()
    if predictions and isinstance(predictions[0], dict):
        expanded = pd.DataFrame(predictions, index=frame.index).add_prefix(f"{PREDICTION_COLUMN}.")
        scored = pd.concat([scored, expanded], axis=1)
    else:
        scored[PREDICTION_COLUMN] = predictions
    scored["model_version"] = ",".join(sorted(versions))
    return scored


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def experiments(access: MlflowAccess) -> list[tuple[str, str]]:
    """``(experiment_id, name)`` of the active experiments the user can read, by name."""
    client = access.tracking_store()
    found: list[tuple[str, str]] = []
    token: str | None = None
    while True:
        page = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=MAX_EXPERIMENTS, page_token=token
        )
        found.extend((e.experiment_id, e.name) for e in page)
        token = page.token
        if not token or len(found) >= MAX_EXPERIMENTS:
            return sorted(found, key=lambda e: e[1])


def runs_table(access: MlflowAccess, experiment_id: str) -> pd.DataFrame:
    """The most recent runs of an experiment: identity, status, start, metrics and params."""
    client = access.tracking_store()
    rows = []
    for run in client.search_runs(
        [experiment_id],
        filter_string="",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=MAX_RUNS,
        order_by=["start_time DESC"],
    ):
        row: dict[str, Any] = {
            "run": f"{run.info.run_name or 'run'} ({run.info.run_id[:8]})",
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
        }
        row.update({f"metrics.{k}": v for k, v in sorted(run.data.metrics.items())})
        row.update({f"params.{k}": v for k, v in sorted(run.data.params.items())})
        rows.append(row)
    return pd.DataFrame(rows)


def describe_error(exc: BaseException) -> str:
    """A one-line, user-facing description of a dashboard data error."""
    if isinstance(exc, MlflowException):
        return first_line(exc.message)
    return first_line(str(exc)) if str(exc) else type(exc).__name__
