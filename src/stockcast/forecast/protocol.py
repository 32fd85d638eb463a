"""One forecaster protocol and one rolling-origin cross-validation.

Every model that forecasts demand (the TFT bundle, every baseline, the synthetic truth,
ensembles) implements :class:`Forecaster`: ``forecast(panel, origins, horizon, quantiles)``
returns a forecast table (:mod:`stockcast.schema`) for each origin. :func:`cross_validate`
runs several forecasters over the same origins and returns one long table keyed by model
and origin, restricted to the rows every model forecast, so every model is scored on
identical rows (the statsforecast ``cross_validation`` design). Training (calibration on
the validation window), evaluation, the drift monitor and the backtest all call it.

The rules a forecaster follows:

* an *origin* is a ``time_idx``: the forecaster sees ``demand`` and unknown covariates only
  at ``time_idx <= origin``; known-future covariates (planned price, promotions, weather
  forecasts, the calendar) are read for the forecast periods too;
* forecast periods are the panel's own rows at ``origin + 1 .. origin + horizon``; the
  horizon is truncated at the end of the panel (pass the panel up to the last period that
  may be forecast) and, for a model trained with a maximum horizon, at that maximum;
* the answer has one row per item x location x forecast period and origin, with
  ``forecast_origin`` (the origin's period), ``horizon`` and one ``q<level>`` column per
  quantile level, non-negative and non-crossing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from stockcast.schema import (
    DEMAND,
    FORECAST_KEYS,
    FORECAST_ORIGIN,
    GROUP_IDS,
    HORIZON,
    MODEL,
    PERIOD,
    quantile_columns,
    validate_forecast_table,
)


@runtime_checkable
class Forecaster(Protocol):
    """Anything that turns a canonical panel and origins into a forecast table."""

    name: str

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Quantile forecasts of ``horizon`` periods after each origin (module rules)."""
        ...


def rolling_origins(start: int, end: int, n_origins: int, stride: int = 1) -> list[int]:
    """Forecast origins for a window of periods ``[start, end]`` (``time_idx``, inclusive).

    The first origin is ``start - 1`` (it sees everything before the window); each next one
    moves ``stride`` periods on, while at least one period of the window is left to forecast.
    """
    if int(n_origins) < 1 or int(stride) < 1:
        raise ValueError(f"n_origins and stride must be >= 1, got {n_origins} and {stride}")
    first = int(start) - 1
    return [first + k * int(stride) for k in range(int(n_origins)) if first + k * int(stride) < int(end)]


def attach_actuals(table: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Add the realised ``demand`` from the canonical panel (NaN where not yet observed)."""
    actual = panel[[*GROUP_IDS, PERIOD, DEMAND]].astype({"item_id": str, "location_id": str})
    out = table.drop(columns=[DEMAND], errors="ignore")
    out = out.astype({"item_id": str, "location_id": str})
    return out.merge(actual, on=[*GROUP_IDS, PERIOD], how="left")


def cross_validate(
    forecasters: Iterable[Forecaster],
    panel: pd.DataFrame,
    origins: Sequence[int],
    horizon: int,
    quantiles: Sequence[float] | None = None,
    *,
    common_rows: bool = True,
    callback: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Forecast ``origins`` with every forecaster; one long table with actuals.

    Args:
        forecasters: Objects following :class:`Forecaster` (names must be unique).
        panel: Canonical panel up to the last period that may be forecast.
        origins: ``time_idx`` of each forecast origin.
        horizon: Periods ahead from each origin.
        quantiles: Quantile levels asked of every forecaster (``None``: each one's own).
        common_rows: Keep only the item x location x period x origin rows that every
            forecaster forecast (so all are scored on identical rows).
        callback: Called as ``callback(name, seconds)`` after each forecaster.

    Returns:
        The stacked forecast tables with a ``model`` column and the actual ``demand``,
        sorted by model (in the order given), origin, item, location and horizon.

    Raises:
        ValueError: No forecaster, no origin, or duplicate names.
        DataValidationError: A forecaster broke the forecast-table contract.
    """
    forecasters = list(forecasters)
    if not forecasters:
        raise ValueError("cross_validate: no forecaster given")
    if not len(origins):
        raise ValueError("cross_validate: no origin given")
    names = [f.name for f in forecasters]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"cross_validate: duplicate forecaster name(s) {dups}")
    tables = []
    for f in forecasters:
        t0 = time.perf_counter()
        table = f.forecast(panel, [int(o) for o in origins], int(horizon), quantiles)
        validate_forecast_table(table.reset_index(drop=True), name=f"{f.name} forecast")
        table = table[[*FORECAST_KEYS, *quantile_columns(table)]].copy()
        table[FORECAST_ORIGIN] = pd.to_datetime(table[FORECAST_ORIGIN])
        table[PERIOD] = pd.to_datetime(table[PERIOD])
        tables.append(table.assign(**{MODEL: f.name}))
        if callback is not None:
            callback(f.name, time.perf_counter() - t0)
    out = pd.concat(tables, ignore_index=True)
    out = out.astype({"item_id": str, "location_id": str, HORIZON: int})
    if common_rows and len(tables) > 1:
        keys = [*GROUP_IDS, PERIOD, FORECAST_ORIGIN]
        counts = out.groupby(keys, sort=False)[MODEL].transform("nunique")
        out = out[counts == len(tables)]
    out = attach_actuals(out, panel)
    cols = [MODEL, *FORECAST_KEYS]
    out = out[[*cols, *quantile_columns(out), DEMAND]]
    order = pd.Categorical(out[MODEL], categories=names, ordered=True)
    out = out.assign(_order=order).sort_values(["_order", FORECAST_ORIGIN, *GROUP_IDS, HORIZON])
    return out.drop(columns="_order").reset_index(drop=True)


def by_model(cv: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split a cross-validation table into one forecast table per model (input order)."""
    out = {}
    for name, grp in cv.groupby(MODEL, sort=False):
        empty = [c for c in quantile_columns(grp) if grp[c].isna().all()]
        out[str(name)] = grp.drop(columns=[MODEL, *empty]).reset_index(drop=True)
    return out
