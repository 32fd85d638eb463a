"""Logging and registering a trained model: the pyfunc, its signature and input example.

A version is registered only after the pyfunc has been logged and has answered its own input
example (:func:`log_and_register`), so a half-registered model never exists: if anything
fails before ``mlflow.register_model`` returns, no version is created and the run is marked
FAILED by :func:`~stockcast.tracking.mlflow_utils.tracked_run`.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

import stockcast
from stockcast.forecast.bundle import ForecastBundle, example_input
from stockcast.forecast.pyfunc import TFTPyfunc

#: Packages pinned in every registered model's requirements (besides stockcast itself).
REQUIREMENTS = ("torch", "lightning", "pytorch-forecasting", "pandas", "mlflow", "pandera", "hydra-core")


def input_schema(example: pd.DataFrame) -> Schema:
    """Input schema naming every raw column, each optional and of type Any.

    The model's own validation (``ForecastBundle.prepare``) checks presence and types and
    names the table, column and rows at fault; MLflow's enforcement would reject harmless
    differences (pandas categoricals, integer columns that carry NaN in future rows).
    """
    return Schema([ColSpec(AnyType(), name, required=False) for name in example.columns])


def requirements() -> list[str]:
    """``stockcast==<version>`` and the pinned versions of the packages a model needs."""
    return [f"stockcast=={stockcast.__version__}"] + [f"{p}=={package_version(p)}" for p in REQUIREMENTS]


def log_and_register(
    bundle: ForecastBundle,
    checkpoints: list[Path],
    raw: pd.DataFrame,
    folder: Path,
    model_name: str,
    tags: dict[str, str],
) -> tuple[str, str]:
    """Log ``bundle`` as a pyfunc in the active run and register it as ``model_name``.

    Args:
        bundle: The model as it serves (calibration included).
        checkpoints: The Lightning checkpoint of each member (one for a single model).
        raw: Source-schema rows of the model's series (the input example is cut from them).
        folder: Where the artifacts are staged.
        model_name: Registered model name.
        tags: Tags of the new version (run id, dataset, data_end, test metrics...).

    Returns:
        ``models:/<name>/<version>`` and the version number.
    """
    spec = bundle.spec
    artifacts = bundle.save(folder, [Path(c) for c in checkpoints])
    example = example_input(
        raw,
        spec,
        n_series=2,
        n_history=int(spec.window["max_encoder_length"]),
        horizon=int(spec.window["max_prediction_length"]),
        series=bundle.series,
    )
    output = bundle.predict(example)
    signature = ModelSignature(inputs=input_schema(example), outputs=infer_signature(example, output).outputs)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TFTPyfunc(),
        artifacts=artifacts,
        signature=signature,
        input_example=example,
        pip_requirements=requirements(),
    )
    version = mlflow.register_model(info.model_uri, model_name, tags=tags)
    mlflow.set_tags({"stockcast.model_name": model_name, "stockcast.model_version": version.version})
    return f"models:/{model_name}/{version.version}", version.version
