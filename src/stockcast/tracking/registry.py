"""The model registry in one place: find the version a user referred to, load it, aliases.

Every task that loads a registered model (evaluate, optimize, backtest, monitor, warm-start
training) resolves references here, so ``models:/name@alias``, ``models:/name/3``, ``3``, a
training run id, ``latest`` and ``null`` (the champion, else the latest version) mean the same
thing everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from stockcast.forecast.bundle import ForecastBundle


def resolve_model(ref: str | int | None, name: str, alias: str = "champion") -> ModelVersion:
    """Find the registered model version a user referred to (the one rule every task uses).

    Args:
        ref: ``None`` = the version holding ``alias`` (the champion), else the newest
            version; ``latest`` = the newest version; ``models:/<name>@<alias>``,
            ``models:/<name>/<version>``, a version number, or a training run id.
        name: Registered model name used when ``ref`` does not carry one.
        alias: The alias ``None`` looks for first.

    Raises:
        LookupError: No such version (or the model has none).
    """
    client = mlflow.MlflowClient()
    ref = None if ref is None or str(ref) in ("", "null", "None") else str(ref)
    if ref is None:
        champion = current_champion(name, alias)
        if champion is not None:
            return champion
        ref = "latest"
    if ref == "latest":
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except MlflowException as err:
            raise LookupError(f"registered model '{name}': {err.message}") from err
        if not versions:
            raise LookupError(f"registered model '{name}' has no versions: run train.py first")
        return max(versions, key=lambda v: int(v.version))
    try:
        if ref.startswith("models:/"):
            body = ref[len("models:/") :]
            if "@" in body:
                model, alias = body.split("@", 1)
                return client.get_model_version_by_alias(model, alias)
            model, _, version = body.partition("/")
            return client.get_model_version(model, version)
        if ref.isdigit():
            return client.get_model_version(name, ref)
    except MlflowException as err:
        raise LookupError(f"model reference {ref!r}: {err.message}") from err
    versions = client.search_model_versions(f"name='{name}' and run_id='{ref}'")
    if not versions:
        versions = [v for v in client.search_model_versions(f"name='{name}'") if v.tags.get("run_id") == ref]
    if not versions:
        raise LookupError(f"no version of '{name}' was trained by run {ref}")
    return max(versions, key=lambda v: int(v.version))


def load_bundle(version: ModelVersion) -> ForecastBundle:
    """The :class:`~stockcast.forecast.pyfunc.ForecastBundle` behind a registered version."""
    model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    return model.unwrap_python_model().bundle


def current_champion(name: str, alias: str) -> ModelVersion | None:
    """The version holding ``alias`` (``None`` if the alias or the model does not exist)."""
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def data_end(version: ModelVersion):
    """Last period the version was trained and tested on (its ``data_end`` tag, else the
    ``data_end`` parameter of its training run): the monitor checks the periods after it.

    Raises:
        LookupError: The version carries neither.
    """
    import pandas as pd

    value = version.tags.get("data_end")
    if not value and version.run_id:
        value = mlflow.MlflowClient().get_run(version.run_id).data.params.get("data_end")
    if not value:
        raise LookupError(
            f"model {version.name} v{version.version} has no data_end tag or training-run "
            "parameter: cannot tell which actuals are new"
        )
    return pd.Timestamp(value)
