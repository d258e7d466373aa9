"""The Streamlit dashboard, driven by Streamlit's AppTest against the real MLflow and API."""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator

import pandas as pd
import pytest
import streamlit as st
from sklearn.datasets import load_iris
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from oci_mlops_app.cli import DASHBOARD_SCRIPT
from oci_mlops_app.dashboard import data
from tests import lab
from tests.conftest import (
    BROKEN_MODEL,
    EXPERIMENT,
    FAILING_MODEL,
    FEATURES,
    MODEL,
    SERVED_MODELS,
    UNSERVED_MODEL,
    ApiServer,
    Registered,
    Unserved,
    log_entries,
    wait_for_log_entries,
)

SIGN_IN = "FormSubmitter:sign_in-Sign in"


@pytest.fixture
def dashboard_env(
    monkeypatch: pytest.MonkeyPatch, mlflow_lab: lab.MlflowLab, api_server: ApiServer
) -> Iterator[None]:
    """The dashboard's settings: MLflow sign-in (the default) and the API's "dashboard" key.

    The test process's own MLflow variables (the admin) stay set: what a signed-in user sees
    must come from that user's credentials only.
    """
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_lab.uri)
    monkeypatch.setenv("OCI_MLOPS_API_URL", api_server.url)
    monkeypatch.setenv("OCI_MLOPS_API_KEY", api_server.keys[1])
    monkeypatch.delenv("OCI_MLOPS_DASHBOARD_AUTH", raising=False)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def reader(mlflow_lab: lab.MlflowLab) -> tuple[str, str]:
    """The read-only MLflow user (READ on the iris experiment and the test models)."""
    return lab.READER_USER, mlflow_lab.reader_password


def start_dashboard() -> AppTest:
    app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=90)
    app.run()
    assert not app.exception, app.exception
    return app


def submit_sign_in(app: AppTest, username: str, password: str) -> AppTest:
    app.text_input(key="sign_in_username").input(username)
    app.text_input(key="sign_in_password").input(password)
    app.button(key=SIGN_IN).click().run()
    assert not app.exception, app.exception
    return app


def run_dashboard(user: tuple[str, str]) -> AppTest:
    """The dashboard, signed in as ``user`` (name, password)."""
    app = submit_sign_in(start_dashboard(), *user)
    assert not app.error, [e.value for e in app.error]
    return app


def tab_frames(app: AppTest, tab: int) -> list[pd.DataFrame]:
    """The tables shown in one tab (0 models, 1 predict, 2 experiments), top to bottom."""
    return [element.value for element in app.tabs[tab].dataframe]


def test_models_tab_shows_versions_aliases_and_run_metrics(
    dashboard_env: None, registered: Registered, reader: tuple[str, str]
) -> None:
    app = run_dashboard(reader)
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


def test_the_prediction_form_offers_only_the_served_models(
    dashboard_env: None, registered: Registered, unserved: Unserved, reader: tuple[str, str]
) -> None:
    # the reader may read the unserved model too: the registry tab shows it, the form does not
    app = run_dashboard(reader)
    models, _ = tab_frames(app, 0)
    assert UNSERVED_MODEL in set(models["model"])
    offered = set(app.selectbox(key="predict_model").options)
    assert {MODEL, BROKEN_MODEL, FAILING_MODEL} <= offered <= set(SERVED_MODELS)
    # its owner reads only that model: nothing to score with
    app = run_dashboard(unserved.user)
    assert [i.value for i in app.tabs[1].info] == [
        "No registered model that you can read is served by the API."
    ]
    assert "predict_model" not in [s.key for s in app.selectbox]
    assert not unserved.marker.exists()


def _choose_model(app: AppTest, name: str, ref: str) -> AppTest:
    app.selectbox(key="predict_model").set_value(name).run()
    app.selectbox(key="predict_ref").set_value(ref).run()
    assert not app.exception, app.exception
    return app


def test_single_prediction_form_is_built_from_the_signature(
    dashboard_env: None, reader: tuple[str, str], api_server: ApiServer
) -> None:
    app = _choose_model(run_dashboard(reader), MODEL, "champion")
    labels = [n.label for n in app.number_input]
    assert labels == FEATURES
    for feature, value in zip(FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True):
        app.number_input(key=f"input:{feature}").set_value(value)

    def prediction(e: dict[str, object]) -> bool:
        return e.get("route") == "/predict/{name}/{ref}" and e.get("status") == 200

    before = len([e for e in log_entries(api_server.log_path) if prediction(e)])
    app.button(key="FormSubmitter:single_prediction-Predict").click().run()
    assert not app.error, [e.value for e in app.error]
    assert [s.value for s in app.success] == [f"Prediction: 2 ({MODEL} version 1)"]
    # the prediction went to the API with the dashboard's own key, named "dashboard"
    # (its access line is written after the response: wait for it)
    predictions = wait_for_log_entries(api_server.log_path, prediction, before + 1)
    assert len(predictions) == before + 1
    assert predictions[-1]["api_key"] == "dashboard"


