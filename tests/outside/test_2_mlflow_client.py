"""MLflow's stock Python client against the published tracking server, with its default settings.

With an S3 artifacts destination the server advertises multipart (presigned)
downloads, and the client then fetches every artifact directly from the
object store by a URL the server signed. This works only when the object
store is reachable from where the user is at the address the server signs
for: the case that hung forever before. The client runs in a subprocess that
is killed after CLIENT_TIMEOUT seconds, so a hang fails the test.
"""

from __future__ import annotations

import json
import os

import requests
from conftest import passed, python, report

BIG_MB = 120
# Seconds before the client is declared hung (OUTSIDE_CLIENT_TIMEOUT to shorten it).
CLIENT_TIMEOUT = float(os.environ.get("OUTSIDE_CLIENT_TIMEOUT", "900"))

ROUND_TRIP = r"""
import hashlib, json, os, tempfile, time
import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

BIG_MB = int(os.environ["BIG_MB"])
NAME = "outside-in-roundtrip"
timings = {}
def timed(key, fn, *args, **kwargs):
    start = time.monotonic()
    result = fn(*args, **kwargs)
    timings[key] = round(time.monotonic() - start, 2)
    return result

def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

work = tempfile.mkdtemp()
big = os.path.join(work, "big.bin")
with open(big, "wb") as f:
    for _ in range(BIG_MB):
        f.write(os.urandom(1 << 20))
X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_experiment("outside-in")
with mlflow.start_run() as run:
    mlflow.log_params({"C": 0.5, "max_iter": 500})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    info = timed("log_model_s", mlflow.sklearn.log_model, model, name="model", input_example=X.head(2),
                 registered_model_name=NAME)
    timed("upload_big_s", mlflow.log_artifact, big, artifact_path="data")
client = MlflowClient()
client.set_registered_model_alias(NAME, "champion", info.registered_model_version)
loaded = timed("load_by_alias_s", mlflow.pyfunc.load_model, f"models:/{NAME}@champion")
predictions = loaded.predict(X.head(5)).tolist()
dest = os.path.join(work, "download")
os.makedirs(dest)
local = timed("download_all_s", mlflow.artifacts.download_artifacts, run_id=run.info.run_id, dst_path=dest)
got = sha256(os.path.join(local, "data", "big.bin"))
model_dir = timed("download_model_s", mlflow.artifacts.download_artifacts,
                  artifact_uri=f"models:/{NAME}/{info.registered_model_version}", dst_path=os.path.join(work, "model"))
fetched = client.get_run(run.info.run_id)
print(json.dumps({
    "run_id": run.info.run_id, "version": info.registered_model_version, "predictions": predictions,
    "expected": y.head(5).tolist(), "sha_sent": sha256(big), "sha_got": got,
    "params": fetched.data.params, "metrics": fetched.data.metrics,
    "champion": client.get_model_version_by_alias(NAME, "champion").version,
    "files": sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs),
    "model_files": sorted(
        os.path.relpath(os.path.join(d, f), model_dir) for d, _, fs in os.walk(model_dir) for f in fs
    ),
    "timings": timings,
}))
"""


def test_server_advertises_presigned_downloads(user_env):
    """The server hands out object-store URLs: the round trip below exercises them."""
    info = requests.get(
        f"{user_env['MLFLOW_TRACKING_URI']}/api/3.0/mlflow/server-info",
        timeout=30,
        verify=user_env["OCI_MLOPS_CA_BUNDLE"],
        auth=(user_env["MLFLOW_TRACKING_USERNAME"], user_env["MLFLOW_TRACKING_PASSWORD"]),
    )
    assert info.status_code == 200, info.text
    report(
        f"MLflow server-info: multipart_downloads_enabled={info.json().get('multipart_downloads_enabled')}, "
        f"multipart_uploads_enabled={info.json().get('multipart_uploads_enabled')}"
    )


def test_anonymous_access_is_refused(user_env):
    resp = requests.get(
        f"{user_env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        timeout=30,
        verify=user_env["OCI_MLOPS_CA_BUNDLE"],
    )
    assert resp.status_code == 401


def test_round_trip_with_a_large_artifact_and_default_client_settings(user_env):
    env = {**user_env, "BIG_MB": str(BIG_MB)}
    out = passed(python(ROUND_TRIP, env, CLIENT_TIMEOUT), "MLflow client round trip")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["sha_got"] == result["sha_sent"], "the downloaded artifact differs from the uploaded one"
    assert result["params"] == {"C": "0.5", "max_iter": "500"}
    assert result["metrics"]["loss"] == 1.0 / 3
    assert result["champion"] == result["version"]
    assert result["predictions"] == result["expected"], "the model loaded by alias does not predict iris"
    assert "data/big.bin" in result["files"]
    assert {"MLmodel", "model.skops"} <= set(result["model_files"]), result["model_files"]
    t = result["timings"]
    report(
        f"MLflow client (defaults), {BIG_MB} MB artifact: upload {t['upload_big_s']} s "
        f"({BIG_MB / max(t['upload_big_s'], 0.01):.0f} MB/s), log+register model {t['log_model_s']} s, "
        f"load by alias {t['load_by_alias_s']} s, download the run's artifacts {t['download_all_s']} s "
        f"({BIG_MB / max(t['download_all_s'], 0.01):.0f} MB/s), the model's {t['download_model_s']} s; "
        f"run files {result['files']}, model files {result['model_files']}"
    )
