"""Input validation against MLflow signatures, output conversion and configuration parsing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from oci_mlops_app.config import (
    ApiKey,
    ApiSettings,
    ConfigError,
    DashboardSettings,
    ModelRef,
    parse_model_refs,
    parse_stage_aliases,
)
from oci_mlops_app.validation import InvalidInputError, PredictRequest, jsonable, to_frame

MIXED = Schema(
    [
        ColSpec(DataType.double, "x"),
        ColSpec(DataType.long, "n"),
        ColSpec(DataType.boolean, "flag"),
        ColSpec(DataType.string, "label"),
        ColSpec(DataType.datetime, "at"),
    ]
)
WITH_OPTIONAL = Schema([*MIXED.inputs, ColSpec(DataType.float, "extra", required=False)])
ROW = [1.5, 3, True, "a", "2026-01-02T03:04:05"]


def frame(
    body: dict[str, object], schema: Schema | None = MIXED, max_rows: int = 100
) -> pd.DataFrame:
    return to_frame(PredictRequest.model_validate(body), schema, max_rows)


def test_rows_become_typed_columns_in_signature_order() -> None:
    result = frame({"columns": ["at", "label", "flag", "n", "x"], "data": [list(reversed(ROW))]})
    assert list(result.columns) == ["x", "n", "flag", "label", "at"]
    dtypes = result.dtypes.to_dict()
    assert dtypes["x"] == np.dtype("float64")
    assert dtypes["n"] == np.dtype("int64")
    assert dtypes["flag"] == np.dtype("bool")
    assert pd.api.types.is_string_dtype(dtypes["label"])
    assert pd.api.types.is_datetime64_dtype(dtypes["at"])
    assert result.iloc[0]["n"] == 3


def test_integral_floats_are_accepted_for_integer_columns() -> None:
    assert frame({"data": [[1, 2.0, False, "b", "2026-01-01"]]})["n"].tolist() == [2]


def test_optional_columns_may_be_omitted_or_null() -> None:
    records = [
        dict(zip(["x", "n", "flag", "label", "at"], ROW, strict=True)),
        {**dict(zip(["x", "n", "flag", "label", "at"], ROW, strict=True)), "extra": None},
        {**dict(zip(["x", "n", "flag", "label", "at"], ROW, strict=True)), "extra": 2.5},
    ]
    result = frame({"records": records}, schema=WITH_OPTIONAL)
    assert result.columns.tolist() == ["x", "n", "flag", "label", "at", "extra"]
    assert result["extra"].tolist() == [None, None, 2.5]
    omitted = frame({"records": records[:1]}, schema=WITH_OPTIONAL)
    assert omitted.columns.tolist() == ["x", "n", "flag", "label", "at"]
    with pytest.raises(InvalidInputError, match="row 0 has 5 values"):
        frame({"data": [ROW]}, schema=WITH_OPTIONAL)  # positional rows carry every column


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([1.5, 3.5, True, "a", "2026-01-01"], "expected an integer (long), got 3.5"),
        ([1.5, 2**63, True, "a", "2026-01-01"], "out of range for long"),
        ([1.5, 3, "yes", "a", "2026-01-01"], "'flag' row 0: expected true/false"),
        ([1.5, 3, True, 7, "2026-01-01"], "'label' row 0: expected a string"),
        ([float("nan"), 3, True, "a", "2026-01-01"], "expected a finite number"),
        (["1.5", 3, True, "a", "2026-01-01"], "expected a number (double), got str '1.5'"),
        ([1.5, 3, True, "a", "not a date"], "column 'at': Time data not a date is not ISO8601"),
    ],
)
def test_bad_values_are_reported_by_column_and_row(row: list[object], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        frame({"data": [row]})
    assert message in str(caught.value)


def test_errors_of_several_columns_are_reported_together() -> None:
    with pytest.raises(InvalidInputError) as caught:
        frame({"data": [["a", "b", "c", 1, "2026-01-01"]]})
    text = str(caught.value)
    assert "'x' row 0" in text
    assert "'n' row 0" in text
    assert "'flag' row 0" in text
    assert "'label' row 0" in text


def test_row_limit() -> None:
    with pytest.raises(InvalidInputError, match="3 rows sent, at most 2"):
        frame({"data": [ROW] * 3}, max_rows=2)


def test_models_without_signature_take_any_rectangular_table() -> None:
    assert frame({"data": [[1, "a"], [2, "b"]]}, schema=None).shape == (2, 2)
    assert frame({"columns": ["p", "q"], "data": [[1, 2]]}, schema=None).columns.tolist() == [
        "p",
        "q",
    ]
    assert frame({"records": [{"p": 1}, {"q": 2}]}, schema=None).shape == (2, 2)
    with pytest.raises(InvalidInputError, match="row 1 has 1 values"):
        frame({"data": [[1, 2], [3]]}, schema=None)


def test_unnamed_column_signatures_take_positional_data_only() -> None:
    schema = Schema([ColSpec(DataType.double), ColSpec(DataType.double)])
    assert frame({"data": [[1.0, 2.0]]}, schema=schema).shape == (1, 2)
    with pytest.raises(InvalidInputError, match="no column names"):
        frame({"records": [{"a": 1.0}]}, schema=schema)


def test_tensor_and_unsupported_signatures_are_refused_clearly() -> None:
    tensor = Schema([TensorSpec(np.dtype("float64"), (-1, 4))])
    with pytest.raises(InvalidInputError, match="tensor-based signature"):
        frame({"data": [[1.0, 2.0, 3.0, 4.0]]}, schema=tensor)
    binary = Schema([ColSpec(DataType.binary, "blob")])
    with pytest.raises(InvalidInputError, match="blob: binary"):
        frame({"data": [["AAAA"]]}, schema=binary)


def test_jsonable_outputs() -> None:
    assert jsonable(np.array([0, 2, 1])) == [0, 2, 1]
    assert jsonable(np.array([0.5, np.nan, np.inf])) == [0.5, None, None]
    assert jsonable(pd.Series([1, 2])) == [1, 2]
    assert jsonable(pd.DataFrame({"p": [0.1, math.nan], "label": ["a", "b"]})) == [
        {"p": 0.1, "label": "a"},
        {"p": None, "label": "b"},
    ]
    assert jsonable([np.int64(3), {"k": np.float32(0.5)}]) == [3, {"k": 0.5}]
    assert jsonable("single") == ["single"]
    assert jsonable(np.array([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert jsonable(np.array(7)) == [7]
    assert jsonable(np.array(["a", "b"])) == ["a", "b"]


# -- configuration --------------------------------------------------------------------------

BASE_ENV = {
    "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000/",
    "MLFLOW_TRACKING_USERNAME": "reader",
    "MLFLOW_TRACKING_PASSWORD": "pw",
    "OCI_MLOPS_API_KEYS": "a" * 16 + ", " + "b" * 20,
    "OCI_MLOPS_SERVED_MODELS": "iris",
}


def test_api_settings_defaults() -> None:
    settings = ApiSettings.from_env(BASE_ENV)
    assert settings.mlflow.tracking_uri == "http://mlflow.internal:5000"
    assert settings.mlflow.basic_auth == ("reader", "pw")
    # bare keys (the deprecated form) are named key-1, key-2
    assert settings.api_keys == (ApiKey("key-1", "a" * 16), ApiKey("key-2", "b" * 20))
    assert settings.alias_refresh_seconds <= 30
    assert dict(settings.stage_aliases) == {"production": "champion", "staging": "challenger"}
    assert settings.preload_models == ()
    assert settings.log_level == "INFO"
    assert "a" * 16 not in repr(settings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"OCI_MLOPS_API_KEYS": ""}, "at least one API key"),
        ({"OCI_MLOPS_API_KEYS": "short"}, "at least 16 characters"),
        ({"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, "must be an http(s) URL"),
        ({"MLFLOW_TRACKING_PASSWORD": ""}, "set both MLFLOW_TRACKING_USERNAME"),
        ({"OCI_MLOPS_ALIAS_REFRESH_SECONDS": "45"}, "<= 30"),
        ({"OCI_MLOPS_ALIAS_REFRESH_SECONDS": "soon"}, "must be a number"),
        ({"OCI_MLOPS_MAX_ROWS": "0"}, "OCI_MLOPS_MAX_ROWS must be >= 1"),
        ({"OCI_MLOPS_LOG_LEVEL": "chatty"}, "OCI_MLOPS_LOG_LEVEL must be one of"),
        ({"OCI_MLOPS_PRELOAD_MODELS": "@champion"}, "invalid entry"),
        ({"OCI_MLOPS_STAGE_ALIASES": "Production"}, "use Stage=alias"),
    ],
)
def test_api_settings_errors(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiSettings.from_env({**BASE_ENV, **change})
    assert message in str(caught.value)


def test_model_ref_and_stage_parsing() -> None:
    assert parse_model_refs("iris, other@3 ,x@challenger") == (
        ModelRef("iris", "champion"),
        ModelRef("other", "3"),
        ModelRef("x", "challenger"),
    )
    assert dict(parse_stage_aliases("Production=prod, Staging=candidate")) == {
        "production": "prod",
        "staging": "candidate",
    }


def test_dashboard_settings() -> None:
    env = {**BASE_ENV, "OCI_MLOPS_API_URL": "http://127.0.0.1:8000/", "OCI_MLOPS_API_KEY": "k" * 16}
    settings = DashboardSettings.from_env(env)
    assert settings.api_url == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="OCI_MLOPS_API_KEY"):
        DashboardSettings.from_env({**env, "OCI_MLOPS_API_KEY": " "})
