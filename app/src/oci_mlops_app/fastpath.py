"""The fast prediction path: request bodies scored without pydantic, pandas or pyfunc's schema
enforcement when the model and the request allow it, with the same answers.

The general path (``validation.parse_request``, ``validation.to_frame``, ``PyFuncModel.predict``)
builds a pydantic model of the body, a pandas DataFrame, and lets pyfunc enforce the signature on
it again: for one iris row, 1.6 ms where the estimator's own ``predict`` takes 0.26 ms. This module
does the same work once per model version where it can:

* :func:`decode` parses a JSON body with orjson and checks that it is a well-formed prediction
  request (one of the three forms, JSON scalars only) without building any model object. Anything
  unusual (a body orjson refuses, ``null`` for an absent form, an empty request) is left to the
  general path, which answers it with its own messages.
* :func:`compile_scorer` runs when a model version is loaded. It takes an **sklearn** model (the
  pyfunc flavour whose ``predict`` is the estimator's own method) with a column signature of
  required ``double``/``float``/``long``/``integer``/``boolean``/``string`` columns, picks how to
  feed the estimator (one float64 array when every column is ``double``, else a DataFrame typed
  like the general path's), and **proves it on the model's input example**: the fast path must
  give exactly pyfunc's predictions, or the version is served by the general path (logged once).
* :meth:`FastScorer.prepare` turns a decoded request into the estimator's input, in the
  signature's column order. A value of an unexpected type, a missing, unknown or duplicate
  column, a row of the wrong length or a non-finite number raises :class:`Fallback`: the general
  path then answers with its per-column error messages, so errors read exactly as before.

Predictions are encoded with orjson straight from the numpy array.
"""

from __future__ import annotations

import itertools
import logging
import operator
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import ColSpec, DataType, Schema

from .validation import (
    InputLimits,
    PredictRequest,
    check_limits,
    jsonable,
    well_typed_column,
)

logger = logging.getLogger(__name__)

_SCALARS = frozenset({bool, int, float, str, type(None)})
_NUMBERS = frozenset({int, float})
_FAST_TYPES = frozenset(
    {
        DataType.double,
        DataType.float,
        DataType.long,
        DataType.integer,
        DataType.boolean,
        DataType.string,
    }
)
# An estimator fitted on a DataFrame warns on every call with an array ("X does not have valid
# feature names"): the array is in the signature's column order, which compile_scorer checked
# against the estimator's feature_names_in_. The filter is installed once, by the API.
FEATURE_NAMES_WARNING = "X does not have valid feature names"
# A request with at most this many values is scored on the event loop when the model's predict
# took at most INLINE_PREDICT_SECONDS on its example: handing it to a thread costs more CPU
# than the prediction itself.
INLINE_MAX_VALUES = 256
INLINE_PREDICT_SECONDS = 0.002


def quiet_feature_names_warning() -> None:
    """Ignore sklearn's warning about arrays without feature names (see FEATURE_NAMES_WARNING)."""
    warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING, category=UserWarning)


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """This request is not one the fast path takes: the general path answers it."""


@dataclass(frozen=True)
class Decoded:
    """A well-formed prediction request: ``rows`` are lists (``data``) or dicts (``records``)."""

    rows: list[Any]
    columns: list[str] | None
    records: bool
    value_types: frozenset[type]  # of all the values
    width: int | None  # of every row (or record); None when they differ
    values: int  # how many

    def to_request(self) -> PredictRequest:
        """The same request as the general path's pydantic model (already known to be valid)."""
        if self.records:
            return PredictRequest.model_construct(records=self.rows)
        return PredictRequest.model_construct(data=self.rows, columns=self.columns)


def decode(body: bytes, limits: InputLimits) -> Decoded | None:
    """``body`` as a :class:`Decoded` request, or None to leave it to the general path.

    Raises ``InvalidInputError`` for too many rows or columns, exactly as the general path does
    (same check, same message)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(raw) is not dict:
        return None
    keys = raw.keys()
    records = keys == {"records"}
    if not (records or keys == {"data"} or keys == {"data", "columns"}):
        return None
    rows = raw["records" if records else "data"]
    if type(rows) is not list or not rows:
        return None
    columns = raw.get("columns")
    if len(rows) > limits.max_rows or (type(columns) is list and len(columns) > limits.max_columns):
        check_limits(raw, limits)  # raises, with the general path's message
    if set(map(type, rows)) != {dict if records else list}:
        return None
    widths = set(map(len, rows))
    if max(widths) > limits.max_columns:
        check_limits(raw, limits)
    if columns is not None and (type(columns) is not list or set(map(type, columns)) != {str}):
        return None
    if records:
        flat = itertools.chain.from_iterable(r.values() for r in rows)
    else:
        flat = itertools.chain.from_iterable(rows)
    value_types = frozenset(map(type, flat))
    if not value_types <= _SCALARS:
        return None
    width = widths.pop() if len(widths) == 1 else None
    values = len(rows) * width if width is not None else sum(map(len, rows))
    return Decoded(rows, columns, records, value_types, width, values)


@dataclass(frozen=True)
class FastScorer:
    """How to score one model version without pyfunc: compiled once, at load."""

    names: tuple[str, ...]
    specs: tuple[ColSpec, ...]
    as_array: bool  # one float64 array (every column double), else a typed DataFrame
    predict: Callable[[Any], Any]
    inline: bool  # small requests may be scored on the event loop (see INLINE_MAX_VALUES)

    @property
    def width(self) -> int:
        return len(self.names)

    @cached_property
    def key_set(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def getter(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """A record's values in signature order, as a tuple (also for one column)."""
        if len(self.names) == 1:
            only = self.names[0]
            return lambda record: (record[only],)
        return operator.itemgetter(*self.names)

    def runs_inline(self, request: Decoded) -> bool:
        return self.inline and request.values <= INLINE_MAX_VALUES

    def prepare(self, request: Decoded) -> Any:
        """The estimator's input for ``request``, in signature column order; :class:`Fallback`
        when anything needs the general path's checks (and messages)."""
        rows = request.rows
        width = self.width
        if request.records:
            if not all(r.keys() == self.key_set for r in rows):
                raise Fallback
            rows = list(map(self.getter, rows))
            order = None
        else:
            if request.width != width:
                raise Fallback
            order = self._order(request.columns)
        if self.as_array:
            if not request.value_types <= _NUMBERS:
                raise Fallback
            flat = itertools.chain.from_iterable(rows)
            array = np.fromiter(flat, np.float64, len(rows) * width).reshape(len(rows), width)
            if order is not None:
                array = array[:, order]
            if not np.isfinite(array).all():
                raise Fallback
            return array
        columns = list(zip(*rows, strict=True))
        if order is not None:
            columns = [columns[i] for i in order]
        frame: dict[str, Any] = {}
        for spec, name, values in zip(self.specs, self.names, columns, strict=True):
            column = well_typed_column(spec, list(values))
            if column is None:
                raise Fallback
            frame[name] = column
        return pd.DataFrame(frame)

    def _order(self, columns: list[str] | None) -> list[int] | None:
        """Positions of the signature's columns in ``columns`` (None: already in order)."""
        if columns is None or tuple(columns) == self.names:
            return None
        position = {name: i for i, name in enumerate(columns)}
        if len(position) != len(columns) or position.keys() != set(self.names):
            raise Fallback
        return [position[name] for name in self.names]


