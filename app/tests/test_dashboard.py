"""The Streamlit dashboard, driven by Streamlit's AppTest against the real MLflow and API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
import streamlit as st
from sklearn.datasets import load_iris
from streamlit.testing.v1 import AppTest

from oci_mlops_app.cli import DASHBOARD_SCRIPT
from oci_mlops_app.dashboard import data
from tests import lab
from tests.conftest import EXPERIMENT, FEATURES, MODEL, ApiServer, Registered


@pytest.fixture
def dashboard_env(
    monkeypatch: pytest.MonkeyPatch, mlflow_lab: lab.MlflowLab, api_server: ApiServer
) -> Iterator[None]:
    """The dashboard's settings: the read-only MLflow user and the API's second key."""
    for key, value in mlflow_lab.env(reader=True).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OCI_MLOPS_API_URL", api_server.url)
    monkeypatch.setenv("OCI_MLOPS_API_KEY", api_server.keys[1])
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def run_dashboard() -> AppTest:
    app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=90)
    app.run()
    assert not app.exception, app.exception
    return app


def tab_frames(app: AppTest, tab: int) -> list[pd.DataFrame]:
    """The tables shown in one tab (0 models, 1 predict, 2 experiments), top to bottom."""
    return [element.value for element in app.tabs[tab].dataframe]


def test_models_tab_shows_versions_aliases_and_run_metrics(
    dashboard_env: None, registered: Registered
) -> None:
    app = run_dashboard()
    assert [tab.label for tab in app.tabs] == ["Registered models", "Predict", "Experiments"]
    assert not app.error, [e.value for e in app.error]
    models, versions = tab_frames(app, 0)
    iris = models.set_index("model").loc[MODEL]
    assert "champion → v1" in iris["aliases"]
    assert iris["versions"] >= 2
    champion = versions[(versions["model"] == MODEL) & (versions["version"] == 1)].iloc[0]
    assert champion["aliases"] == "champion"
    assert champion["run_id"] == registered.champion.run_id
    assert 0.9 <= champion["metric: accuracy"] <= 1.0
    assert "metric: f1_macro" in versions.columns


def _choose_model(app: AppTest, name: str, ref: str) -> AppTest:
    app.selectbox(key="predict_model").set_value(name).run()
    app.selectbox(key="predict_ref").set_value(ref).run()
    assert not app.exception, app.exception
    return app


def test_single_prediction_form_is_built_from_the_signature(dashboard_env: None) -> None:
    app = _choose_model(run_dashboard(), MODEL, "champion")
    labels = [n.label for n in app.number_input]
    assert labels == FEATURES
    for feature, value in zip(FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True):
        app.number_input(key=f"input:{feature}").set_value(value)
    app.button(key="FormSubmitter:single_prediction-Predict").click().run()
    assert not app.error, [e.value for e in app.error]
    assert [s.value for s in app.success] == [f"Prediction: 2 ({MODEL} version 1)"]


def test_batch_csv_scoring_returns_a_downloadable_table(dashboard_env: None) -> None:
    iris = load_iris(as_frame=True)
    features = iris.data.iloc[::5]
    app = _choose_model(run_dashboard(), MODEL, "challenger")
    app.file_uploader(key="batch_csv").set_value(
        ("iris.csv", features.to_csv(index=False).encode(), "text/csv")
    ).run()
    assert not app.error, [e.value for e in app.error]
    (result,) = tab_frames(app, 1)
    assert list(result.columns) == [*FEATURES, "prediction", "model_version"]
    assert len(result) == len(features)
    assert set(result["model_version"]) == {"2"}
    accuracy = (result["prediction"].to_numpy() == iris.target.iloc[::5].to_numpy()).mean()
    assert accuracy > 0.8
    assert [b.label for b in app.get("download_button")] == ["Download predictions (CSV)"]


def test_batch_csv_with_wrong_columns_shows_the_api_reason(dashboard_env: None) -> None:
    app = _choose_model(run_dashboard(), MODEL, "champion")
    app.file_uploader(key="batch_csv").set_value(
        ("bad.csv", b"sepal length (cm),colour\n5.1,blue\n", "text/csv")
    ).run()
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "HTTP 422" in errors[0]
    assert "unknown columns ['colour']" in errors[0]


def test_experiments_tab_lists_runs_and_compares_a_metric(dashboard_env: None) -> None:
    app = run_dashboard()
    experiment = app.selectbox(key="experiment")
    assert experiment.options == [EXPERIMENT]  # the only experiment the reader may see
    (runs,) = tab_frames(app, 2)
    assert len(runs) >= 4
    assert {"metrics.accuracy", "params.C"} <= set(runs.columns)
    metric = app.selectbox(key="compare_metric")
    assert "accuracy" in metric.options
    metric.set_value("metrics.f1_macro").run()
    assert not app.exception
    (chart,) = [e for e in app.tabs[2].children.values() if e.type == "vega_lite_chart"]
    spec = json.loads(chart.proto.spec)
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["title"] == "metrics.f1_macro"
    assert spec["encoding"]["y"]["field"] == "run"


def test_missing_configuration_is_shown_not_raised(
    dashboard_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OCI_MLOPS_API_KEY")
    app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=60).run()
    assert not app.exception
    assert "OCI_MLOPS_API_KEY" in app.error[0].value


def test_score_frame_batches_through_the_api(api_server: ApiServer) -> None:
    iris = load_iris(as_frame=True).data
    api = data.ApiClient(api_server.url, api_server.keys[1])
    scored = data.score_frame(api, MODEL, "champion", iris, batch_rows=40)
    assert len(scored) == 150
    assert scored["prediction"].isin([0, 1, 2]).all()
    round_trip = pd.read_csv(io.StringIO(scored.to_csv(index=False)))
    assert round_trip.shape == scored.shape


def test_mlflow_down_is_shown_not_raised(
    dashboard_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{lab.free_port()}")
    app = run_dashboard()
    errors = [e.value for e in app.error]
    assert any(e.startswith("Cannot read the model registry: ") for e in errors), errors
    assert any(e.startswith("Cannot read the experiments: ") for e in errors), errors