def test_batch_csv_scoring_returns_a_downloadable_table(
    dashboard_env: None, reader: tuple[str, str]
) -> None:
    iris = load_iris(as_frame=True)
    features = iris.data.iloc[::5]
    app = _choose_model(run_dashboard(reader), MODEL, "challenger")
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


def test_batch_csv_with_wrong_columns_shows_the_api_reason(
    dashboard_env: None, reader: tuple[str, str]
) -> None:
    app = _choose_model(run_dashboard(reader), MODEL, "champion")
    app.file_uploader(key="batch_csv").set_value(
        ("bad.csv", b"sepal length (cm),colour\n5.1,blue\n", "text/csv")
    ).run()
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "HTTP 422" in errors[0]
    assert "unknown columns ['colour']" in errors[0]


@pytest.mark.parametrize(
    ("caps", "csv", "message"),
    [
        (
            {},
            (",".join(f"c{i}" for i in range(1001)) + "\n" + ",".join(["1"] * 1001)).encode(),
            "Cannot score this CSV: the CSV has 1001 columns; at most 1000 can be scored.",
        ),
        (
            {"OCI_MLOPS_DASHBOARD_MAX_ROWS": "20"},
            load_iris(as_frame=True).data.iloc[:21].to_csv(index=False).encode(),
            "Cannot score this CSV: the CSV has more than 20 rows; at most 20 are scored at once: "
            "split it into smaller files.",
        ),
        (
            {"OCI_MLOPS_DASHBOARD_MAX_UPLOAD_MB": "1"},
            b"sepal length (cm)\n" + b"5.1\n" * 300_000,
            "The CSV is over 1 MB: split it into smaller files.",
        ),
        ({}, b"", "Cannot score this CSV: cannot read the CSV: No columns to parse from file."),
    ],
    ids=["columns", "rows", "size", "empty"],
)
def test_batch_csv_over_a_cap_is_refused_before_any_api_call(
    dashboard_env: None,
    reader: tuple[str, str],
    api_server: ApiServer,
    monkeypatch: pytest.MonkeyPatch,
    caps: dict[str, str],
    csv: bytes,
    message: str,
) -> None:
    for name, value in caps.items():
        monkeypatch.setenv(name, value)
    app = _choose_model(run_dashboard(reader), MODEL, "champion")
    requests_before = len(log_entries(api_server.log_path))
    app.file_uploader(key="batch_csv").set_value(("big.csv", csv, "text/csv")).run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [message]
    assert not tab_frames(app, 1)
    assert len(log_entries(api_server.log_path)) == requests_before


