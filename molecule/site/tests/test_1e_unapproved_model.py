"""A model nobody approved is never served: registered by an ordinary MLflow user, its loader never runs.

Any MLflow user may register a model, and a pyfunc model's code runs in whatever process loads
it. As `mlflow-reader` (the API's own MLflow user, READ on everything: it may even read what it
registers) the test registers a model whose loader writes a marker file, and aliases it champion.
Asked for it through the edge, and along the dashboard's path (the dashboard's key, from its host,
to the API's private address): 404 each time, the API lists only what it serves, and on the api
host neither the marker nor any downloaded file of the model exists (the API downloads into
/var/cache/oci-mlops-api; its private /tmp is searched too; the token is in the loader's file
name and in the marker's).
"""

import json
import subprocess
import uuid

import requests
import sitekit
from sitekit import API, MLFLOW

TOKEN = uuid.uuid4().hex[:12]
NAME = f"unapproved-{TOKEN}"
ROW = [[5.1, 3.5, 1.4, 0.2]]
# Where a downloaded copy of the model or the marker could be on the api host (the service's
# PrivateTmp lives under /tmp/systemd-private-*; its state, runtime and download directories).
SEARCHED = "/tmp /var/tmp /var/lib/oci-mlops-api /run/oci-mlops-api /var/cache/oci-mlops-api /var/lib/dashboard"

# Run on the mlflow host with MLflow's own virtualenv, request on stdin (the password never on a
# command line). The loader is an MLflow "model from code": its file is the model's code.
REGISTER = r"""
import json, os, sys, tempfile
req = json.load(sys.stdin)
os.environ.update(MLFLOW_TRACKING_URI=req["uri"], MLFLOW_TRACKING_USERNAME=req["user"],
                  MLFLOW_TRACKING_PASSWORD=req["password"], MLFLOW_DISABLE_TELEMETRY="true",
                  MLFLOW_HTTP_REQUEST_MAX_RETRIES="1")
import mlflow
code = os.path.join(tempfile.mkdtemp(), "loader_%s.py" % req["token"])
with open(code, "w") as out:
    out.write(
        "import os, tempfile\n"
        "import mlflow.pyfunc\n"
        "from mlflow.models import set_model\n"
        "class Marker(mlflow.pyfunc.PythonModel):\n"
        "    def load_context(self, context):\n"
        "        path = os.path.join(tempfile.gettempdir(), 'marker-%s')\n"
        "        open(path, 'w').write('the loader ran')\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        return [0] * len(model_input)\n"
        "set_model(Marker())\n" % req["token"]
    )
mlflow.set_experiment(req["name"])
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(name="model", python_model=code,
                                   registered_model_name=req["name"], pip_requirements=[])
client = mlflow.MlflowClient()
client.set_registered_model_alias(req["name"], "champion", info.registered_model_version)
got = client.get_model_version_by_alias(req["name"], "champion")
experiment = mlflow.get_experiment_by_name(req["name"])
print(json.dumps({"version": str(got.version), "experiment_id": experiment.experiment_id}))
"""


def _register_as_reader() -> dict:
    request = {
        "uri": f"http://{sitekit.ip(MLFLOW)}:5000",
        "user": "mlflow-reader",
        "password": sitekit.secret("mlflow_readonly_password"),
        "name": NAME,
        "token": TOKEN,
    }
    run = subprocess.run(
        ["docker", "exec", "-i", MLFLOW, "/opt/mlflow/venv/bin/python", "-c", REGISTER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"registering as mlflow-reader failed: {run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def _traces_on_the_api_host() -> str:
    """Files on the api host whose name carries the token: the marker, or a downloaded loader."""
    return sitekit.sh(API, f"find {SEARCHED} -name '*{TOKEN}*' 2>/dev/null", timeout=120).stdout.strip()


def _admin(method: str, path: str, **body) -> None:
    """A best-effort clean-up call as the admin, through the edge."""
    requests.request(
        method,
        f"{sitekit.EDGE_URL}/mlflow{path}",
        json=body,
        timeout=30,
        verify=sitekit.CA,
        auth=("admin", sitekit.secret("mlflow_admin_password")),
    )


def test_a_model_nobody_approved_is_404_and_its_loader_never_runs():
    registered = _register_as_reader()
    try:
        # the API's MLflow user can read it: only the API's list of served models stands in the way
        alias = requests.get(
            f"{sitekit.EDGE_URL}/mlflow/api/2.0/mlflow/registered-models/alias",
            params={"name": NAME, "alias": "champion"},
            auth=("mlflow-reader", sitekit.secret("mlflow_readonly_password")),
            timeout=30,
            verify=sitekit.CA,
        )
        assert alias.status_code == 200, alias.text[:300]

        # through the edge, as the users' client.env does
        key = {"X-API-Key": sitekit.api_key()}
        for ref in ("champion", registered["version"], "Production"):
            resp = requests.post(
                f"{sitekit.EDGE_URL}/api/predict/{NAME}/{ref}",
                json={"data": ROW},
                headers=key,
                timeout=120,
                verify=sitekit.CA,
            )
            assert resp.status_code == 404, f"{ref}: {resp.status_code} {resp.text[:300]}"
        detail = requests.get(f"{sitekit.EDGE_URL}/api/models/{NAME}", headers=key, timeout=60, verify=sitekit.CA)
        assert detail.status_code == 404, detail.text[:300]
        listed = requests.get(f"{sitekit.EDGE_URL}/api/models", headers=key, timeout=60, verify=sitekit.CA)
        assert listed.status_code == 200 and NAME not in listed.text, listed.text[:500]

        # the dashboard's path: its own key and API URL (its environment file), from its host
        script = (
            "OCI_MLOPS_API_KEY=$(sed -n 's/^OCI_MLOPS_API_KEY=//p' /etc/oci-mlops-dashboard/dashboard.env); "
            "OCI_MLOPS_API_URL=$(sed -n 's/^OCI_MLOPS_API_URL=//p' /etc/oci-mlops-dashboard/dashboard.env); "
            "for ref in champion 1; do "
            "curl -s -o /dev/null -w '%{http_code} ' -m 60 -H \"X-API-Key: $OCI_MLOPS_API_KEY\" "
            "-H 'Content-Type: application/json' -d '" + json.dumps({"data": ROW}) + "' "
            f'"$OCI_MLOPS_API_URL/predict/{NAME}/$ref"; done; '
            'curl -s -m 60 -H "X-API-Key: $OCI_MLOPS_API_KEY" "$OCI_MLOPS_API_URL/models"'
        )
        codes = sitekit.out(API, script)
        assert codes.startswith("404 404 "), codes[:300]
        assert NAME not in codes, "the API lists a model it does not serve to the dashboard"

        traces = _traces_on_the_api_host()
        assert traces == "", f"the unapproved model reached the api host:\n{traces}"
        sitekit.report(
            f"unapproved model {NAME} (registered as mlflow-reader): 404 through the edge and the "
            "dashboard's path, no marker, nothing downloaded"
        )
    finally:
        _admin("DELETE", "/api/2.0/mlflow/registered-models/delete", name=NAME)
        _admin("POST", "/api/2.0/mlflow/experiments/delete", experiment_id=registered["experiment_id"])
