"""What every task that uses a registered model starts from: the model and its data.

:func:`load_context` is the one place a task config turns into a model and a panel:

1. the model reference ``cfg.model`` is resolved by
   :func:`stockcast.tracking.registry.resolve_model` (``null`` = the ``cfg.champion.alias``
   holder, else the latest version; ``latest``; ``models:/name@alias``; ``models:/name/3``;
   a version number; a training run id) in registered model ``cfg.model_name``;
2. the model's own dataset config is read: as the model saw it (its ``data.until``), or up to
   another date, or everything the source holds now (``until``);
3. the series are restricted by :func:`stockcast.data.panel.select_series`: first to the
   series the model was trained on, then to the first ``cfg.max_series`` of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig

from stockcast.data.panel import load_panel, select_series
from stockcast.data.spec import DatasetSpec
from stockcast.forecast.bundle import ForecastBundle
from stockcast.tracking.mlflow_utils import setup_tracking
from stockcast.tracking.registry import load_bundle, resolve_model


@dataclass
class ModelContext:
    """A registered model version, its forecaster and the panel it forecasts."""

    version: ModelVersion
    bundle: ForecastBundle
    spec: DatasetSpec
    panel: pd.DataFrame

    @property
    def uri(self) -> str:
        return f"models:/{self.version.name}/{self.version.version}"


def resolve(cfg: DictConfig) -> ModelVersion:
    """The model version ``cfg`` refers to (``model``, ``model_name``, ``champion.alias``)."""
    setup_tracking()
    alias = (cfg.get("champion") or {}).get("alias", "champion")
    return resolve_model(cfg.get("model"), cfg.model_name, alias)


#: ``until`` value of :func:`load_context` meaning "the data as the model's config reads it".
AS_TRAINED = "as_trained"


def load_context(cfg: DictConfig, *, until: str | None = AS_TRAINED) -> ModelContext:
    """Resolve the model, load it and the panel of its series (module docstring).

    Args:
        cfg: A task config with ``model``, ``model_name``, optional ``champion.alias`` and
            ``max_series``.
        until: :data:`AS_TRAINED` = the model's dataset config as it was trained (its own
            ``until``); ``None`` = everything the source holds now (newly arrived actuals
            included); a date = the data as known on that date.
    """
    version = resolve(cfg)
    bundle = load_bundle(version)
    spec = bundle.spec if until == AS_TRAINED else dataclasses.replace(bundle.spec, until=until)
    panel = select_series(load_panel(spec), bundle.series, cfg.get("max_series"))
    return ModelContext(version, bundle, spec, panel)
