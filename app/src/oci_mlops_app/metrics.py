"""Prometheus metrics of the serving API.

With several uvicorn workers the CLI points ``PROMETHEUS_MULTIPROC_DIR`` at a shared directory
before the workers start, and ``/metrics`` aggregates all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "oci_mlops_http_requests_total",
    "HTTP requests, by method, route template, status code and the name of the accepted API key "
    '("" for open routes and refused keys).',
    ["method", "route", "status", "api_key"],
)
HTTP_LATENCY = Histogram(
    "oci_mlops_http_request_duration_seconds",
    "HTTP request latency, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL_LOAD_SECONDS = Histogram(
    "oci_mlops_model_load_seconds",
    "Time to download and load one model version (successful loads).",
    ["model", "version"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
MODEL_LOAD_FAILURES = Counter(
    "oci_mlops_model_load_failures_total",
    "Failed attempts to download or load a model version.",
    ["model", "version"],
)
PREDICTION_REQUESTS = Counter(
    "oci_mlops_prediction_requests_total",
    "Successful prediction requests, by model name, version and API key name.",
    ["model", "version", "api_key"],
)
PREDICTED_ROWS = Counter(
    "oci_mlops_predicted_rows_total",
    "Rows scored (one prediction per row), by model name and version.",
    ["model", "version"],
)
ALIAS_REFRESH_ERRORS = Counter(
    "oci_mlops_alias_refresh_errors_total",
    "Alias refreshes that failed (registry unreachable, access denied, or new version not "
    "loadable); the cached version keeps serving.",
    ["model", "alias"],
)
CACHED_MODEL_VERSIONS = Gauge(
    "oci_mlops_cached_model_versions",
    "Model versions loaded in memory (summed over the live workers).",
    multiprocess_mode="livesum",
)
MODEL_EVICTIONS = Counter(
    "oci_mlops_model_evictions_total",
    "Model versions dropped from the cache (no alias, preload or recent request refers to them).",
    ["model"],
)


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
