"""Run the installed dashboard once with Streamlit's AppTest and print what it shows, as JSON.

Runs on the api host, as the dashboard's user, with the dashboard's environment
file: it exercises the deployed code, credentials and network paths.
"""

import json
import sys

from oci_mlops_app.cli import DASHBOARD_SCRIPT
from streamlit.testing.v1 import AppTest

model = sys.argv[1]
app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=120)
app.run()
result = {
    "exception": [str(e.value) for e in app.exception],
    "errors": [str(e.value) for e in app.error],
    "tabs": [tab.label for tab in app.tabs],
}
if not app.exception:
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
