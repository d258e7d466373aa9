"""The serving API, run as its console script against the real MLflow server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import (
    BROKEN_MODEL,
    FAILING_MODEL,
    FEATURES,
    MODEL,
    ApiServer,
    Registered,
    log_entry,
    metric_sum,
    metric_value,
)

ROW = [5.1, 3.5, 1.4, 0.2]  # an iris setosa (class 0)
VIRGINICA = [6.7, 3.0, 5.2, 2.3]  # class 2


def predict(api: httpx.Client, server: ApiServer, path: str, body: object) -> httpx.Response:
    return api.post(f"/predict/{path}", json=body, headers=server.headers())


# -- open endpoints -------------------------------------------------------------------------


def test_health_is_open(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]


def test_ready_reports_preloaded_models(api: httpx.Client, registered: Registered) -> None:
    response = api.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "models": {f"{MODEL}@champion": registered.champion.version},
    }


def test_static_page_is_a_prediction_form(api: httpx.Client) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for element in ('id="model"', 'id="ref"', 'id="api-key"', 'id="body"', "fetch(`predict/"):
        assert element in page
    assert '"X-API-Key"' in page


def test_openapi_documents_the_api_key(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "/predict/{name}/{ref}" in schema["paths"]


# -- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models"), ("GET", f"/models/{MODEL}"), ("POST", f"/predict/{MODEL}/champion")],
)
@pytest.mark.parametrize("key", [None, "wrong-key-of-enough-length", ""])
def test_protected_routes_need_a_valid_key(
    api: httpx.Client, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    response = api.request(method, path, json={"data": [ROW]}, headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "ApiKey"


def test_every_configured_key_is_accepted_and_named_in_logs_and_metrics(
    api: httpx.Client, api_server: ApiServer
) -> None:
    before = api.get("/metrics").text
    for index in (0, 1):
        headers = {**api_server.headers(index), "X-Request-ID": f"key-check-{index}"}
        assert api.get("/models", headers=headers).status_code == 200
    assert api.get("/models", headers={"X-Request-ID": "key-check-none"}).status_code == 401
    by_request = {
        rid: log_entry(api_server.log_path, rid)
        for rid in ("key-check-0", "key-check-1", "key-check-none")
    }
    assert by_request["key-check-0"]["api_key"] == "tests"
    assert by_request["key-check-1"]["api_key"] == "dashboard"
    assert by_request["key-check-none"]["api_key"] is None
    after = api.get("/metrics").text
    for name in api_server.key_names:
        labels = {"route": "/models", "status": "200", "api_key": name}
        assert (
            metric_sum(after, "oci_mlops_http_requests_total", **labels)
            == metric_sum(before, "oci_mlops_http_requests_total", **labels) + 1
        )
    assert metric_sum(after, "oci_mlops_http_requests_total", status="401", api_key="") >= 1
    log_text = api_server.log_path.read_text()
    assert not any(key in log_text for key in api_server.keys)


def test_forwarded_headers_are_not_trusted_by_default(
    api: httpx.Client, api_server: ApiServer
) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "not-forwarded"}
    assert api.get("/health", headers=headers).status_code == 200
    entry = log_entry(api_server.log_path, "not-forwarded")
    assert entry["client"] == "127.0.0.1"


# -- registry -------------------------------------------------------------------------------


def test_models_lists_versions_and_aliases(
    api: httpx.Client, api_server: ApiServer, registered: Registered
) -> None:
    response = api.get("/models", headers=api_server.headers())
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert {MODEL, BROKEN_MODEL, FAILING_MODEL} <= set(models)
    iris = models[MODEL]
    assert iris["aliases"]["champion"] == registered.champion.version
    assert iris["aliases"]["challenger"] == registered.challenger.version
    versions = {v["version"]: v for v in iris["versions"]}
    assert versions[registered.champion.version]["aliases"] == ["champion"]
    assert versions[registered.champion.version]["run_id"] == registered.champion.run_id
    assert versions[registered.challenger.version]["status"] == "READY"


def test_model_detail(api: httpx.Client, api_server: ApiServer, registered: Registered) -> None:
    response = api.get(f"/models/{MODEL}", headers=api_server.headers())
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == MODEL
    assert [v["version"] for v in body["versions"]][-2:] == [
        registered.challenger.version,
        registered.champion.version,
    ]


def test_unknown_model_detail_is_404(api: httpx.Client, api_server: ApiServer) -> None:
    response = api.get("/models/no-such-model", headers=api_server.headers())
    assert response.status_code == 404
    assert response.json()["detail"]


# -- predictions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected_version"),
    [
        ("champion", "champion"),
        ("challenger", "challenger"),
        ("Production", "champion"),
        ("staging", "challenger"),
        ("1", "champion"),
    ],
)
def test_predict_by_alias_version_or_stage(
    api: httpx.Client,
    api_server: ApiServer,
    registered: Registered,
    ref: str,
    expected_version: str,
) -> None:
    response = predict(api, api_server, f"{MODEL}/{ref}", {"data": [ROW, VIRGINICA]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL
    assert body["model_version"] == getattr(registered, expected_version).version
    assert body["predictions"][0] == 0
    assert body["predictions"][1] in (1, 2)  # the strongly regularised challenger may say 1


def test_predict_column_named_forms_reorder_columns(
    api: httpx.Client, api_server: ApiServer
) -> None:
    reordered = list(reversed(FEATURES))
    by_columns = predict(
        api,
        api_server,
        f"{MODEL}/champion",
        {"columns": reordered, "data": [list(reversed(ROW)), list(reversed(VIRGINICA))]},
    )
    by_records = predict(
        api,
        api_server,
        f"{MODEL}/champion",
        {
            "records": [
                dict(zip(FEATURES, ROW, strict=True)),
                dict(zip(reordered, reversed(VIRGINICA), strict=True)),
            ]
        },
    )
    legacy = predict(api, api_server, f"{MODEL}/champion", {"data": [ROW, VIRGINICA]})
    assert by_columns.status_code == by_records.status_code == 200
    assert by_columns.json() == by_records.json() == legacy.json()
    assert legacy.json()["predictions"] == [0, 2]


def test_predict_many_rows(api: httpx.Client, api_server: ApiServer) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    response = predict(api, api_server, f"{MODEL}/champion", {"data": iris.data.tolist()})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 150
    accuracy = sum(p == t for p, t in zip(predictions, iris.target, strict=True)) / 150
    assert accuracy > 0.9


def test_the_access_log_names_the_path_that_scored_each_prediction(
    api: httpx.Client, api_server: ApiServer
) -> None:
    """The iris model (sklearn, column signature, input example) is scored by the fast path
    (fastpath.py); a body it does not take (a ``records: null`` beside ``data``) is answered
    by the general path, with the same predictions."""
    answers = {}
    for request_id, body in (
        ("scoring-fast", {"data": [ROW, VIRGINICA]}),
        ("scoring-general", {"data": [ROW, VIRGINICA], "records": None}),
    ):
        response = api.post(
            f"/predict/{MODEL}/champion",
            json=body,
            headers={**api_server.headers(), "X-Request-ID": request_id},
        )
        assert response.status_code == 200, response.text
        answers[request_id] = response.json()
    assert answers["scoring-fast"] == answers["scoring-general"]
    assert answers["scoring-fast"]["predictions"] == [0, 2]
    assert log_entry(api_server.log_path, "scoring-fast")["scoring"] == "fast"
    assert log_entry(api_server.log_path, "scoring-general")["scoring"] == "general"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [[5.1, 3.5, 1.4]]}, "row 0 has 3 values"),
        ({"data": [ROW, [1.0, 2.0]]}, "row 1 has 2 values"),
        ({"data": [[5.1, "wide", 1.4, 0.2]]}, "'sepal width (cm)' row 0: expected a number"),
        ({"data": [[5.1, True, 1.4, 0.2]]}, "expected a number"),
        ({"data": [[5.1, None, 1.4, 0.2]]}, "null in a required column"),
        ({"data": []}, "no rows to score"),
        ({"columns": FEATURES[:3], "data": [ROW[:3]]}, "missing columns ['petal width (cm)']"),
        ({"columns": [*FEATURES, "colour"], "data": [[*ROW, 1.0]]}, "unknown columns ['colour']"),
        ({"columns": [*FEATURES[:3], FEATURES[0]], "data": [ROW]}, "duplicate columns"),
        ({"records": [{"sepal length (cm)": 5.1}]}, "record 0: missing columns"),
    ],
)
def test_invalid_input_is_422_with_a_reason(
    api: httpx.Client, api_server: ApiServer, body: object, message: str
) -> None:
    response = predict(api, api_server, f"{MODEL}/champion", body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, "Value error, send exactly one of"),
        ({"data": [ROW], "records": []}, "send exactly one of"),
        ({"columns": FEATURES}, "send exactly one of"),
        ({"data": [[[1.0, 2.0]]]}, "data"),
        ({"data": [ROW], "extra": 1}, "extra"),
    ],
)
def test_malformed_body_is_422(
    api: httpx.Client, api_server: ApiServer, body: object, location: str
) -> None:
    response = predict(api, api_server, f"{MODEL}/champion", body)
    assert response.status_code == 422
    assert location in json.dumps(response.json()["detail"])


def test_body_that_is_not_json_is_422(api: httpx.Client, api_server: ApiServer) -> None:
    response = api.post(
        f"/predict/{MODEL}/champion",
        content=b"{not json",
        headers={**api_server.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422


def test_too_many_rows_is_422(api: httpx.Client, api_server: ApiServer) -> None:
    response = predict(api, api_server, f"{MODEL}/champion", {"data": [ROW] * 10_001})
    assert response.status_code == 422
    assert "at most 10000" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no-such-model/champion", "no-such-model"),
        (f"{MODEL}/999", "999"),
        (f"{MODEL}/no-such-alias", "no-such-alias"),
        (f"{MODEL}/Archived", "Archived"),
    ],
)
def test_unknown_model_version_or_alias_is_404(
    api: httpx.Client, api_server: ApiServer, path: str, message: str
) -> None:
    response = predict(api, api_server, path, {"data": [ROW]})
    assert response.status_code == 404
    assert message in response.json()["detail"]


def test_model_that_cannot_load_is_503(api: httpx.Client, api_server: ApiServer) -> None:
    for ref in ("champion", "1"):  # the second answer comes from the remembered failure
        response = predict(api, api_server, f"{BROKEN_MODEL}/{ref}", {"data": [ROW]})
        assert response.status_code == 503
        assert "could not be loaded" in response.json()["detail"]
    assert "Traceback" not in response.text


def test_model_that_raises_is_a_json_500_without_traceback(
    api: httpx.Client, api_server: ApiServer
) -> None:
    response = predict(api, api_server, f"{FAILING_MODEL}/1", {"data": [ROW]})
    assert response.status_code == 500
    body = response.json()
    assert "failed to score" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text
    assert "always fails" not in response.text
    log_lines = [json.loads(line) for line in api_server.log_path.read_text().splitlines()]
    failures = [e for e in log_lines if e.get("request_id") == body["request_id"]]
    assert any("this model always fails" in e.get("exception", "") for e in failures)


# -- observability --------------------------------------------------------------------------


def test_metrics(api: httpx.Client, api_server: ApiServer, registered: Registered) -> None:
    version = registered.champion.version
    before = api.get("/metrics").text
    counted = {"model": MODEL, "version": version, "api_key": "tests"}
    requests_before = metric_sum(before, "oci_mlops_prediction_requests_total", **counted)
    for _ in range(3):
        assert (
            predict(api, api_server, f"{MODEL}/champion", {"data": [ROW, ROW]}).status_code == 200
        )
    assert predict(api, api_server, f"{MODEL}/champion", {"data": []}).status_code == 422
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/predict/{name}/{ref}"
    assert metric_value(text, "oci_mlops_http_requests_total", route=route, status="200") >= 3
    assert metric_value(text, "oci_mlops_http_requests_total", route=route, status="422") >= 1
    assert (
        metric_value(
            text,
            "oci_mlops_http_request_duration_seconds_bucket",
            route=route,
            status="200",
            le="+Inf",
        )
        >= 3
    )
    assert (
        metric_value(text, "oci_mlops_model_load_seconds_count", model=MODEL, version=version) == 1
    )
    assert metric_sum(text, "oci_mlops_prediction_requests_total", **counted) == requests_before + 3
    assert metric_value(text, "oci_mlops_predicted_rows_total", model=MODEL, version=version) >= 6


def test_unmatched_routes_are_labelled_without_the_path(api: httpx.Client) -> None:
    assert api.get("/no/such/path/abc123").status_code == 404
    text = api.get("/metrics").text
    assert (
        metric_value(text, "oci_mlops_http_requests_total", route="<unmatched>", status="404") >= 1
    )
    assert "abc123" not in text


def test_access_log_is_json(api: httpx.Client, api_server: ApiServer) -> None:
    response = api.get("/health", headers={"X-Request-ID": "trace-me-123"})
    assert response.headers["X-Request-ID"] == "trace-me-123"
    entries = [json.loads(line) for line in api_server.log_path.read_text().splitlines()]
    access = [e for e in entries if e["logger"] == "oci_mlops_app.access"]
    mine = [e for e in access if e.get("request_id") == "trace-me-123"]
    assert len(mine) == 1
    assert mine[0]["route"] == "/health"
    assert mine[0]["status"] == 200
    assert mine[0]["method"] == "GET"
    assert mine[0]["duration_ms"] >= 0
    assert all("X-API-Key" not in json.dumps(e) for e in access)
    assert not any(
        api_server.keys[0] in line for line in api_server.log_path.read_text().splitlines()
    )
