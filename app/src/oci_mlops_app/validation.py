"""Prediction request bodies, their validation against a model signature, and JSON-able output.

Three body forms are accepted (exactly one per request):

* ``{"data": [[5.1, 3.5, 1.4, 0.2]]}`` - legacy positional rows, in signature column order;
* ``{"columns": ["sepal length (cm)", ...], "data": [[...]]}`` - named columns, any order;
* ``{"records": [{"sepal length (cm)": 5.1, ...}]}`` - one object per row.

Hostile input (OWASP API4): the API reads at most ``max_body_bytes`` of body, and
:func:`parse_request` refuses more than ``max_rows`` rows or ``max_columns`` columns before
building any model object. Every check here is linear in the size of the body (no per-column
scans of the column list), and the API runs them in a worker thread, not on the event loop.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
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
    ValidationError,
    model_validator,
)

JsonScalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr, None]  # noqa: UP007 - pydantic
MAX_REPORTED_ERRORS = 5
# Column names quoted in one error message; the rest are counted ("... and 4990 more").
MAX_LISTED_NAMES = 10

_INT_BOUNDS = {
    DataType.integer: (-(2**31), 2**31 - 1),
    DataType.long: (-(2**63), 2**63 - 1),
}
_FLOAT_TYPES = frozenset({DataType.double, DataType.float})
_SUPPORTED_TYPES = frozenset(
    {*_FLOAT_TYPES, *_INT_BOUNDS, DataType.boolean, DataType.string, DataType.datetime}
)


class InvalidInputError(ValueError):
    """The request body does not match the model's signature, or is over a row/column cap."""


class MalformedBodyError(ValueError):
    """The body is not JSON, or not a prediction request: pydantic-style errors (``errors``),
    answered like FastAPI's own request validation errors (422, ``detail`` a list)."""

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e.get("msg", "")) for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class InputLimits:
    """The caps of one prediction request (rows, and columns per row)."""

    max_rows: int
    max_columns: int


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


def parse_request(body: bytes, limits: InputLimits) -> PredictRequest:
    """The prediction request in a JSON ``body``, within ``limits``.

    Raises :class:`MalformedBodyError` for a body that is not JSON or not a request (the errors
    FastAPI would report), :class:`InvalidInputError` for too many rows or columns: that check
    runs on the decoded JSON, before pydantic copies it into a model.
    """
    if not body:
        raise MalformedBodyError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
        raise MalformedBodyError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ]
        ) from None
    check_limits(raw, limits)
    try:
        return PredictRequest.model_validate(raw)
    except ValidationError as exc:
        # the offending input is not echoed back: it may be most of a large body
        errors = exc.errors(include_url=False, include_input=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
            if "error" in error.get("ctx", {}):
                error["ctx"]["error"] = str(error["ctx"]["error"])
        raise MalformedBodyError(errors) from None


def check_limits(raw: object, limits: InputLimits) -> None:
    """Refuse more than ``limits.max_rows`` rows or ``limits.max_columns`` columns (in
    ``columns``, in a ``data`` row or in a record); one pass over the rows, no per-value work.
    Anything that is not shaped like a request is left to the model's validation."""
    if not isinstance(raw, dict):
        return
    data, columns, records = raw.get("data"), raw.get("columns"), raw.get("records")
    for rows in (data, records):
        if isinstance(rows, list) and len(rows) > limits.max_rows:
            raise InvalidInputError(
                f"{len(rows)} rows sent, at most {limits.max_rows} are accepted"
            )
    if isinstance(columns, list) and len(columns) > limits.max_columns:
        raise InvalidInputError(
            f"{len(columns)} columns sent, at most {limits.max_columns} are accepted"
        )
    for rows, what in ((data, "row"), (records, "record")):
        if not isinstance(rows, list):
            continue
        for index, row in enumerate(rows):
            if isinstance(row, (list, dict)) and len(row) > limits.max_columns:
                raise InvalidInputError(
                    f"{what} {index} has {len(row)} columns, at most {limits.max_columns} are "
                    "accepted"
                )


def request_schema(limits: InputLimits) -> dict[str, Any]:
    """The JSON schema of a prediction request body for the OpenAPI document: the model's own,
    with the row/column caps and the "exactly one of data or records" rule spelled out."""
    schema = PredictRequest.model_json_schema()
    properties = schema["properties"]
    data, columns, records = (properties[k]["anyOf"][0] for k in ("data", "columns", "records"))
    data["minItems"] = records["minItems"] = 1
    data["maxItems"] = records["maxItems"] = limits.max_rows
    data["items"]["maxItems"] = columns["maxItems"] = limits.max_columns
    records["items"]["maxProperties"] = limits.max_columns
    # null counts as absent: exactly one of data/records is an array; columns only with data
    schema["anyOf"] = [
        {
            "required": ["data"],
            "properties": {"data": {"type": "array"}, "records": {"type": "null"}},
        },
        {
            "required": ["records"],
            "properties": {
                "records": {"type": "array"},
                "data": {"type": "null"},
                "columns": {"type": "null"},
            },
        },
    ]
    return schema


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
    names = _Names(expected, {str(s.name) for s in specs if s.required})
    if request.records is not None:
        for index, record in enumerate(request.records):
            names.check(record.keys(), f"record {index}: ")
        sent = set().union(*request.records)
        return [
            [record.get(name) for record in request.records] if name in sent else None
            for name in expected
        ]
    assert request.data is not None
    if request.columns is None:
        expectation = f"the model expects {_listed(expected)}, i.e."
        _check_row_lengths(request.data, len(expected), expectation)
        return [list(col) for col in zip(*request.data, strict=True)]
    duplicates = sorted(name for name, count in Counter(request.columns).items() if count > 1)
    if duplicates:
        raise InvalidInputError(f"duplicate columns {_listed(duplicates)}")
    names.check(request.columns, "")
    _check_row_lengths(request.data, len(request.columns), "'columns' names")
    by_name = dict(zip(request.columns, zip(*request.data, strict=True), strict=True))
    return [list(by_name[name]) if name in by_name else None for name in expected]


class _Names:
    """The column names a model expects, checked against the names of a request (or record)
    in time linear in both: set lookups only."""

    def __init__(self, expected: list[str], required: set[str]) -> None:
        self.expected = expected
        self.required = required
        self._known = set(expected)

    def check(self, sent: Collection[str], where: str) -> None:
        known = self._known
        if self.required.issubset(sent) and known.issuperset(sent):
            return
        present = set(sent)
        unknown = [n for n in sent if n not in known]
        missing = [n for n in self.expected if n in self.required and n not in present]
        problems = []
        if missing:
            problems.append(f"missing columns {_listed(missing)}")
        if unknown:
            problems.append(f"unknown columns {_listed(unknown)}")
        raise InvalidInputError(
            f"{where}{'; '.join(problems)}; the model expects {_listed(self.expected)}"
        )


def _listed(names: Sequence[str]) -> str:
    """``names`` as a list literal, the first MAX_LISTED_NAMES only (the rest counted)."""
    if len(names) <= MAX_LISTED_NAMES:
        return repr(list(names))
    return f"{list(names[:MAX_LISTED_NAMES])!r} and {len(names) - MAX_LISTED_NAMES} more"


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
        column = well_typed_column(spec, values)
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


def well_typed_column(spec: ColSpec, values: list[Any]) -> np.ndarray | None:
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