def encode(payload: dict[str, Any], predictions: Any) -> bytes:
    """The JSON answer, predictions encoded from numpy directly where orjson can (NaN and
    infinities become null, as ``validation.jsonable`` makes them)."""
    numeric = isinstance(predictions, np.ndarray) and predictions.dtype.kind in "biuf"
    if numeric and (predictions.dtype.kind != "f" or np.isfinite(predictions).all()):
        try:
            return orjson.dumps(
                {"predictions": predictions, **payload}, option=orjson.OPT_SERIALIZE_NUMPY
            )
        except orjson.JSONEncodeError:  # e.g. a non-contiguous array
            pass
    return orjson.dumps({"predictions": jsonable(predictions), **payload})


def compile_scorer(
    model: PyFuncModel, schema: Schema | None, path: Path | None
) -> FastScorer | None:
    """A :class:`FastScorer` for ``model``, or None (logged) when the general path must serve it."""
    why, scorer = _compile(model, schema, path)
    if scorer is None:
        logger.info("model served by the general prediction path: %s", why)
    return scorer


def _compile(
    model: PyFuncModel, schema: Schema | None, path: Path | None
) -> tuple[str, FastScorer | None]:
    conf = model.metadata.flavors.get("python_function", {})
    if conf.get("loader_module") != "mlflow.sklearn":
        return f"flavour {conf.get('loader_module')!r} is not mlflow.sklearn", None
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return "no column signature with names", None
    if model.metadata.get_params_schema() is not None:
        return "the signature has inference parameters", None
    specs = tuple(schema.inputs)
    if any(not s.required or s.type not in _FAST_TYPES for s in specs):
        return "optional columns or column types other than numbers, booleans, strings", None
    example = _example(model, path)
    if example is None:
        return "no input example to check the fast path against", None
    try:
        estimator = model.get_raw_model()
        predict = getattr(estimator, conf.get("predict_fn", "predict"))
        expected = model.predict(example)
    except Exception as exc:  # the model's own code: anything can happen
        return f"its input example does not score ({type(exc).__name__}: {exc})", None
    names = tuple(str(s.name) for s in specs)
    fitted = getattr(estimator, "feature_names_in_", None)
    numeric = all(s.type == DataType.double for s in specs)
    if fitted is not None and tuple(map(str, fitted)) != names:
        numeric = False  # fed by name: only a DataFrame carries the names
    request = decode(
        orjson.dumps({"records": example.to_dict(orient="records")}, default=_plain),
        InputLimits(max_rows=len(example), max_columns=len(names)),
    )
    if request is None:
        return "its input example is not a JSON request", None
    problem = "the fast path's predictions differ from pyfunc's on the input example"
    for as_array in (True, False) if numeric else (False,):
        scorer = FastScorer(names, specs, as_array, predict, inline=False)
        try:
            features = scorer.prepare(request)
            got = predict(features)
            started = time.perf_counter()  # a second call: the first may warm caches up
            predict(features)
            took = time.perf_counter() - started
        except Fallback:
            problem = "its input example is not one the fast path takes (nulls, odd types)"
            continue
        except Exception as exc:  # try the other form, or the general path
            problem = f"the estimator refused the fast path's input ({type(exc).__name__})"
            continue
        if _same(got, expected):
            inline = took <= INLINE_PREDICT_SECONDS
            return "", FastScorer(names, specs, as_array, predict, inline=inline)
    return problem, None


def _example(model: PyFuncModel, path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    try:
        example = model.metadata.load_input_example(str(path))
    except Exception:  # a missing or unreadable example: no fast path
        return None
    return example if isinstance(example, pd.DataFrame) and len(example) else None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError


def _same(got: Any, expected: Any) -> bool:
    return bool(orjson.dumps(jsonable(got)) == orjson.dumps(jsonable(expected)))
