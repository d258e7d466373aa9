"""Input validation against MLflow signatures, output conversion and configuration parsing."""

from __future__ import annotations

import json
import math
import time

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
from oci_mlops_app.validation import (
    InputLimits,
    InvalidInputError,
    MalformedBodyError,
    PredictRequest,
    jsonable,
    parse_request,
    request_schema,
    to_frame,
)

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


LIMITS = InputLimits(max_rows=100, max_columns=10)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [[1]] * 101}, "101 rows sent, at most 100 are accepted"),
        ({"records": [{}] * 101}, "101 rows sent, at most 100 are accepted"),
        ({"columns": list("abcdefghijk"), "data": [[1]]}, "11 columns sent, at most 10 are"),
        ({"data": [[1], [1] * 11]}, "row 1 has 11 columns, at most 10 are accepted"),
        ({"records": [dict.fromkeys("abcdefghijk", 1)]}, "record 0 has 11 columns, at most 10"),
    ],
)
def test_parse_request_caps_rows_and_columns(body: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_request(json.dumps(body).encode(), LIMITS)


@pytest.mark.parametrize(
    ("body", "error_type", "loc"),
    [
        (b"", "missing", ["body"]),
        (b"{not json", "json_invalid", ["body", 1]),
        (b'{"data": "\xff"}', "json_invalid", ["body", 10]),
        (b"[1, 2]", "model_type", ["body"]),
        (b'{"columns": ["x"]}', "value_error", ["body"]),
        (b'{"data": [[1]], "extra": 1}', "extra_forbidden", ["body", "extra"]),
    ],
)
def test_parse_request_reports_malformed_bodies_as_fastapi_does(
    body: bytes, error_type: str, loc: list[object]
) -> None:
    with pytest.raises(MalformedBodyError) as caught:
        parse_request(body, LIMITS)
    (error,) = caught.value.errors
    assert error["type"] == error_type
    assert list(error["loc"]) == loc
    assert "input" not in error or error["input"] in (None, {})
    json.dumps(error)  # JSON-able as it is


def test_name_checks_are_linear_and_their_messages_short() -> None:
    """50,000 column names (the API caps them at 1000 by default; the checks themselves must
    not be quadratic either: 20,000 names took 2.8 s before)."""
    names = [f"c{i}" for i in range(50_000)]
    request = PredictRequest.model_validate({"columns": names, "data": [[1.0] * 50_000]})
    started = time.perf_counter()
    with pytest.raises(InvalidInputError) as caught:
        to_frame(request, MIXED, max_rows=10)
    assert time.perf_counter() - started < 0.5
    message = str(caught.value)
    assert message.startswith("missing columns ['x', 'n', 'flag', 'label', 'at']; unknown columns")
    assert "and 49990 more" in message
    assert len(message) < 500
    duplicated = PredictRequest.model_validate({"columns": names * 2, "data": [[1.0] * 100_000]})
    started = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"duplicate columns .* and 49990 more"):
        to_frame(duplicated, MIXED, max_rows=10)
    assert time.perf_counter() - started < 0.5


def test_request_schema_states_the_caps_and_the_one_form_rule() -> None:
    schema = request_schema(LIMITS)
    data = schema["properties"]["data"]["anyOf"][0]
    records = schema["properties"]["records"]["anyOf"][0]
    assert (data["minItems"], data["maxItems"], data["items"]["maxItems"]) == (1, 100, 10)
    assert (records["maxItems"], records["items"]["maxProperties"]) == (100, 10)
    assert schema["properties"]["columns"]["anyOf"][0]["maxItems"] == 10
    assert [branch["required"] for branch in schema["anyOf"]] == [["data"], ["records"]]
    assert schema["additionalProperties"] is False


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
    assert (settings.max_rows, settings.max_columns) == (10_000, 1000)
    assert settings.max_body_bytes == 2 * 1024 * 1024
    custom = ApiSettings.from_env(
        {**BASE_ENV, "OCI_MLOPS_MAX_BODY_BYTES": "65536", "OCI_MLOPS_MAX_COLUMNS": "50"}
    )
    assert (custom.max_body_bytes, custom.max_columns) == (65536, 50)


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
        ({"OCI_MLOPS_MAX_COLUMNS": "0"}, "OCI_MLOPS_MAX_COLUMNS must be >= 1"),
        ({"OCI_MLOPS_MAX_BODY_BYTES": "2"}, "OCI_MLOPS_MAX_BODY_BYTES must be >= 1024"),
        ({"OCI_MLOPS_MAX_BODY_BYTES": "2m"}, "OCI_MLOPS_MAX_BODY_BYTES must be an integer"),
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
    assert (settings.max_upload_mb, settings.max_rows, settings.max_columns) == (8, 100_000, 1000)
    capped = DashboardSettings.from_env(
        {
            **env,
            "OCI_MLOPS_DASHBOARD_MAX_UPLOAD_MB": "5",
            "OCI_MLOPS_DASHBOARD_MAX_ROWS": "500",
            "OCI_MLOPS_DASHBOARD_MAX_COLUMNS": "20",
        }
    )
    assert (capped.max_upload_mb, capped.max_rows, capped.max_columns) == (5, 500, 20)
    for name in ("MAX_UPLOAD_MB", "MAX_ROWS", "MAX_COLUMNS"):
        with pytest.raises(ConfigError, match=f"OCI_MLOPS_DASHBOARD_{name} must be >= 1"):
            DashboardSettings.from_env({**env, f"OCI_MLOPS_DASHBOARD_{name}": "0"})
