"""Baseline forecasters for honest evaluation: what the TFT has to beat.

Every baseline implements the forecaster protocol of :mod:`stockcast.forecast.protocol`
(``forecast(panel, origins, horizon, quantiles=None)``); what it needs from the dataset
(frequency, covariate roles, encoder window) comes with its ``spec`` field at construction.
Tasks build them from ``conf/baselines/<name>.yaml``, one entry per baseline with its
``_target_``, e.g. ``instantiate(entry, _partial_=True, _convert_="all")(name=key, spec=spec)``
(partial, so the spec dataclass is passed as is rather than merged into the config).

* :class:`NaiveBaseline` (last value), :class:`SeasonalNaiveBaseline` and
  :class:`MovingAverageBaseline`: empirical quantiles of the method's own in-sample errors
  (:mod:`stockcast.baselines.empirical`);
* :class:`AutoETSBaseline`: statsforecast ``AutoETS`` (:mod:`stockcast.baselines.ets`);
* :class:`LightGBMBaseline`: mlforecast direct multi-horizon LightGBM quantile models with the
  TFT's quantile calibration (:mod:`stockcast.baselines.lightgbm`).
"""

from __future__ import annotations

from stockcast.baselines.base import Baseline, WidePanel
from stockcast.baselines.empirical import (
    EmpiricalErrorBaseline,
    MovingAverageBaseline,
    NaiveBaseline,
    SeasonalNaiveBaseline,
)
from stockcast.baselines.ets import AutoETSBaseline
from stockcast.baselines.lightgbm import LightGBMBaseline

#: Baseline classes by the name used in configs (``REGISTRY["lightgbm"](spec=spec)``).
REGISTRY: dict[str, type[Baseline]] = {
    "naive": NaiveBaseline,
    "seasonal_naive": SeasonalNaiveBaseline,
    "moving_average": MovingAverageBaseline,
    "auto_ets": AutoETSBaseline,
    "lightgbm": LightGBMBaseline,
}

__all__ = [
    "REGISTRY",
    "AutoETSBaseline",
    "Baseline",
    "EmpiricalErrorBaseline",
    "LightGBMBaseline",
    "MovingAverageBaseline",
    "NaiveBaseline",
    "SeasonalNaiveBaseline",
    "WidePanel",
]
