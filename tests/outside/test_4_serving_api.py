"""The serving API's documented calls (app/README.md), through the edge (HTTPS, the lab CA) with the user's key."""

from __future__ import annotations

import pytest
import requests

ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}
MODEL = "iris-classifier"  # registered by the iris_training pipeline (the quickstart ran it)


def _post(env, path, body, key=True):
    headers = {"X-API-Key": env["OCI_MLOPS_API_KEY"]} if key else {}
    return requests.post(
        f"{env['OCI_MLOPS_API_URL']}{path}", json=body, headers=headers, timeout=120, verify=env["OCI_MLOPS_CA_BUNDLE"]
    )


def test_health_and_readiness(user_env):
    for path in ("/health", "/ready"):
        resp = requests.get(
            f"{user_env['OCI_MLOPS_API_URL']}{path}", timeout=30, verify=user_env["OCI_MLOPS_CA_BUNDLE"]
        )
        assert resp.status_code == 200, path


@pytest.mark.parametrize("ref", ["Production", "champion"])
def test_predict_with_the_champion(user_env, ref):
    resp = _post(user_env, f"/predict/{MODEL}/{ref}", ROW)
    assert resp.status_code == 200, resp.text[:500]
    answer = resp.json()
    assert answer["model_name"] == MODEL
    assert len(answer["predictions"]) == 1 and answer["predictions"][0] in (0, 1, 2, "0", "1", "2"), answer


def test_production_and_champion_are_the_same_version(user_env):
    versions = {
        ref: _post(user_env, f"/predict/{MODEL}/{ref}", ROW).json()["model_version"]
        for ref in ("Production", "champion")
    }
    assert versions["Production"] == versions["champion"], versions


def test_no_key_no_prediction(user_env):
    assert _post(user_env, f"/predict/{MODEL}/champion", ROW, key=False).status_code == 401
    resp = requests.get(f"{user_env['OCI_MLOPS_API_URL']}/models", timeout=30, verify=user_env["OCI_MLOPS_CA_BUNDLE"])
    assert resp.status_code == 401


def test_models_lists_what_the_users_registered(user_env):
    resp = requests.get(
        f"{user_env['OCI_MLOPS_API_URL']}/models",
        headers={"X-API-Key": user_env["OCI_MLOPS_API_KEY"]},
        timeout=30,
        verify=user_env["OCI_MLOPS_CA_BUNDLE"],
    )
    assert resp.status_code == 200, resp.text[:300]
    names = str(resp.json())
    assert MODEL in names and "quickstart-iris" in names, names[:500]


def test_a_malformed_request_is_rejected(user_env):
    assert _post(user_env, f"/predict/{MODEL}/champion", {"data": [[5.1, 3.5]]}).status_code == 422
