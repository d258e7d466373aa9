"""schemathesis (property-based API testing) over every operation of the API's OpenAPI schema,
with and without a key: no 5xx, every response as the schema documents it (status, content
type, body schema), and every request the schema refuses refused by the API.

The settings (seed, example budget, the session model's name for the path parameters) are in
tests/schemathesis.toml: the same ~300 cases per run, in 10-30 s on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import ApiServer

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api_server: ApiServer, tmp_path: Path, with_key: bool
) -> None:
    command = [
        lab.venv_bin("st"),
        f"--config-file={CONFIG}",
        "run",
        f"{api_server.url}/openapi.json",
        "--checks=all",
        "--request-timeout=30",
        "--no-color",
    ]
    if with_key:
        command += ["--header", f"X-API-Key: {api_server.keys[0]}"]
    started = time.monotonic()
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    took = time.monotonic() - started
    report = f"{run.stdout[-8000:]}\n{run.stderr[-2000:]}\n(st run took {took:.1f} s)"
    print(report)
    assert run.returncode == 0, report
    # every generated case ran and passed (e.g. "317 generated, 317 passed, 6 skipped")
    assert re.search(r"\b(\d+) generated, \1 passed\b", run.stdout), report
