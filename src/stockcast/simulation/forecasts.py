"""The forecasts the optimizer policies of a backtest plan with.

Forecasts do not depend on stock, so each forecaster forecasts every review origin of the
window once, in one :func:`~stockcast.forecast.protocol.cross_validate` call
(:func:`review_forecasts`), before any policy is simulated; the policies look their
forecast up by origin (:func:`by_origin`). The same table scores the forecasts on the
window's actual demand (:func:`forecast_diagnostics`).

Forecaster factories for the backtest configs (``conf/backtest.yaml``): the registered
model under test (:func:`model_under_test`) and the LightGBM quantile baseline
(:func:`lightgbm`); the synthetic truth is
:meth:`stockcast.forecast.truth.TruthForecaster.from_spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.forecast.protocol import Forecaster, cross_validate
from stockcast.schema import DEMAND, GROUP_IDS, HORIZON, MODEL, PERIOD, TIME_IDX
from stockcast.simulation.world import Window


def model_under_test(model: Forecaster | None) -> Forecaster:
    """The registered model the backtest evaluates (the task passes it in).

    Raises:
        LookupError: No model was loaded.
    """
    if model is None:
        raise LookupError("no registered model was loaded")
    if not isinstance(model, Forecaster):
        raise TypeError(f"{type(model).__name__} does not implement the forecaster protocol")
    return model


def lightgbm(spec: DatasetSpec, name: str = "lightgbm_opt", **params: Any) -> Forecaster:
    """The LightGBM quantile baseline for ``spec``'s data (``params``: its settings; none
    = the baseline's defaults)."""
    from stockcast.baselines import LightGBMBaseline

    return LightGBMBaseline(name=name, spec=spec, **params)


def review_forecasts(forecaster: Forecaster, panel: pd.DataFrame, world: Window,
                     origins: list[int] | None = None) -> pd.DataFrame:
    """The forecaster's forecasts from every review origin of ``world`` (or ``origins``),
    ``plan_horizon`` steps each: one cross-validation table (actuals attached where the
    panel has them)."""
    return cross_validate([forecaster], panel,
                          world.review_origins() if origins is None else list(origins),
                          world.plan_horizon)


def validation_origins(world: Window, periods: int) -> list[int]:
    """Forecast origins of the ``periods`` before the window whose whole plan horizon is
    observed before the window starts (every ``review`` periods, latest last): where a
    forecaster's own errors are measured before any decision (lead-time demand fits)."""
    last = world.t0 - 1 - world.plan_horizon
    first = world.t0 - 1 - int(periods)
    step = max(int(world.review), 1)
    return [o for o in range(last, first - 1, -step) if o >= 0][::-1]


def validation_forecasts(forecaster: Forecaster, panel: pd.DataFrame, world: Window,
                         periods: int) -> pd.DataFrame:
    """The forecaster's cross-validation table at :func:`validation_origins` (actuals
    attached; ``plan_horizon`` steps each).

    Raises:
        ValueError: No validation origin fits before the window (``periods`` too short for
            the plan horizon).
    """
    origins = validation_origins(world, periods)
    if not origins:
        raise ValueError(f"no validation origin: {periods} periods before the window are "
                         f"fewer than the plan horizon + 1 ({world.plan_horizon + 1})")
    return cross_validate([forecaster], panel, origins, world.plan_horizon)


def by_origin(table: pd.DataFrame, panel: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Split a forecast (or cross-validation) table by origin ``time_idx`` (a row's
    origin = the ``time_idx`` of its period - its horizon); each part without the ``model``
    and ``demand`` columns."""
    first = panel.drop_duplicates(TIME_IDX)
    tmap = pd.Series(first[TIME_IDX].to_numpy(), index=pd.to_datetime(first[PERIOD]))
    origin = pd.to_datetime(table[PERIOD]).map(tmap) - table[HORIZON]
    if origin.isna().any():
        raise ValueError("forecast table: periods outside the panel")
    plain = table.drop(columns=[MODEL, DEMAND], errors="ignore")
    return {int(o): part.reset_index(drop=True)
            for o, part in plain.groupby(origin.astype(int).to_numpy(), sort=True)}


def forecast_diagnostics(tables: Mapping[str, pd.DataFrame], world: Window) -> pd.DataFrame:
    """Accuracy and interval coverage of the forecasts each policy planned with, scored on
    the window's actual demand (one row per policy: ``n_forecasts`` and the metrics of
    :func:`stockcast.evaluation.metrics.forecast_metrics`)."""
    from stockcast.evaluation.metrics import forecast_metrics

    periods = pd.to_datetime(pd.Index(world.periods))
    rows = []
    for name, cv in tables.items():
        t = cv.drop(columns=[MODEL], errors="ignore")
        t = t[pd.to_datetime(t[PERIOD]).isin(periods) & t[DEMAND].notna()]
        t = t[[*GROUP_IDS, PERIOD, *(c for c in t.columns if c.startswith("q")), DEMAND]]
        if t.empty:
            continue
        m = forecast_metrics(t.reset_index(drop=True), prefix="backtest")
        rows.append({"policy": name, "n_forecasts": len(t),
                     **{k.removeprefix("backtest_"): v for k, v in m.items()}})
    return pd.DataFrame(rows)
