"""The access log line and the request metrics exist before the client has the whole response.

A client (the outside-in suite, the rotation test) that has read a response then looks for its
log line: the middleware must write it before it hands the server the last body message, not
after the application returns.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from oci_mlops_app.api import ObservabilityMiddleware
from oci_mlops_app.logs import ACCESS_LOGGER


def _scope(path: str) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "client": ("10.0.1.13", 40000),
    }


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize("chunks", [1, 3])
def test_the_access_line_is_written_before_the_last_body_message(caplog, chunks):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": b"x", "more_body": i < chunks - 1})

    lines_when_sent: list[int] = []

    async def send(message):
        if message["type"] == "http.response.body":
            lines_when_sent.append(len([r for r in caplog.records if r.name == ACCESS_LOGGER]))

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        asyncio.run(ObservabilityMiddleware(app)(_scope("/ordered"), _receive, send))
    # none before the last message, exactly one when it goes out, and none added after
    assert lines_when_sent == [0] * (chunks - 1) + [1]
    assert len([r for r in caplog.records if r.name == ACCESS_LOGGER]) == 1


def test_a_response_that_never_finishes_is_still_logged_once(caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise RuntimeError("client gone")

    async def send(message):
        return None

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), pytest.raises(RuntimeError):
        asyncio.run(ObservabilityMiddleware(app)(_scope("/broken"), _receive, send))
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(records) == 1
    assert records[0].status == 200
