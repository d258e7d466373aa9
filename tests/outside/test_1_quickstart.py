"""docs/quickstart.md, executed: every `sh` and `python` block, in order, as a user runs them.

The blocks are read from the document itself (no second copy), so the
document cannot rot. A block preceded by `<!-- outside-in: skip ... -->` is
not run (the client install: this suite's environment is built from the lock
that pins the same packages, which test_the_install_step_pins_the_servers_release checks).
"""

from __future__ import annotations

import re
import time

import pytest
import yaml
from conftest import ROOT, base_env, passed, python, report, run

DOC = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"(<!-- outside-in: skip[^>]*-->\n)?```(sh|python)\n(.*?)```", re.S)
STEP_TIMEOUT = 900


def _blocks() -> list[tuple[str, str, bool]]:
    return [(lang, code, bool(skip)) for skip, lang, code in BLOCK.findall(DOC.read_text(encoding="utf-8"))]


STEPS = [(lang, code) for lang, code, skip in _blocks() if not skip]
FAILED: list[int] = []


def test_the_install_step_pins_the_servers_release():
    skipped = [code for _, code, skip in _blocks() if skip]
    assert len(skipped) == 1 and "pip install" in skipped[0], "only the install step may be skipped"
    defaults = yaml.safe_load((ROOT / "ansible" / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    lock = (ROOT / "tests" / "outside" / "requirements.txt").read_text().split()
    assert f"mlflow=={defaults['mlflow_version']}" in skipped[0].split()
    for pin in skipped[0].split():
        if "==" in pin:
            assert pin in lock, f"the quickstart installs {pin}, this suite's lock does not"


def test_the_first_step_sources_the_client_env_and_reaches_mlflow():
    lang, code = STEPS[0]
    assert lang == "sh" and "client.env" in code
    # A fresh shell: nothing but what the step itself sets.
    out = passed(run(["bash", "-euo", "pipefail", "-c", code], base_env(), 60), "step 1")
    assert out.strip() == "OK", out


@pytest.mark.parametrize(
    "index", range(1, len(STEPS)), ids=[f"step{i + 1}-{STEPS[i][0]}" for i in range(1, len(STEPS))]
)
def test_step(index, user_env):
    if FAILED:
        pytest.skip(f"step {FAILED[0] + 1} failed")
    lang, code = STEPS[index]
    start = time.monotonic()
    if lang == "sh":
        result = run(["bash", "-euo", "pipefail", "-c", code], user_env, STEP_TIMEOUT)
    else:
        result = python(code, user_env, STEP_TIMEOUT)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        FAILED.append(index)
    out = passed(result, f"quickstart step {index + 1} ({lang})")
    first_line = code.strip().splitlines()[0][:60]
    report(f"quickstart step {index + 1} ({lang}, `{first_line}`): {seconds:.1f} s; output: {out.strip()[-300:]!r}")
