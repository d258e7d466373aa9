"""Streamlit dashboard: registered models, predictions through the serving API, experiments.

Run with ``oci-mlops-dashboard`` (or ``streamlit run`` on this file). Settings: see README.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from oci_mlops_app.config import ConfigError, DashboardSettings
from oci_mlops_app.dashboard import data
from oci_mlops_app.registry import ModelInfo

CACHE_TTL_SECONDS = 30
# Failed sign-ins in one browser session: wait 1 s after the first, then 2, 4, ... up to 30 s.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# st.session_state keys of the sign-in state (server-side memory of this browser session only)
USER_KEY = "mlflow_user"
FAILURES_KEY = "sign_in_failures"
LOCKED_UNTIL_KEY = "sign_in_locked_until"

logger = logging.getLogger("oci_mlops_app.dashboard")

# The cached readers are keyed by the tracking URI and the user's name; the credentials
# themselves (``_access``, not hashed) are not part of the key. One user's data is never shown
# to another user, and a session reaches them only after its sign-in was verified.


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_models(tracking_uri: str, user: str, _access: data.MlflowAccess) -> list[ModelInfo]:
    return data.list_models(_access)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_versions_table(
    tracking_uri: str, user: str, _access: data.MlflowAccess, models: list[ModelInfo]
) -> pd.DataFrame:
    return data.versions_table(_access, models)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_input_columns(
    tracking_uri: str, user: str, _access: data.MlflowAccess, name: str, version: str
) -> list[data.InputColumn] | None:
    return data.input_columns(_access, name, version)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_served_models(api_url: str, _api_key: str) -> frozenset[str]:
    return data.ApiClient(api_url, _api_key).served_models()


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_experiments(
    tracking_uri: str, user: str, _access: data.MlflowAccess
) -> list[tuple[str, str]]:
    return data.experiments(_access)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_runs(
    tracking_uri: str, user: str, _access: data.MlflowAccess, experiment_id: str
) -> pd.DataFrame:
    return data.runs_table(_access, experiment_id)


@dataclass(frozen=True)
class Reader:
    """Whose MLflow view this session shows: the arguments of the cached readers."""

    access: data.MlflowAccess

    @property
    def key(self) -> tuple[str, str, data.MlflowAccess]:
        return (self.access.tracking_uri, self.access.username or "", self.access)


def models_tab(reader: Reader, models: list[ModelInfo]) -> None:
    if not models:
        st.info("No registered model is visible to your MLflow user.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": m.name,
                    "aliases": ", ".join(f"{a} → v{v}" for a, v in sorted(m.aliases.items())),
                    "versions": len(m.versions),
                    "description": m.description,
                }
                for m in models
            ]
        ),
        hide_index=True,
    )
    st.subheader("Versions and the metrics of their runs")
    st.dataframe(cached_versions_table(*reader.key, models), hide_index=True)


def predict_tab(settings: DashboardSettings, reader: Reader, models: list[ModelInfo]) -> None:
    # Only the models the API serves (its operator's list): nothing of another model is read.
    try:
        served = cached_served_models(settings.api_url, settings.api_key)
    except data.ApiError as exc:
        st.error(f"Cannot ask the serving API which models it serves: {exc}")
        return
    models = [m for m in models if m.name in served]
    if not models:
        st.info("No registered model that you can read is served by the API.")
        return
    by_name = {m.name: m for m in models}
    name = st.selectbox("Model", list(by_name), key="predict_model")
    model = by_name[name]
    refs = [*sorted(model.aliases), *(v.version for v in model.versions)]
    if not refs:
        st.info("This model has no version yet.")
        return
    ref = st.selectbox("Alias or version", refs, key="predict_ref")
    version = model.aliases.get(ref, ref)
    api = data.ApiClient(settings.api_url, settings.api_key)

    st.subheader("Single prediction")
    columns = cached_input_columns(*reader.key, name, version)
    if columns is None:
        st.info("This version has no column signature: use batch scoring with a CSV.")
    else:
        with st.form("single_prediction"):
            values = {column.name: _input_widget(column) for column in columns}
            submitted = st.form_submit_button("Predict")
        if submitted:
            try:
                answer = api.predict(name, ref, {"records": [values]})
            except data.ApiError as exc:
                st.error(f"The API refused the prediction: {exc}")
            else:
                st.success(
                    f"Prediction: {answer['predictions'][0]} "
                    f"({answer['model_name']} version {answer['model_version']})"
                )

    st.subheader("Batch scoring (CSV)")
    upload = st.file_uploader(
        "CSV file with a header row naming the model's input columns "
        f"(at most {settings.max_upload_mb} MB, {settings.max_rows} rows, "
        f"{settings.max_columns} columns)",
        type=["csv"],
        key="batch_csv",
        max_upload_size=settings.max_upload_mb,
    )
    if upload is None:
        return
    # Streamlit's server refuses a bigger upload (server.maxUploadSize, set by the dashboard's
    # command from the same setting); checked here too for any other way in.
    if upload.size > settings.max_upload_mb * 1024 * 1024:
        st.error(f"The CSV is over {settings.max_upload_mb} MB: split it into smaller files.")
        return
    try:
        frame = data.read_batch_csv(
            upload.getvalue(), max_rows=settings.max_rows, max_columns=settings.max_columns
        )
    except data.CsvRefusedError as exc:
        st.error(f"Cannot score this CSV: {exc}.")
        return
    try:
        scored = data.score_frame(api, name, ref, frame)
    except data.ApiError as exc:
        st.error(f"The API refused the batch: {exc}")
        return
    st.dataframe(scored, hide_index=True)
    st.download_button(
        "Download predictions (CSV)",
        scored.to_csv(index=False).encode(),
        file_name=f"{name}-{ref}-predictions.csv",
        mime="text/csv",
        on_click="ignore",
        key="batch_download",
    )


def _input_widget(column: data.InputColumn) -> float | int | bool | str:
    label = column.name if column.required else f"{column.name} (optional)"
    key = f"input:{column.name}"
    if column.type in ("double", "float"):
        return float(st.number_input(label, value=0.0, format="%.4f", key=key))
    if column.type in ("long", "integer"):
        return int(st.number_input(label, value=0, step=1, key=key))
    if column.type == "boolean":
        return bool(st.checkbox(label, key=key))
    return str(st.text_input(label, key=key))


def experiments_tab(reader: Reader) -> None:
    experiments = cached_experiments(*reader.key)
    if not experiments:
        st.info("No experiment is visible to your MLflow user.")
        return
    names = dict(experiments)
    experiment_id = st.selectbox(
        "Experiment", list(names), format_func=names.__getitem__, key="experiment"
    )
    runs = cached_runs(*reader.key, experiment_id)
    if runs.empty:
        st.info("This experiment has no run.")
        return
    st.dataframe(runs, hide_index=True)
    metric_columns = [c for c in runs.columns if c.startswith("metrics.")]
    if not metric_columns:
        return
    metric = st.selectbox(
        "Metric to compare",
        metric_columns,
        format_func=lambda c: c.removeprefix("metrics."),
        key="compare_metric",
    )
    st.bar_chart(runs.dropna(subset=[metric]), x="run", y=metric, horizontal=True)


def sign_in(settings: DashboardSettings) -> Reader | None:
    """The signed-in user's reader, or None after showing the sign-in form.

    The password is checked once against MLflow and then kept, with the name, in this browser
    session's server-side state only (never in a URL or a cookie) to read MLflow as that user.
    """
    if settings.auth == "none":
        st.caption(
            "Sign-in disabled (OCI_MLOPS_DASHBOARD_AUTH=none): MLflow is read as the "
            "dashboard's own user."
        )
        return Reader(data.MlflowAccess(settings.mlflow.tracking_uri))
    user: data.MlflowAccess | None = st.session_state.get(USER_KEY)
    if user is not None:
        with st.sidebar:
            st.write(f"Signed in as **{user.username}**")
            if st.button("Sign out", key="sign_out"):
                logger.info("sign-out", extra={"user": user.username})
                st.session_state.clear()
                st.rerun()
        return Reader(user)

    st.subheader("Sign in")
    st.caption("With your MLflow username and password.")
    with st.form("sign_in"):
        username = st.text_input("Username", key="sign_in_username", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="sign_in_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in")
    if submitted:
        _try_sign_in(settings, username.strip(), password)
    return None


def _browser_address(settings: DashboardSettings) -> str | None:
    """The address this browser session connects from (through the edge: what it forwarded)."""
    return data.browser_address(
        st.context.ip_address,
        st.context.headers.get_all("X-Forwarded-For"),
        settings.forwarded_allow_ips,
    )


def _try_sign_in(settings: DashboardSettings, username: str, password: str) -> None:
    wait = st.session_state.get(LOCKED_UNTIL_KEY, 0.0) - time.monotonic()
    if wait > 0:
        st.error(f"Too many failed sign-ins: try again in {math.ceil(wait)} s.")
        return
    client = _browser_address(settings)
    try:
        if not username or not password:
            raise data.SignInRefusedError
        verified = data.verify_mlflow_user(
            settings.mlflow.tracking_uri,
            username,
            password,
            settings.mlflow.timeout_seconds,
            client_address=client,
        )
    except data.SignInRefusedError:
        failures = st.session_state.get(FAILURES_KEY, 0) + 1
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
        st.session_state[FAILURES_KEY] = failures
        st.session_state[LOCKED_UNTIL_KEY] = time.monotonic() + delay
        logger.warning(
            "sign-in refused", extra={"user": username, "failures": failures, "client": client}
        )
        st.error("Sign-in failed: unknown user or wrong password.")
        return
    except data.SignInThrottledError as exc:
        # MLflow's limit for this browser's address (not checked against the password)
        st.session_state[LOCKED_UNTIL_KEY] = time.monotonic() + exc.retry_after_seconds
        logger.warning("sign-in throttled by MLflow", extra={"user": username, "client": client})
        st.error(
            f"Too many failed sign-ins from your address: try again in {exc.retry_after_seconds} s."
        )
        return
    except data.SignInUnavailableError as exc:
        cause = f": {data.describe_error(exc.__cause__)}" if exc.__cause__ else ""
        logger.error(
            "sign-in unavailable: %s%s", exc, cause, extra={"user": username, "client": client}
        )
        st.error(f"Sign-in is not possible right now: {exc}.")
        return
    logger.info("sign-in", extra={"user": verified, "client": client})
    for key in (FAILURES_KEY, LOCKED_UNTIL_KEY, "sign_in_username", "sign_in_password"):
        st.session_state.pop(key, None)
    st.session_state[USER_KEY] = data.MlflowAccess(settings.mlflow.tracking_uri, verified, password)
    st.rerun()


def main() -> None:
    st.set_page_config(page_title="OCI MLOps dashboard", layout="wide")
    st.title("OCI MLOps dashboard")
    try:
        settings = DashboardSettings.from_env()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()
    reader = sign_in(settings)
    if reader is None:
        st.stop()
    assert reader is not None
    st.caption(f"MLflow: {settings.mlflow.tracking_uri} · serving API: {settings.api_url}")
    if st.button("Reload from MLflow", key="reload"):
        st.cache_data.clear()
    models_view, predict_view, experiments_view = st.tabs(
        ["Registered models", "Predict", "Experiments"]
    )
    try:
        models = cached_models(*reader.key)
    except Exception as exc:  # any MLflow failure is shown, not raised
        _signed_out_if_refused(exc)
        st.error(f"Cannot read the model registry: {data.describe_error(exc)}")
        models = []
    with models_view:
        _shown_errors("Cannot read the registered models", models_tab, reader, models)
    with predict_view:
        _shown_errors("Cannot prepare the prediction form", predict_tab, settings, reader, models)
    with experiments_view:
        _shown_errors("Cannot read the experiments", experiments_tab, reader)


def _signed_out_if_refused(exc: Exception) -> None:
    """MLflow no longer accepts the signed-in user's credentials: back to the sign-in form."""
    if data.is_unauthenticated(exc) and USER_KEY in st.session_state:
        st.session_state.clear()
        st.warning("MLflow refused your credentials (changed password?): please sign in again.")
        st.button("Sign in again", key="sign_in_again")
        st.stop()


def _shown_errors(what: str, render: Callable[..., None], *args: Any) -> None:
    """Run one tab; an MLflow or network failure is shown in the tab, not raised."""
    try:
        render(*args)
    except Exception as exc:
        _signed_out_if_refused(exc)
        st.error(f"{what}: {data.describe_error(exc)}")


main()
