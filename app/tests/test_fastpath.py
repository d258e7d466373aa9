"""The fast prediction path (fastpath.py) against the general one (pydantic, pandas, pyfunc).

Real sklearn models saved and loaded with MLflow (no server needed): the fast path must give
exactly the general path's predictions for any valid request, and must hand anything else to
the general path (``Fallback``), never answer it differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.models import infer_signature
from mlflow.pyfunc import PyFuncModel
from mlflow.types import Schema
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from oci_mlops_app import fastpath
from oci_mlops_app.validation import (
    InputLimits,
    InvalidInputError,
    jsonable,
    parse_request,
    to_frame,
)

LIMITS = InputLimits(max_rows=10_000, max_columns=1000)
COLORS = ["red", "green", "blue"]


@dataclass(frozen=True)
class Served:
    """A model as the API loads it: the pyfunc model, its signature, its compiled fast path."""

    model: PyFuncModel
    schema: Schema
    scorer: fastpath.FastScorer | None
    names: list[str]


def save(model: object, path: Path, **kwargs: Any) -> None:
    # explicit requirements skip MLflow's slow requirement inference
    mlflow.sklearn.save_model(model, path, pip_requirements=["scikit-learn"], **kwargs)


def _load(path: Path) -> Served:
    model = mlflow.pyfunc.load_model(str(path))
    schema = model.metadata.get_input_schema()
    assert schema is not None
    scorer = fastpath.compile_scorer(model, schema, path)
    return Served(model, schema, scorer, [str(n) for n in schema.input_names()])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    """iris (every column double: one float64 array), a pipeline with a string and an integer
    column (a typed DataFrame), and the iris model saved without an input example."""
    fastpath.quiet_feature_names_warning()
    root = tmp_path_factory.mktemp("models")
    features, target = load_iris(return_X_y=True, as_frame=True)
    iris = LogisticRegression(max_iter=500).fit(features, target)
    signature = infer_signature(features, iris.predict(features))
    save(iris, root / "iris", signature=signature, input_example=features.head(3))
    save(iris, root / "no-example", signature=signature)
    save(
        iris,
        root / "proba",
        signature=infer_signature(features, iris.predict_proba(features)),
        input_example=features.head(3),
        pyfunc_predict_fn="predict_proba",
    )

    rng = np.random.default_rng(0)
    mixed = pd.DataFrame(
        {
            "size": rng.normal(size=300),
            "count": rng.integers(0, 50, size=300).astype("int64"),
            "color": pd.Series(rng.choice(COLORS, size=300), dtype=object),
        }
    )
    labels = (mixed["size"] + (mixed["color"] == "red") * 1.5 + mixed["count"] / 25 > 1.2).astype(
        int
    )
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("color", OneHotEncoder(handle_unknown="ignore"), ["color"])],
                    remainder="passthrough",
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(mixed, labels)
    save(
        pipeline,
        root / "mixed",
        signature=infer_signature(mixed, pipeline.predict(mixed)),
        input_example=mixed.head(3),
    )
    return {name: _load(root / name) for name in ("iris", "no-example", "proba", "mixed")}


def general(served: Served, body: bytes) -> bytes:
    """The general path's answer: pydantic, to_frame, pyfunc (api.py's fallback)."""
    frame = to_frame(parse_request(body, LIMITS), served.schema, LIMITS.max_rows)
    return fastpath.encode({}, np.asarray(served.model.predict(frame)))


def fast(served: Served, body: bytes) -> bytes | None:
    """The fast path's answer, or None where it hands the request to the general path."""
    assert served.scorer is not None
    decoded = fastpath.decode(body, LIMITS)
    if decoded is None:
        return None
    try:
        features = served.scorer.prepare(decoded)
    except fastpath.Fallback:
        return None
    return fastpath.encode({}, served.scorer.predict(features))


def test_iris_is_fed_one_float64_array_and_the_pipeline_a_typed_frame(
    models: dict[str, Served],
) -> None:
    iris, mixed = models["iris"].scorer, models["mixed"].scorer
    assert iris is not None
    assert iris.as_array
    assert mixed is not None
    assert not mixed.as_array
    proba = models["proba"].scorer
    assert proba is not None
    assert proba.predict.__name__ == "predict_proba"


def test_a_model_without_an_input_example_is_left_to_the_general_path(
    models: dict[str, Served],
) -> None:
    assert models["no-example"].scorer is None


def _bodies(names: list[str], rows: list[list[Any]], form: str, order: list[int]) -> bytes:
    if form == "data":
        return json.dumps({"data": rows}).encode()
    if form == "columns":
        return json.dumps(
            {"columns": [names[i] for i in order], "data": [[r[i] for i in order] for r in rows]}
        ).encode()
    return json.dumps({"records": [dict(zip(names, r, strict=True)) for r in rows]}).encode()


