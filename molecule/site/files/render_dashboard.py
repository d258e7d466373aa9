"""Run the installed dashboard once with Streamlit's AppTest and print what it shows, as JSON.

Runs on the api host, as the dashboard's user, with the dashboard's environment
file: it exercises the deployed code, credentials and network paths. The
dashboard asks for a sign-in first: the MLflow user and password come from
DASHBOARD_TEST_USERNAME / DASHBOARD_TEST_PASSWORD in the environment.
Without them the script only reports what an anonymous visitor sees.
"""

import json
import os
import sys
from typing import Any

from oci_mlops_app.cli import DASHBOARD_SCRIPT
from streamlit.testing.v1 import AppTest

model = sys.argv[1]
username = os.environ.pop("DASHBOARD_TEST_USERNAME", "")
password = os.environ.pop("DASHBOARD_TEST_PASSWORD", "")
app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=120)
app.run()
result: dict[str, Any] = {
    "exception": [str(e.value) for e in app.exception],
    "anonymous": {
        "inputs": [t.label for t in app.text_input],
        "tabs": [tab.label for tab in app.tabs],
        "tables": len(app.dataframe),
    },
}
if username and not app.exception:
    app.text_input(key="sign_in_username").input(username)
    app.text_input(key="sign_in_password").input(password)
    app.button(key="FormSubmitter:sign_in-Sign in").click().run()
    result["exception"] = [str(e.value) for e in app.exception]
    result["errors"] = [str(e.value) for e in app.error]
    result["tabs"] = [tab.label for tab in app.tabs]
    if not app.exception and app.tabs:
        models = app.tabs[0].dataframe[0].value
        result["models"] = models["model"].tolist()
        result["aliases"] = models.set_index("model")["aliases"].astype(str).to_dict()
        app.selectbox(key="predict_model").set_value(model).run()
        app.selectbox(key="predict_ref").set_value("champion").run()
        for number_input, value in zip(app.number_input, [5.1, 3.5, 1.4, 0.2], strict=True):
            number_input.set_value(value)
        app.button(key="FormSubmitter:single_prediction-Predict").click().run()
        result["prediction"] = [s.value for s in app.success]
        result["errors"] += [str(e.value) for e in app.error]
json.dump(result, sys.stdout)
