"""The registered model: an MLflow pyfunc that maps a raw-schema DataFrame to forecasts.

A downstream job does::

    model = mlflow.pyfunc.load_model("models:/stockcast-tft@champion")
    forecast = model.predict(df)

``df`` uses the dataset's *source* column names (as in its ``conf/data/*.yaml``): each
series' history (demand observed) followed by its future periods (demand missing, known
future covariates filled in). The answer is the forecast table (:mod:`stockcast.schema`)
for those future periods (:meth:`stockcast.forecast.bundle.ForecastBundle.predict`).
"""

from __future__ import annotations

import mlflow
import pandas as pd

from stockcast.forecast.bundle import ForecastBundle


class TFTPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around :class:`ForecastBundle`."""

    def load_context(self, context) -> None:
        self.bundle = ForecastBundle.load(context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return self.bundle.predict(model_input)


