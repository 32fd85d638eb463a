"""The synthetic dataset generator: :func:`generate` draws the world and builds every table."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from stockcast.data.synthetic.demand import (
    Streams,
    World,
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
    rng, world = _draw(n_items, n_stores, n_dcs, periods, freq, seed, start=start,
                       horizon=horizon, intermittent_share=intermittent_share,
                       sentiment_lag=sentiment_lag, forecast_error_sd=forecast_error_sd,
                       regime_change=regime_change)
    shock = world.shock
    if shock is not None:
        params["regime_change"] = dict(shock)
    n_sup = n_suppliers or max(2, math.ceil(n_items / 4))
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


def world_of(generator: Mapping[str, Any]) -> World:
    """Every driver a :func:`generate` configuration draws (:class:`World`), without tables.

    Args:
        generator: :func:`generate`'s keyword arguments, e.g. a data config's
            ``source.generator`` (its ``_target_`` must be this function or absent); the
            arguments that only shape the tables (``quantiles``, ``n_suppliers``) are ignored.

    Raises:
        ValueError: Another generator, or arguments :func:`generate` would refuse.
    """
    kwargs = dict(generator)
    target = kwargs.pop("_target_", None)
    if target not in (None, f"{__name__.rsplit('.', 1)[0]}.generate", f"{__name__}.generate"):
        raise ValueError(f"world_of: generator {target} is not stockcast.data.synthetic.generate")
    kwargs.pop("quantiles", None)
    kwargs.pop("n_suppliers", None)
    defaults = inspect.signature(generate).parameters
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise ValueError(f"world_of: unknown generator argument(s) {unknown}")
    args = {k: p.default for k, p in defaults.items() if k not in ("quantiles", "n_suppliers")}
    args.update(kwargs)
    positional = [args.pop(k) for k in ("n_items", "n_stores", "n_dcs", "periods", "freq", "seed")]
    return _draw(*positional, **args)[1]


def _draw(n_items: int, n_stores: int, n_dcs: int, periods: int, freq: str, seed: int, *,
          start: str, horizon: int, intermittent_share: float, sentiment_lag: int,
          forecast_error_sd: float, regime_change: dict[str, Any] | None
          ) -> tuple[Streams, World]:
    """Validate the sizes and draw the world: the random streams (the supply stream still
    unused) and :class:`World`."""
    shock = parse_regime_change(regime_change, periods)
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
    rng = Streams.from_seed(seed)
    world = simulate(
        rng,
        n_items,
        n_stores,
        n_dcs,
        periods,
        freq,
        start=str(start),
        horizon=horizon,
        intermittent_share=intermittent_share,
        sentiment_lag=sentiment_lag,
        forecast_error_sd=forecast_error_sd,
        shock=shock,
    )
    return rng, world
