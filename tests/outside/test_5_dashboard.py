"""The dashboard in a real browser (the system's headless Chromium, driven by Playwright).

A user opens the published URL, sees the registered models with their
aliases, and makes a prediction through the form, which the dashboard sends
to the serving API. The screenshot is artifacts/outside-dashboard.png.
"""

from __future__ import annotations

import re
import shutil

import pytest
import requests
from conftest import ARTIFACTS, report

MODEL = "quickstart-iris"
TIMEOUT_MS = 60_000


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "no chromium on this machine: scripts/host-prereqs installs Debian's package"
    return path


@pytest.fixture(scope="module")
def page(user_env):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(user_env["OCI_MLOPS_DASHBOARD_URL"], timeout=TIMEOUT_MS)
        yield page
        browser.close()


def _champion(env) -> str:
    resp = requests.get(
        f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
        timeout=30,
        auth=(env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]),
    )
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()["model_version"]["version"]


def test_the_models_table_shows_the_models_and_their_champion(page, user_env):
    page.get_by_role("heading", name="OCI MLOps dashboard").wait_for()
    # The table is a canvas grid; its accessible copy in the DOM carries the cells.
    page.get_by_text(re.compile(f"champion → v{_champion(user_env)}")).first.wait_for(state="attached")
    assert page.get_by_text(MODEL, exact=True).count() >= 1


def test_a_prediction_through_the_form(page, user_env):
    page.get_by_role("tab", name="Predict").click()
    page.get_by_text("Model", exact=True).first.wait_for()
    model_select = page.locator("div[data-testid='stSelectbox']").filter(has_text="Model").first
    model_select.click()
    page.get_by_role("option", name=MODEL, exact=True).click()
    ref_select = page.locator("div[data-testid='stSelectbox']").filter(has_text="Alias or version").first
    ref_select.click()
    page.get_by_role("option", name="champion", exact=True).click()
    for label, value in (
        ("sepal length (cm)", "5.1"),
        ("sepal width (cm)", "3.5"),
        ("petal length (cm)", "1.4"),
        ("petal width (cm)", "0.2"),
    ):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Predict").click()
    answer = page.get_by_text(re.compile(r"^Prediction: "))
    answer.wait_for()
    text = answer.inner_text()
    page.screenshot(path=str(ARTIFACTS / "outside-dashboard.png"), full_page=True)
    report(f"dashboard (headless Chromium): {text!r}")
    assert f"{MODEL} version {_champion(user_env)}" in text, text
