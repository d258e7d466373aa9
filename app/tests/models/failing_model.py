"""An MLflow "model from code" whose predict() always raises (for the 500-error test)."""

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class AlwaysFails(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[int]:
        raise RuntimeError("this model always fails")


set_model(AlwaysFails())
