"""Streamlit dashboard: registered models, predictions through the serving API, experiments.

Run with ``oci-mlops-dashboard`` (or ``streamlit run`` on this file). Settings: see README.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from oci_mlops_app.config import ConfigError, DashboardSettings
from oci_mlops_app.dashboard import data
from oci_mlops_app.registry import ModelInfo

CACHE_TTL_SECONDS = 30


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_models(tracking_uri: str) -> list[ModelInfo]:
    return data.list_models(tracking_uri)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_versions_table(tracking_uri: str, models: list[ModelInfo]) -> pd.DataFrame:
    return data.versions_table(tracking_uri, models)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_input_columns(
    tracking_uri: str, name: str, version: str
) -> list[data.InputColumn] | None:
    return data.input_columns(tracking_uri, name, version)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_experiments(tracking_uri: str) -> list[tuple[str, str]]:
    return data.experiments(tracking_uri)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def cached_runs(tracking_uri: str, experiment_id: str) -> pd.DataFrame:
    return data.runs_table(tracking_uri, experiment_id)


def models_tab(settings: DashboardSettings, models: list[ModelInfo]) -> None:
    if not models:
        st.info("No registered model is visible to this dashboard's MLflow user.")
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
    st.dataframe(cached_versions_table(settings.mlflow.tracking_uri, models), hide_index=True)


def predict_tab(settings: DashboardSettings, models: list[ModelInfo]) -> None:
    if not models:
        st.info("No registered model to score with.")
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
    columns = cached_input_columns(settings.mlflow.tracking_uri, name, version)
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
        "CSV file with a header row naming the model's input columns",
        type=["csv"],
        key="batch_csv",
    )
    if upload is None:
        return
    try:
        frame = pd.read_csv(io.BytesIO(upload.getvalue()))
    except (ValueError, pd.errors.ParserError) as exc:
        st.error(f"Cannot read the CSV: {exc}")
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


def experiments_tab(settings: DashboardSettings) -> None:
    experiments = cached_experiments(settings.mlflow.tracking_uri)
    if not experiments:
        st.info("No experiment is visible to this dashboard's MLflow user.")
        return
    names = dict(experiments)
    experiment_id = st.selectbox(
        "Experiment", list(names), format_func=names.__getitem__, key="experiment"
    )
    runs = cached_runs(settings.mlflow.tracking_uri, experiment_id)
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


def main() -> None:
    st.set_page_config(page_title="OCI MLOps dashboard", layout="wide")
    st.title("OCI MLOps dashboard")
    try:
        settings = DashboardSettings.from_env()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()
    st.caption(f"MLflow: {settings.mlflow.tracking_uri} · serving API: {settings.api_url}")
    if st.button("Reload from MLflow", key="reload"):
        st.cache_data.clear()
    models_view, predict_view, experiments_view = st.tabs(
        ["Registered models", "Predict", "Experiments"]
    )
    try:
        models = cached_models(settings.mlflow.tracking_uri)
    except Exception as exc:  # any MLflow failure is shown, not raised
        st.error(f"Cannot read the model registry: {data.describe_error(exc)}")
        models = []
    with models_view:
        _shown_errors("Cannot read the registered models", models_tab, settings, models)
    with predict_view:
        _shown_errors("Cannot prepare the prediction form", predict_tab, settings, models)
    with experiments_view:
        _shown_errors("Cannot read the experiments", experiments_tab, settings)


def _shown_errors(what: str, render: Callable[..., None], *args: Any) -> None:
    """Run one tab; an MLflow or network failure is shown in the tab, not raised."""
    try:
        render(*args)
    except Exception as exc:
        st.error(f"{what}: {data.describe_error(exc)}")


main()