FORMS = st.sampled_from(["data", "columns", "records"])
FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-1000, 1000)


@st.composite
def iris_requests(draw: st.DrawFn) -> tuple[str, list[list[Any]], list[int]]:
    rows = draw(st.lists(st.lists(FINITE, min_size=4, max_size=4), min_size=1, max_size=40))
    return (
        draw(st.sampled_from(["data", "columns", "records"])),
        rows,
        draw(st.permutations(range(4))),
    )


@st.composite
def mixed_requests(draw: st.DrawFn) -> tuple[str, list[list[Any]], list[int]]:
    row = st.tuples(
        st.floats(min_value=-100, max_value=100, allow_nan=False) | st.integers(-100, 100),
        st.integers(0, 2**40),
        st.sampled_from([*COLORS, "purple"]),  # purple: never seen in training (ignored)
    ).map(list)
    rows = draw(st.lists(row, min_size=1, max_size=40))
    return (
        draw(st.sampled_from(["data", "columns", "records"])),
        rows,
        draw(st.permutations(range(3))),
    )


FAST_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize(
    ("model", "requests"),
    [("iris", iris_requests()), ("proba", iris_requests()), ("mixed", mixed_requests())],
    ids=["iris", "predict_proba", "pipeline-with-a-string-column"],
)
@FAST_SETTINGS
@given(data=st.data())
def test_fast_predictions_equal_pyfuncs(
    models: dict[str, Served],
    model: str,
    requests: st.SearchStrategy[tuple[str, list[list[Any]], list[int]]],
    data: st.DataObject,
) -> None:
    form, rows, order = data.draw(requests)
    served = models[model]
    body = _bodies(served.names, rows, form, order)
    assert fast(served, body) == general(served, body)


ODD_VALUES = st.sampled_from(
    [True, False, None, "1.5", [], {}, 1e400, 2**70, 1.5, 3, "red", float("nan")]
)


@FAST_SETTINGS
@given(data=st.data())
def test_anything_else_is_handed_to_the_general_path_never_answered_differently(
    models: dict[str, Served], data: st.DataObject
) -> None:
    """Odd values, missing, unknown or duplicate columns, ragged rows, stray keys: the fast
    path gives the general path's predictions or hands the request over (it never answers
    a request the general path refuses)."""
    served = models[data.draw(st.sampled_from(["iris", "mixed"]))]
    width = len(served.names)
    names = data.draw(
        st.lists(st.sampled_from([*served.names, "other"]), min_size=width - 1, max_size=width + 1)
    )
    rows = data.draw(
        st.lists(
            st.lists(ODD_VALUES | FINITE, min_size=width - 1, max_size=width + 1),
            min_size=1,
            max_size=5,
        )
    )
    shape = data.draw(st.sampled_from(["data", "columns", "records", "stray"]))
    if shape == "data":
        raw: dict[str, Any] = {"data": rows}
    elif shape == "columns":
        raw = {"columns": names, "data": rows}
    elif shape == "records":
        raw = {"records": [dict(zip(names, r, strict=False)) for r in rows]}
    else:
        raw = {"data": rows, "records": None}
    body = json.dumps(raw).encode()  # NaN and 1e400 are sent as NaN / Infinity literals
    try:
        expected: bytes | None = general(served, body)
    except Exception:
        expected = None
    got = fast(served, body)
    assert got is None or got == expected


def test_over_the_caps_is_refused_with_the_general_paths_message() -> None:
    limits = InputLimits(max_rows=3, max_columns=2)
    for raw in (
        {"data": [[1.0, 2.0]] * 4},
        {"records": [{"a": 1.0}] * 4},
        {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]},
        {"data": [[1.0, 2.0], [1.0, 2.0, 3.0]]},
    ):
        body = orjson.dumps(raw)
        with pytest.raises(InvalidInputError) as general_error:
            parse_request(body, limits)
        with pytest.raises(InvalidInputError) as fast_error:
            fastpath.decode(body, limits)
        assert str(fast_error.value) == str(general_error.value)


def test_predictions_are_encoded_like_the_general_paths_json() -> None:
    for predictions in (
        np.array([1, 2, 3]),
        np.array([0.5, np.nan, np.inf]),
        np.array([[0.25, 0.75], [1.0, 0.0]]),
        np.array(["setosa", "virginica"], dtype=object),
        np.array([True, False]),
    ):
        answer = orjson.loads(fastpath.encode({"model_version": "1"}, predictions))
        assert answer == {"predictions": jsonable(predictions), "model_version": "1"}
