"""An MLflow "model from code" whose loader writes a marker file (for the served-models tests).

What a malicious registered model does: its code runs in whatever process loads it. The marker's
path comes from the model's config (``model_config={"marker": ...}`` at logging time).
"""

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class WritesMarkerOnLoad(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        Path(context.model_config["marker"]).write_text("the loader ran\n", encoding="utf-8")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[int]:
        return [0] * len(model_input)


set_model(WritesMarkerOnLoad())
