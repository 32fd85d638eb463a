"""Demand forecasts for a plan: the planning origin and forecasts at list and markdown prices.

The optimizer plans from quantile forecast tables (:func:`~stockcast.optimization.plan`);
this module makes them from a forecaster and its panel: one table at the list price and,
when the dataset has a known-future price covariate, one table per candidate markdown
(the forecaster re-forecasts demand at each price, so markdowns are priced by the model's
own price response).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.forecast.scenarios import as_of, price_settings, with_price
from stockcast.schema import GROUP_IDS, TIME_IDX

if TYPE_CHECKING:  # the bundle pulls torch; only its forecast_last is used
    from stockcast.forecast.bundle import ForecastBundle


def planning_origin(panel: pd.DataFrame, value: int | str | None, horizon: int) -> int:
    """The planning origin as a ``time_idx``.

    Args:
        panel: Canonical panel (``time_idx``, ``period``).
        value: A ``time_idx``, a date of a period in the panel, or ``None`` = the last
            origin that still has ``horizon`` periods of known covariates (and actuals, so
            the plan can be checked against what happened).
        horizon: Periods planned ahead.

    Raises:
        ValueError: A date that is no period of the panel (names ``planning.origin``).
    """
    if value is None:
        return int(panel[TIME_IDX].max()) - horizon
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    match = panel.loc[panel["period"] == pd.Timestamp(value), TIME_IDX]
    if match.empty:
        raise ValueError(f"planning.origin={value}: no such period in the data")
    return int(match.iloc[0])


def forecasts_for_plan(
    bundle: ForecastBundle,
    spec: DatasetSpec,
    panel: pd.DataFrame,
    origin: int,
    horizon: int,
    markdowns: Sequence[float],
    list_price: pd.Series | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Forecasts at the list price and at each markdown.

    Args:
        bundle: The forecaster (``forecast_last(panel, horizon)``).
        spec: The dataset spec (its ``price`` settings say which column is the price).
        panel: Canonical panel up to at least ``origin + horizon`` (known covariates).
        origin: Planning origin (``time_idx``).
        horizon: Periods forecast.
        markdowns: Markdown fractions; each gets a forecast at ``list price x (1 - m)``.
        list_price: List price per (item_id, location_id); ``None`` = no re-pricing.

    Returns:
        ``(forecast at list price, markdown forecasts with a price column)``; the second is
        ``None`` without ``list_price``, a price covariate, or markdowns.
    """
    base = as_of(panel, spec, origin, horizon)
    if list_price is None or not spec.price:
        return bundle.forecast_last(base, horizon), None
    price_settings(spec)
    at_list = bundle.forecast_last(with_price(base, spec, origin, 1.0), horizon)
    prices = list_price.to_dict()
    tables = []
    for m in markdowns:
        t = bundle.forecast_last(with_price(base, spec, origin, 1.0 - float(m)), horizon)
        lp = t.set_index(GROUP_IDS).index.map(prices.get).to_numpy(dtype=float)
        tables.append(t.assign(price=lp * (1.0 - float(m))))
    return at_list, (pd.concat(tables, ignore_index=True) if tables else None)