def test_the_upload_cap_is_streamlits_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's command sets Streamlit's server-side upload cap (its default: 200 MB)."""
    from streamlit.web import cli as streamlit_cli

    from oci_mlops_app import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("OCI_MLOPS_API_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("OCI_MLOPS_API_KEY", "k" * 16)
    monkeypatch.setenv("OCI_MLOPS_DASHBOARD_MAX_UPLOAD_MB", "7")
    argv: list[str] = []

    def streamlit_main() -> int:
        argv.extend(cli.sys.argv)
        return 0

    monkeypatch.setattr(streamlit_cli, "main", streamlit_main)
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    monkeypatch.setattr(cli.sys, "argv", list(cli.sys.argv))
    with pytest.raises(SystemExit):
        cli.dashboard_main([])
    assert "--server.maxUploadSize=7" in argv


def test_score_frame_keeps_wide_batches_under_the_body_cap() -> None:
    """1000 rows of a 200-column CSV go in batches of 250 rows (50,000 values)."""
    sent: list[int] = []

    class Recorder(data.ApiClient):
        def predict(self, name: str, ref: str, payload: dict[str, object]) -> dict[str, object]:
            rows = payload["data"]
            assert isinstance(rows, list)
            sent.append(len(json.dumps(payload)))
            return {"predictions": [0] * len(rows), "model_version": "1"}

    frame = pd.DataFrame([[0.123456789] * 200] * 1000, columns=[f"c{i}" for i in range(200)])
    scored = data.score_frame(Recorder("http://unused", "k"), MODEL, "champion", frame)
    assert len(scored) == 1000
    assert len(sent) == 4
    assert max(sent) < 2 * 1024 * 1024


def test_experiments_tab_lists_runs_and_compares_a_metric(
    dashboard_env: None, reader: tuple[str, str]
) -> None:
    app = run_dashboard(reader)
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
    dashboard_env: None, monkeypatch: pytest.MonkeyPatch, mlflow_lab: lab.MlflowLab
) -> None:
    for key, value in mlflow_lab.env(reader=True).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OCI_MLOPS_DASHBOARD_AUTH", "none")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{lab.free_port()}")
    app = start_dashboard()
    errors = [e.value for e in app.error]
    assert any(e.startswith("Cannot read the model registry: ") for e in errors), errors
    assert any(e.startswith("Cannot read the experiments: ") for e in errors), errors


def test_mlflow_down_at_sign_in_is_shown_not_raised(
    dashboard_env: None, monkeypatch: pytest.MonkeyPatch, reader: tuple[str, str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{lab.free_port()}")
    app = submit_sign_in(start_dashboard(), *reader)
    assert [e.value for e in app.error] == [
        "Sign-in is not possible right now: MLflow cannot be reached."
    ]
    assert not app.tabs


# -- sign-in --------------------------------------------------------------------------------


def test_without_sign_in_nothing_is_shown_but_the_form(dashboard_env: None) -> None:
    app = start_dashboard()
    assert [t.label for t in app.text_input] == ["Username", "Password"]
    assert app.text_input(key="sign_in_password").proto.type == TextInputProto.PASSWORD
    assert not app.tabs
    assert not app.dataframe
    assert not app.error


def test_wrong_password_is_refused_with_a_generic_error_and_a_backoff(
    dashboard_env: None, reader: tuple[str, str]
) -> None:
    app = submit_sign_in(start_dashboard(), reader[0], "not-the-password")
    assert [e.value for e in app.error] == ["Sign-in failed: unknown user or wrong password."]
    assert not app.tabs
    assert "mlflow_user" not in app.session_state
    # an unknown user gets the same answer; at once, the session must wait first (1 s)
    app = submit_sign_in(app, "no-such-user", "whatever-password")
    assert [e.value for e in app.error] == ["Too many failed sign-ins: try again in 1 s."]
    time.sleep(1.1)
    app = submit_sign_in(app, "no-such-user", "whatever-password")
    assert [e.value for e in app.error] == ["Sign-in failed: unknown user or wrong password."]
    app = submit_sign_in(app, *reader)  # the backoff has doubled to 2 s
    assert [e.value for e in app.error] == ["Too many failed sign-ins: try again in 2 s."]
    assert not app.tabs


def test_sign_in_shows_the_models_and_sign_out_clears_them(
    dashboard_env: None, reader: tuple[str, str]
) -> None:
    app = run_dashboard(reader)
    assert app.session_state["mlflow_user"].username == reader[0]
    assert "sign_in_password" not in app.session_state
    assert reader[1] not in repr(app.session_state["mlflow_user"])
    models = tab_frames(app, 0)[0]
    assert MODEL in set(models["model"])
    assert f"Signed in as **{reader[0]}**" in [m.value for m in app.sidebar.markdown]
    app.button(key="sign_out").click().run()
    assert not app.exception
    assert not app.tabs
    assert not app.dataframe
    assert "mlflow_user" not in app.session_state
    assert [t.label for t in app.text_input] == ["Username", "Password"]


def test_each_user_sees_what_mlflow_lets_them_see(
    dashboard_env: None, mlflow_lab: lab.MlflowLab, registered: Registered
) -> None:
    username = f"no-grants-{secrets.token_hex(4)}"
    password = mlflow_lab.server.create_user(username)
    app = run_dashboard((username, password))
    assert not app.dataframe
    infos = [i.value for i in app.info]
    assert "No registered model is visible to your MLflow user." in infos
    assert "No experiment is visible to your MLflow user." in infos


def test_without_sign_in_mode_reads_mlflow_as_the_dashboard_user(
    dashboard_env: None, monkeypatch: pytest.MonkeyPatch, mlflow_lab: lab.MlflowLab
) -> None:
    for key, value in mlflow_lab.env(reader=True).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OCI_MLOPS_DASHBOARD_AUTH", "none")
    app = start_dashboard()
    assert not app.error, [e.value for e in app.error]
    assert not app.text_input
    models = tab_frames(app, 0)[0]
    assert MODEL in set(models["model"])
    assert app.selectbox(key="experiment").options == [EXPERIMENT]
