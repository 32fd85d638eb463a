"""The synthetic dataset generator: :func:`generate` draws the world and builds every table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stockcast.data.synthetic.demand import (
    Streams,
    covariate_tables,
    parse_regime_change,
    simulate,
)
from stockcast.data.synthetic.supply import supply_tables
from stockcast.data.synthetic.tables import GENERATOR_VERSION, TRUTH_TABLES, SyntheticData
from stockcast.data.synthetic.truth import QUANTILES, lead_times, truth_tables


def generate(
    n_items: int = 10,
    n_stores: int = 4,
    n_dcs: int = 2,
    periods: int = 156,
    freq: str = "W-MON",
    seed: int = 0,
    *,
    start: str = "2021-01-04",
    horizon: int = 8,
    n_suppliers: int | None = None,
    intermittent_share: float = 0.2,
    sentiment_lag: int = 2,
    forecast_error_sd: float = 1.5,
    quantiles: Sequence[float] | None = QUANTILES,
    regime_change: dict[str, Any] | None = None,
) -> SyntheticData:
    """Generate a seeded synthetic network, its demand history and the ground truth.

    Args:
        n_items: Items (SKUs); every store sells every item.
        n_stores: Stores (demand locations); ``n_items * n_stores`` item-locations.
        n_dcs: Distribution centres; store ``k`` is served by DC ``k % n_dcs``.
        periods: History length in periods (rows per item-location in ``demand``).
        freq: Period grid (pandas alias: ``W-MON``, ``MS``, ``D``...).
        seed: Random seed; the same arguments give identical tables.
        start: First period (rolled forward onto the ``freq`` grid).
        horizon: Extra future periods for which known covariates (prices, promotions,
            weather forecast, events) and the truth are written beyond the history.
        n_suppliers: Suppliers (default ``max(2, ceil(n_items / 4))``).
        intermittent_share: Share of items with intermittent low-volume demand.
        sentiment_lag: Periods by which the sentiment index leads demand.
        forecast_error_sd: Standard deviation (deg C) of the weather forecast error.
        quantiles: Levels of the true quantiles in ``truth_demand`` (``None``: skip them).
        regime_change: Optional structural break ``{kind, period, size}``: ``kind`` is
            ``level``, ``sentiment`` or ``elasticity`` (see the module docstring),
            ``period`` the index of the first affected period (negative counts from the
            end of the history) and ``size`` the multiplier (level, elasticity) or the
            jump in standard deviations (sentiment).

    Returns:
        The tables (:class:`SyntheticData`).

    Raises:
        ValueError: Sizes that cannot form a network or a history.
    """
    params = {
        "n_items": n_items,
        "n_stores": n_stores,
        "n_dcs": n_dcs,
        "periods": periods,
        "freq": freq,
        "seed": seed,
        "start": str(start),
        "horizon": horizon,
        "n_suppliers": n_suppliers,
        "intermittent_share": intermittent_share,
        "sentiment_lag": sentiment_lag,
        "forecast_error_sd": forecast_error_sd,
        "quantiles": list(quantiles) if quantiles is not None else None,
        "version": GENERATOR_VERSION,
    }
    shock = parse_regime_change(regime_change, periods)
    if shock is not None:
        params["regime_change"] = dict(shock)
    if n_items < 1 or n_stores < 1 or n_dcs < 1:
        raise ValueError("n_items, n_stores and n_dcs must be >= 1")
    if n_dcs > n_stores:
        raise ValueError(
            f"n_dcs ({n_dcs}) cannot exceed n_stores ({n_stores}): every DC serves stores"
        )
    if periods < 2 or horizon < 0 or sentiment_lag < 0:
        raise ValueError("periods must be >= 2, horizon and sentiment_lag >= 0")
    if not 0 <= intermittent_share <= 1:
        raise ValueError("intermittent_share must lie in [0, 1]")
    n_sup = n_suppliers or max(2, math.ceil(n_items / 4))
    rng = Streams.from_seed(seed)
    world = simulate(
        rng,
        n_items,
        n_stores,
        n_dcs,
        periods,
        freq,
        start=start,
        horizon=horizon,
        intermittent_share=intermittent_share,
        sentiment_lag=sentiment_lag,
        forecast_error_sd=forecast_error_sd,
        shock=shock,
    )
    if shock is not None:
        params["regime_change"]["date"] = str(world.dates[shock["period"]].date())
    demand, covariates = covariate_tables(world)
    truth = truth_tables(world, quantiles)
    supply, suppliers = supply_tables(
        rng.supply,
        world.item_ids,
        world.store_ids,
        world.dc_ids,
        world.store_dc,
        world.series_mean,
        world.ref_price,
        world.regular[:, periods - 1],
        n_sup,
        world.period_days,
        world.per_year,
    )
    truth["truth_lead_times"] = lead_times(rng.supply, *suppliers, world.dates)
    return SyntheticData(
        demand=demand,
        covariates=covariates,
        supply=supply,
        truth={name: truth[name] for name in TRUTH_TABLES},
        params=params,
    )
