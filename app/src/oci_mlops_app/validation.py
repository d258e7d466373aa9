"""Prediction request bodies, their validation against a model signature, and JSON-able output.

Three body forms are accepted (exactly one per request):

* ``{"data": [[5.1, 3.5, 1.4, 0.2]]}`` - legacy positional rows, in signature column order;
* ``{"columns": ["sepal length (cm)", ...], "data": [[...]]}`` - named columns, any order;
* ``{"records": [{"sepal length (cm)": 5.1, ...}]}`` - one object per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
from mlflow.types import ColSpec, DataType, Schema
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

JsonScalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr, None]  # noqa: UP007 - pydantic
MAX_REPORTED_ERRORS = 5

_INT_BOUNDS = {
    DataType.integer: (-(2**31), 2**31 - 1),
    DataType.long: (-(2**63), 2**63 - 1),
}
_FLOAT_TYPES = frozenset({DataType.double, DataType.float})
_SUPPORTED_TYPES = frozenset(
    {*_FLOAT_TYPES, *_INT_BOUNDS, DataType.boolean, DataType.string, DataType.datetime}
)


class InvalidInputError(ValueError):
    """The request body does not match the model's signature."""


class PredictRequest(BaseModel):
    """Rows to score: ``data`` (optionally with ``columns``) or ``records``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"data": [[5.1, 3.5, 1.4, 0.2]]},
                {
                    "columns": [
                        "sepal length (cm)",
                        "sepal width (cm)",
                        "petal length (cm)",
                        "petal width (cm)",
                    ],
                    "data": [[5.1, 3.5, 1.4, 0.2]],
                },
                {
                    "records": [
                        {
                            "sepal length (cm)": 5.1,
                            "sepal width (cm)": 3.5,
                            "petal length (cm)": 1.4,
                            "petal width (cm)": 0.2,
                        }
                    ]
                },
            ]
        },
    )

    data: list[list[JsonScalar]] | None = None
    columns: list[str] | None = None
    records: list[dict[str, JsonScalar]] | None = None

    @model_validator(mode="after")
    def _exactly_one_form(self) -> PredictRequest:
        if (self.data is None) == (self.records is None):
            raise ValueError("send exactly one of 'data' (optionally with 'columns') or 'records'")
        if self.columns is not None and self.data is None:
            raise ValueError("'columns' can only be sent together with 'data'")
        return self

    @property
    def row_count(self) -> int:
        rows = self.data if self.data is not None else self.records
        return len(rows or ())


def to_frame(request: PredictRequest, schema: Schema | None, max_rows: int) -> pd.DataFrame:
    """Check ``request`` against the model input ``schema`` and build the frame to score."""
    if request.row_count == 0:
        raise InvalidInputError("no rows to score")
    if request.row_count > max_rows:
        raise InvalidInputError(f"{request.row_count} rows sent, at most {max_rows} are accepted")
    if schema is None:
        return _frame_without_schema(request)
    if schema.is_tensor_spec():
        raise InvalidInputError(
            "this model has a tensor-based signature; this API serves models whose signature "
            "has columns"
        )
    specs: list[ColSpec] = list(schema.inputs)
    unsupported = [s for s in specs if s.type not in _SUPPORTED_TYPES]
    if unsupported:
        raise InvalidInputError(
            "this model takes input types this API cannot receive as JSON scalars: "
            + ", ".join(f"{s.name or i}: {_type_name(s.type)}" for i, s in enumerate(unsupported))
        )
    if not schema.has_input_names():
        return _typed_frame(specs, _positional_columns(request, specs))
    return _typed_frame(specs, _named_columns(request, specs))


def _positional_columns(request: PredictRequest, specs: list[ColSpec]) -> list[list[Any]]:
    if request.data is None or request.columns is not None:
        raise InvalidInputError("this model's signature has no column names: send 'data' only")
    _check_row_lengths(request.data, len(specs), "the model expects")
    return [list(col) for col in zip(*request.data, strict=True)]


def _named_columns(request: PredictRequest, specs: list[ColSpec]) -> list[list[Any] | None]:
    expected = [str(s.name) for s in specs]
    required = {str(s.name) for s in specs if s.required}
    if request.records is not None:
        for index, record in enumerate(request.records):
            _check_names(list(record), expected, required, f"record {index}: ")
        return [
            [record.get(name) for record in request.records]
            if any(name in record for record in request.records)
            else None
            for name in expected
        ]
    assert request.data is not None
    if request.columns is None:
        _check_row_lengths(request.data, len(expected), f"the model expects {expected}, i.e.")
        return [list(col) for col in zip(*request.data, strict=True)]
    _check_names(request.columns, expected, required, "")
    _check_row_lengths(request.data, len(request.columns), "'columns' names")
    by_name = dict(zip(request.columns, zip(*request.data, strict=True), strict=True))
    return [list(by_name[name]) if name in by_name else None for name in expected]


def _check_names(names: list[str], expected: list[str], required: set[str], where: str) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(f"{where}duplicate columns {duplicates}")
    unknown = [n for n in names if n not in expected]
    missing = [n for n in expected if n in required and n not in names]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if problems:
        raise InvalidInputError(f"{where}{'; '.join(problems)}; the model expects {expected}")


def _check_row_lengths(rows: Sequence[Sequence[Any]], width: int, expectation: str) -> None:
    for index, row in enumerate(rows):
        if len(row) != width:
            raise InvalidInputError(
                f"row {index} has {len(row)} values; {expectation} {width} values per row"
            )


def _typed_frame(specs: list[ColSpec], columns: Sequence[list[Any] | None]) -> pd.DataFrame:
    errors: list[str] = []
    frame: dict[str | int, Any] = {}  # named columns by name, positional ones by index
    for position, (spec, values) in enumerate(zip(specs, columns, strict=True)):
        if values is None:  # an optional column that was not sent
            continue
        label = spec.name if spec.name is not None else position
        column = _well_typed_column(spec, values)
        if column is None:  # something is off: check value by value to say what
            column_errors = _value_errors(spec, str(label), values)
            if column_errors:
                errors.extend(column_errors)
                if len(errors) >= MAX_REPORTED_ERRORS:
                    break
                continue
            column = _column(spec, values)
        frame[str(label) if spec.name is not None else position] = column
    if errors:
        raise InvalidInputError("; ".join(errors[:MAX_REPORTED_ERRORS]))
    try:
        return pd.DataFrame(frame)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot build the input table: {exc}") from exc


def _well_typed_column(spec: ColSpec, values: list[Any]) -> np.ndarray | None:
    """The column as an array when every value has the exact expected Python type (the common
    case, checked in bulk); None when the values need a closer look."""
    kinds = set(map(type, values))
    kind = spec.type
    if kind in _FLOAT_TYPES and kinds <= {int, float}:
        array = np.asarray(values, dtype=kind.to_numpy())
        return array if np.isfinite(array).all() else None
    if kind in _INT_BOUNDS and kinds == {int}:
        low, high = _INT_BOUNDS[kind]
        in_range = low <= min(values) and max(values) <= high
        return np.asarray(values, dtype=kind.to_numpy()) if in_range else None
    if kind == DataType.boolean and kinds == {bool}:
        return np.asarray(values, dtype=bool)
    if kind == DataType.string and kinds == {str}:
        return np.asarray(values, dtype=object)
    return None


def _value_errors(spec: ColSpec, label: str, values: list[Any]) -> list[str]:
    errors = []
    for row, value in enumerate(values):
        problem = _value_problem(spec, value)
        if problem:
            errors.append(f"column {label!r} row {row}: {problem}")
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    return errors


def _type_name(kind: object) -> str:
    return kind.name if isinstance(kind, DataType) else str(kind)


def _value_problem(spec: ColSpec, value: Any) -> str | None:
    kind = spec.type
    name = _type_name(kind)
    if value is None:
        return "null in a required column" if spec.required else None
    if kind in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number ({name}), got {type(value).__name__} {value!r}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        return None
    if kind in _INT_BOUNDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected an integer ({name}), got {type(value).__name__} {value!r}"
        if isinstance(value, float) and not value.is_integer():
            return f"expected an integer ({name}), got {value!r}"
        low, high = _INT_BOUNDS[kind]
        return None if low <= value <= high else f"{value!r} is out of range for {name}"
    if kind == DataType.boolean:
        return None if isinstance(value, bool) else f"expected true/false, got {value!r}"
    # string and datetime (an ISO 8601 string) columns
    return None if isinstance(value, str) else f"expected a string ({name}), got {value!r}"


def _column(spec: ColSpec, values: list[Any]) -> Any:
    if any(v is None for v in values):
        return pd.Series(values, dtype=object)
    if spec.type == DataType.datetime:
        try:
            return pd.to_datetime(pd.Series(values), format="ISO8601")
        except (ValueError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise InvalidInputError(f"column {spec.name!r}: {reason}") from exc
    return np.asarray(values, dtype=spec.type.to_pandas())


def _frame_without_schema(request: PredictRequest) -> pd.DataFrame:
    if request.records is not None:
        return pd.DataFrame.from_records(request.records)
    assert request.data is not None
    width = len(request.columns) if request.columns is not None else len(request.data[0])
    _check_row_lengths(request.data, width, "expected")
    return pd.DataFrame(request.data, columns=request.columns)


def jsonable(result: Any) -> list[Any]:
    """Turn a model's output into a JSON-able list (NaN/inf become null)."""
    if isinstance(result, pd.DataFrame):
        return [_clean(row) for row in result.to_dict(orient="records")]
    if isinstance(result, pd.Series):
        result = result.to_numpy()
    if isinstance(result, np.ndarray):
        if result.ndim == 0:
            return [_clean(result.item())]
        if result.dtype.kind in "biuU":  # tolist() already gives plain JSON-able values
            return list(result.tolist())
        if result.dtype.kind == "f" and np.isfinite(result).all():
            return list(result.tolist())
        if result.dtype.kind == "f":
            result = np.where(np.isfinite(result), result, None)
        return _clean(result.tolist())
    if isinstance(result, (list, tuple)):
        return _clean(list(result))
    return [_clean(result)]


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return str(value)
