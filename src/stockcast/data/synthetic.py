"""Seeded synthetic retail network with known ground truth.

:func:`generate` builds a supplier -> DC -> store network selling ``n_items`` items in
``n_stores`` stores (``n_items * n_stores`` item-locations) over ``periods`` periods on a
``freq`` grid, with every demand driver drawn from stated distributions and recorded, so
forecasts and stock decisions can be scored against the truth instead of against noise.

Demand model (item ``i`` in store ``s``, period ``t`` starting on date ``d_t``)::

    log mean[i,s,t] = base_log_mean[i,s]                         (item level, pack size,
                                                                  store size, idiosyncrasy)
                    + trend[i] * years_since_start(d_t)
                    + season_amplitude[i] * cos(2 pi (doy(d_t) - season_peak_doy[i]) / 365.25)
                    + dow[i, weekday(d_t)]                        (daily grids only)
                    + elasticity[i] * log(price[i,s,t] / ref_price[i])
                    + promo_lift[i] * promo[i,s,t]
                    + holiday_effect[i] * holiday[t]
                    + temperature_effect[i] * (temperature[s,t] - temperature_ref)
                    + sentiment_effect[i] * sentiment[i, t - sentiment_lag]   (sentiment LEADS)
                    + market_effect[i] * market_index[t]
    demand[i,s,t] ~ NegativeBinomial(mean, size)   (variance mean + mean^2 / size;
                                                    size = inf means Poisson)

``temperature`` is the true temperature; the known-future covariate is the noisy
``temperature_forecast``. ``noise_known``, ``noise_unknown`` and ``noise_static`` are pure
noise (effect 0) for variable-importance checks. Intermittent items have a mean of well
under one unit per week and a Poisson or strongly over-dispersed distribution.

``regime_change`` injects a structural break from one period on, for drift and
continuous-learning demos (recorded in the manifest's ``params``):

* ``level``: every mean is multiplied by ``size`` (a competitor opens, a channel closes);
  no covariate explains it;
* ``sentiment``: the sentiment index jumps by ``size`` (its own standard deviations) and
  stays there; demand follows ``sentiment_lag`` periods later through ``sentiment_effect``;
* ``elasticity``: every item's price elasticity is multiplied by ``size``.

Everything is vectorized over (series, period) arrays: 10,000 item-locations x 3 years
weekly take seconds (see ``benchmarks/synthetic_throughput.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

#: Bump when the generated data changes for the same arguments (invalidates cached copies).
#: 2: stronger sentiment and temperature effects, larger weather anomalies and more varied
#: regional climates, so the drivers the truth calls strong are learnable by a small TFT
#: (tests/test_synthetic_importance.py).
GENERATOR_VERSION = 2

#: Quantile levels of the true demand distribution written to ``truth_demand``
#: (the TFT's default quantiles, so forecasts can be scored level by level).
QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)

CATEGORIES = ("beverages", "snacks", "dairy", "household")
REGIONS = ("north", "south", "east", "west", "central", "coast", "mountain", "valley")
#: Per category: mean yearly amplitude (log), peak day of year, temperature effect per deg C,
#: day-of-week profile (Mon..Sun, log; daily grids only).
_CATEGORY = {
    "beverages": (0.30, 195, 0.060, (-0.10, -0.10, -0.05, 0.0, 0.08, 0.12, 0.05)),
    "snacks": (0.15, 355, 0.020, (-0.08, -0.08, -0.05, 0.0, 0.06, 0.10, 0.05)),
    "dairy": (0.08, 40, 0.040, (0.02, 0.0, 0.0, 0.0, 0.02, 0.0, -0.04)),
    "household": (0.05, 80, 0.0, (0.05, 0.0, 0.0, 0.0, 0.0, 0.0, -0.05)),
}
TEMPERATURE_REF = 15.0
#: Standard deviation (deg C) of the regional weekly weather anomaly (AR(1), phi 0.6).
WEATHER_ANOMALY_SD = 3.0
PACK_SIZES = (1, 2, 4, 6, 12)
PACK_EFFECT = -0.3  # log-demand per log pack size
STORE_SIZE_EFFECT = 1.0  # log-demand per log store size
SENTIMENT_AR = 0.6

#: Files written by :func:`write`, by role.
COVARIATE_TABLES = ("prices", "weather", "sentiment", "market", "events", "items", "stores")
SUPPLY_TABLES = ("locations", "economics", "suppliers", "lanes")
TRUTH_TABLES = (
    "truth_demand",
    "truth_series",
    "truth_effects",
    "truth_lead_times",
    "truth_weather",
)


@dataclass
class SyntheticData:
    """Every table of one synthetic dataset.

    Attributes:
        demand: ``item_id, location_id, period, demand`` (history periods only).
        covariates: ``prices`` (item, location, period: price, regular_price, discount,
            promo, noise_known; history + horizon), ``weather`` (location, period:
            temperature_forecast, temperature [actual, missing in the horizon]),
            ``sentiment`` (item, period: sentiment, noise_unknown; from ``sentiment_lag``
            periods before the start to the end of the history), ``market`` (period:
            market_index; history), ``events`` (period: holiday, event; history + horizon),
            ``items`` (item: category, pack_size, noise_static), ``stores`` (location:
            region, dc_id, store_size).
        supply: ``locations``, ``economics``, ``suppliers``, ``lanes`` (schemas in
            ``docs/data.md``).
        truth: ``truth_demand`` (per item-location-period: realised demand, mean, size,
            true quantiles ``q<level>``; history + horizon), ``truth_series`` (per
            item-location driver parameters), ``truth_effects`` (per driver: covariate,
            effect sizes, relevance), ``truth_lead_times`` (per supplier and period:
            realised lead time, disruption flag), ``truth_weather`` (true temperature and
            forecast for every period).
        params: The arguments :func:`generate` was called with.
    """

    demand: pd.DataFrame
    covariates: dict[str, pd.DataFrame]
    supply: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    params: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """All tables by file stem (``demand``, covariates, supply, truth)."""
        return {"demand": self.demand, **self.covariates, **self.supply, **self.truth}

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write every table as ``<folder>/<name>.parquet`` plus ``manifest.json``."""
        return write(self, folder)


def write(data: SyntheticData, folder: str | Path) -> dict[str, Path]:
    """Write ``data``'s tables as parquet files into ``folder`` (created if needed).

    Returns:
        Table name -> written path (``manifest`` -> ``manifest.json`` with the generator
        arguments, version and row counts).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in data.tables().items():
        paths[name] = folder / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    manifest = {
        "generator": "stockcast.data.synthetic.generate",
        "version": GENERATOR_VERSION,
        "params": data.params,
        "rows": {name: len(frame) for name, frame in data.tables().items()},
    }
    paths["manifest"] = folder / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, default=str))
    return paths


# ----------------------------------------------------------------------------- distributions
def true_quantiles(
    mean: np.ndarray, size: np.ndarray | float, levels: Sequence[float] = QUANTILES
) -> np.ndarray:
    """Exact quantiles of NegativeBinomial(mean, size) (``size = inf``: Poisson).

    The ``level`` quantile is the smallest integer ``k`` with ``P(X <= k) >= level``. A
    Cornish-Fisher guess is corrected by exact CDF steps; for narrow distributions the
    higher levels are then reached by walking the pmf recurrence. Same answers as
    ``scipy.stats.nbinom.ppf``, many times faster.

    Args:
        mean: Means (any shape, >= 0).
        size: Dispersion ``size`` (broadcast to ``mean``; ``inf`` for Poisson).
        levels: Quantile levels in (0, 1).

    Returns:
        Array of shape ``mean.shape + (len(levels),)``.
    """
    mean = np.asarray(mean, dtype=float)
    size = np.broadcast_to(np.asarray(size, dtype=float), mean.shape)
    levels = np.asarray(levels, dtype=float)
    if ((levels <= 0) | (levels >= 1)).any():
        raise ValueError(f"quantile levels must lie in (0, 1), got {levels.tolist()}")
    flat_mean, flat_size = mean.ravel(), size.ravel()
    order = np.argsort(levels)
    out = np.empty((flat_mean.size, len(levels)))
    if flat_mean.size and len(levels):
        poisson = ~np.isfinite(flat_size)
        sd = np.sqrt(
            flat_mean + np.where(poisson, 0.0, flat_mean**2 / np.where(poisson, 1, flat_size))
        )
        # narrow distributions: one exact CDF, then walk up the pmf recurrence level by level;
        # wide ones (long walks): an exact CDF per level
        walk = sd <= _WALK_SD
        for rows, fn in ((walk, _quantiles_walk), (~walk, _quantiles_direct)):
            if rows.any():
                out[np.ix_(rows, order)] = fn(levels[order], flat_mean[rows], flat_size[rows])
    return out.reshape(*mean.shape, len(levels))


_WALK_SD = 40.0


def _quantiles_direct(levels: np.ndarray, mean: np.ndarray, size: np.ndarray) -> np.ndarray:
    return np.stack([_quantile(float(q), mean, size)[0] for q in levels], axis=1)


def _quantiles_walk(levels: np.ndarray, mean: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Quantiles at ascending ``levels``: exact at the first, then pmf steps upwards."""
    poisson = ~np.isfinite(size)
    r = np.where(poisson, 1.0, size)
    k, cdf = _quantile(float(levels[0]), mean, size)
    pmf = _pmf(k, mean, r, poisson)
    up = np.where(poisson, 0.0, mean / (r + mean))  # NB: pmf(k)/pmf(k-1) = (k-1+r)/k * up
    out = np.empty((mean.size, len(levels)))
    out[:, 0] = k
    for j, level in enumerate(levels[1:], start=1):
        todo = np.flatnonzero(cdf < level)
        while todo.size:
            k[todo] += 1.0
            kt = k[todo]
            ratio = np.where(poisson[todo], mean[todo] / kt, (kt - 1.0 + r[todo]) / kt * up[todo])
            pmf[todo] *= ratio
            cdf[todo] += pmf[todo]
            todo = todo[cdf[todo] < level]
        out[:, j] = k
    return out


def _quantile(level: float, mean: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest ``k`` with ``P(X <= k) >= level``, and ``P(X <= k)``."""
    poisson = ~np.isfinite(size)
    r = np.where(poisson, 1.0, size)
    var = mean + np.where(poisson, 0.0, mean * mean / r)
    sd = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(poisson, 1.0, 1.0 + 2.0 * mean / r) / sd
        z = special.ndtri(level)
        guess = mean + sd * (z + (z * z - 1.0) * skew / 6.0)
    k = np.floor(np.nan_to_num(guess, nan=0.0, posinf=0.0)).clip(min=0.0)
    k = np.where(mean > 0, k, 0.0)
    cdf = _cdf(k, mean, r, poisson)
    # step up while P(X <= k) < level
    todo = np.flatnonzero(cdf < level)
    while todo.size:
        k[todo] += 1.0
        cdf[todo] += _pmf(k[todo], mean[todo], r[todo], poisson[todo])
        todo = todo[cdf[todo] < level]
    # step down while P(X <= k - 1) >= level
    todo = np.flatnonzero(k > 0)
    while todo.size:
        below = cdf[todo] - _pmf(k[todo], mean[todo], r[todo], poisson[todo])
        move = below >= level
        todo = todo[move]
        k[todo] -= 1.0
        cdf[todo] = below[move]
        todo = todo[k[todo] > 0]
    return k, cdf


def _cdf(k: np.ndarray, mean: np.ndarray, r: np.ndarray, poisson: np.ndarray) -> np.ndarray:
    out = np.ones_like(mean)
    pos = mean > 0
    nb = pos & ~poisson
    po = pos & poisson
    out[nb] = special.betainc(r[nb], k[nb] + 1.0, r[nb] / (r[nb] + mean[nb]))
    out[po] = special.pdtr(k[po], mean[po])
    return out


def _pmf(k: np.ndarray, mean: np.ndarray, r: np.ndarray, poisson: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # mean 0: masked below
        log_nb = (
            special.gammaln(k + r)
            - special.gammaln(r)
            - special.gammaln(k + 1.0)
            + r * np.log(r / (r + mean))
            + k * np.log(mean / (r + mean))
        )
        log_po = k * np.log(mean) - mean - special.gammaln(k + 1.0)
    return np.where(mean > 0, np.exp(np.where(poisson, log_po, log_nb)), 0.0)


# ----------------------------------------------------------------------------- calendar
def _easter(year: int) -> pd.Timestamp:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    lw = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lw) // 451
    n = h + lw - 7 * m + 114
    return pd.Timestamp(year, n // 31, n % 31 + 1)


def _holidays(years: range) -> list[tuple[pd.Timestamp, str]]:
    out = []
    for y in years:
        nov1 = pd.Timestamp(y, 11, 1)
        thanksgiving = nov1 + pd.Timedelta(days=(3 - nov1.dayofweek) % 7 + 21)
        out += [
            (pd.Timestamp(y, 1, 1), "new_year"),
            (_easter(y), "easter"),
            (pd.Timestamp(y, 7, 4), "summer_holiday"),
            (thanksgiving + pd.Timedelta(days=1), "black_friday"),
            (pd.Timestamp(y, 12, 25), "christmas"),
        ]
    return out


def _ids(prefix: str, n: int, width: int = 3) -> np.ndarray:
    width = max(width, len(str(n - 1)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(n)], dtype=object)


def _cat(codes: np.ndarray, categories: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=categories)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float) -> np.ndarray:
    """Stationary AR(1) paths with unit variance along the last axis."""
    eps = rng.standard_normal(shape) * math.sqrt(1 - phi * phi)
    out = np.empty(shape)
    out[:, 0] = rng.standard_normal(shape[0])
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out


# ----------------------------------------------------------------------------- generator
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
    shock = _regime_change(regime_change, periods)
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
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)]
    r_item, r_store, r_series, r_price, r_weather, r_sent, r_market, r_noise, r_draw, r_sup = (
        streams
    )

    # calendar -----------------------------------------------------------------------------
    T = periods + horizon
    edges = pd.date_range(start, periods=T + 1, freq=freq)
    dates = edges[:-1]
    pre = pd.date_range(end=dates[0], periods=sentiment_lag + 1, freq=freq)[:-1]
    period_days = float(np.mean(np.diff(edges.asi8))) / 86400e9
    per_year = 365.25 / period_days
    years = ((dates - dates[0]).days / 365.25).to_numpy()
    doy = dates.dayofyear.to_numpy().astype(float)
    daily = period_days < 2
    holiday = np.zeros(T, dtype=int)
    event = np.full(T, "none", dtype=object)
    for day, name in _holidays(range(dates[0].year, edges[-1].year + 1)):
        k = int(np.searchsorted(edges.asi8, day.value, side="right")) - 1
        if 0 <= k < T and holiday[k] == 0:
            holiday[k], event[k] = 1, name

    # items ----------------------------------------------------------------------------------
    item_ids, store_ids, dc_ids = (
        _ids("item_", n_items),
        _ids("store_", n_stores),
        _ids("dc_", n_dcs, 2),
    )
    category = r_item.choice(len(CATEGORIES), n_items)
    cat_amp, cat_peak, cat_temp, cat_dow = (
        np.array([_CATEGORY[c][k] for c in CATEGORIES]) for k in range(4)
    )
    intermittent = r_item.random(n_items) < intermittent_share
    ref_price = np.round(np.exp(r_item.normal(np.log(4.0), 0.5, n_items)), 2).clip(0.5)
    pack = np.array(PACK_SIZES)[r_item.choice(len(PACK_SIZES), n_items)]
    elasticity = -r_item.uniform(0.8, 2.5, n_items)
    promo_lift = r_item.uniform(0.05, 0.3, n_items)
    trend = r_item.normal(0.03, 0.08, n_items)
    amp = cat_amp[category] * r_item.uniform(0.6, 1.4, n_items)
    peak = cat_peak[category] + r_item.normal(0, 15, n_items)
    hol_effect = r_item.uniform(0.1, 0.5, n_items)
    temp_effect = cat_temp[category] * r_item.uniform(0.5, 1.5, n_items)
    sent_effect = r_item.uniform(0.15, 0.35, n_items)
    market_effect = r_item.uniform(0.03, 0.12, n_items)
    weekly_base = np.where(
        intermittent,
        r_item.uniform(0.1, 0.8, n_items),
        np.exp(r_item.normal(np.log(30.0), 0.6, n_items)),
    )
    poisson_item = intermittent & (r_item.random(n_items) < 0.5)
    size_item = np.where(
        intermittent,
        np.where(poisson_item, np.inf, r_item.uniform(0.4, 1.5, n_items)),
        r_item.uniform(4.0, 30.0, n_items),
    )
    dow = cat_dow[category] + r_item.normal(0, 0.02, (n_items, 7))
    dow = (dow - dow.mean(axis=1, keepdims=True)) if daily else np.zeros((n_items, 7))
    noise_static = np.round(r_item.standard_normal(n_items), 3)

    # stores -----------------------------------------------------------------------------------
    store_dc = np.arange(n_stores) % n_dcs
    region_names = np.array(
        [REGIONS[d] if d < len(REGIONS) else f"region_{d}" for d in range(n_dcs)], dtype=object
    )
    store_size = np.round(np.exp(r_store.normal(0, 0.35, n_stores)), 2)
    price_level = r_store.uniform(0.95, 1.05, n_stores)
    # regions from cold continental to mild maritime: annual mean and seasonal amplitude (deg C)
    clim_mean = r_store.uniform(4, 20, n_dcs)[store_dc] + r_store.normal(0, 0.7, n_stores)
    clim_amp = r_store.uniform(4, 16, n_dcs)[store_dc]

    # series (item-major: s = i * n_stores + j) -------------------------------------------------
    S = n_items * n_stores
    item_of = np.repeat(np.arange(n_items), n_stores)
    store_of = np.tile(np.arange(n_stores), n_items)
    base_log = (
        np.log(weekly_base * period_days / 7.0)[item_of]
        + PACK_EFFECT * np.log(pack)[item_of]
        + STORE_SIZE_EFFECT * np.log(store_size)[store_of]
        + r_series.normal(0, 0.25, S)
    )

    # prices: planned changes per item, store price level, promotions per series ----------------
    steps = np.zeros((n_items, T))
    n_changes = r_price.poisson(T / per_year, n_items)
    rows = np.repeat(np.arange(n_items), n_changes)
    cols = r_price.integers(1, T, rows.size) if T > 1 else np.zeros(0, dtype=int)
    np.add.at(steps, (rows, cols), r_price.normal(0.03, 0.07, rows.size))
    regular = np.round(
        (ref_price[:, None] * np.exp(np.cumsum(steps, axis=1)))[item_of]
        * price_level[store_of][:, None],
        2,
    )
    promo_rate = r_price.uniform(0.03, 0.12, S)
    promo = r_price.random((S, T)) < promo_rate[:, None]
    discount = np.where(promo, r_price.choice([0.1, 0.15, 0.2, 0.25, 0.3], (S, T)), 0.0)
    price = np.round(regular * (1 - discount), 2).clip(0.01)

    # weather: true temperature per store, noisy forecast -----------------------------------
    anomaly = _ar1(r_weather, (n_dcs, T), 0.6)[store_dc] * WEATHER_ANOMALY_SD + r_weather.normal(
        0, 0.5, (n_stores, T)
    )
    temperature = np.round(
        clim_mean[:, None]
        - clim_amp[:, None] * np.cos(2 * np.pi * (doy - 15) / 365.25)[None, :]
        + anomaly,
        1,
    )
    forecast = np.round(temperature + r_weather.normal(0, forecast_error_sd, temperature.shape), 1)

    # sentiment (leads demand), market index, noise ------------------------------------------
    sentiment_full = np.round(_ar1(r_sent, (n_items, T + sentiment_lag), SENTIMENT_AR), 3)
    if shock is not None and shock["kind"] == "sentiment":
        # column c holds the sentiment observed at period c - lag, which drives period c
        sentiment_full[:, shock["period"] :] += shock["size"]
    sentiment_driver = sentiment_full[:, :T]  # value at t - lag drives period t
    walk = np.cumsum(r_market.normal(0, 0.15, T)) + 0.5 * np.sin(2 * np.pi * years / 3.5)
    hist = walk[:periods]
    market = np.round((walk - hist.mean()) / (hist.std() or 1.0), 3)
    noise_known = np.round(r_noise.standard_normal((S, T)), 3)
    noise_unknown = np.round(r_noise.standard_normal((n_items, sentiment_lag + periods)), 3)

    # demand ------------------------------------------------------------------------------------
    season = amp[:, None] * np.cos(2 * np.pi * (doy[None, :] - peak[:, None]) / 365.25)
    item_t = (
        trend[:, None] * years[None, :]
        + season
        + dow[:, dates.dayofweek.to_numpy()]
        + hol_effect[:, None] * holiday[None, :]
        + sent_effect[:, None] * sentiment_driver
        + market_effect[:, None] * market[None, :]
    )
    log_mean = (
        base_log[:, None]
        + item_t[item_of]
        + elasticity[item_of][:, None] * np.log(price / ref_price[item_of][:, None])
        + promo_lift[item_of][:, None] * promo
        + temp_effect[item_of][:, None] * (temperature[store_of] - TEMPERATURE_REF)
    )
    if shock is not None and shock["kind"] == "elasticity":
        after = (np.arange(T) >= shock["period"])[None, :]
        log_mean += np.where(after, shock["size"] - 1.0, 0.0) * (
            elasticity[item_of][:, None] * np.log(price / ref_price[item_of][:, None])
        )
    if shock is not None and shock["kind"] == "level":
        log_mean[:, shock["period"] :] += math.log(shock["size"])
    if shock is not None:
        params["regime_change"]["date"] = str(dates[shock["period"]].date())
    mean = np.exp(log_mean)
    size = size_item[item_of]
    finite = np.isfinite(size)
    demand = np.empty((S, T), dtype=np.int64)
    demand[~finite] = r_draw.poisson(mean[~finite])
    r_nb = np.broadcast_to(size[finite][:, None], mean[finite].shape)
    demand[finite] = r_draw.negative_binomial(r_nb, r_nb / (r_nb + mean[finite]))

    # tables ------------------------------------------------------------------------------------
    def panel(n_periods: int) -> dict[str, Any]:
        n = S * n_periods
        return {
            "item_id": _cat(np.repeat(item_of, n_periods), item_ids),
            "location_id": _cat(np.repeat(store_of, n_periods), store_ids),
            "period": np.tile(dates[:n_periods].to_numpy(), S)[:n],
        }

    hist_cols = panel(periods)
    demand_df = pd.DataFrame({**hist_cols, "demand": demand[:, :periods].ravel()})
    prices = pd.DataFrame(
        {
            **panel(T),
            "price": price.ravel(),
            "regular_price": regular.ravel(),
            "discount": discount.ravel(),
            "promo": promo.astype(int).ravel(),
            "noise_known": noise_known.ravel(),
        }
    )
    temp_actual = temperature.astype(float).copy()
    temp_actual[:, periods:] = np.nan
    weather = pd.DataFrame(
        {
            "location_id": _cat(np.repeat(np.arange(n_stores), T), store_ids),
            "period": np.tile(dates.to_numpy(), n_stores),
            "temperature_forecast": forecast.ravel(),
            "temperature": temp_actual.ravel(),
        }
    )
    sent_dates = pre.append(dates[:periods])
    n_sent = len(sent_dates)
    sentiment = pd.DataFrame(
        {
            "item_id": _cat(np.repeat(np.arange(n_items), n_sent), item_ids),
            "period": np.tile(sent_dates.to_numpy(), n_items),
            "sentiment": sentiment_full[:, :n_sent].ravel(),
            "noise_unknown": noise_unknown.ravel(),
        }
    )
    market_df = pd.DataFrame({"period": dates[:periods], "market_index": market[:periods]})
    events = pd.DataFrame({"period": dates, "holiday": holiday, "event": event})
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "category": np.array(CATEGORIES, dtype=object)[category],
            "pack_size": pack.astype(float),
            "noise_static": noise_static,
        }
    )
    stores = pd.DataFrame(
        {
            "location_id": store_ids,
            "region": region_names[store_dc],
            "dc_id": dc_ids[store_dc],
            "store_size": store_size,
        }
    )

    # truth -------------------------------------------------------------------------------------
    truth_demand = pd.DataFrame(
        {
            **panel(T),
            "in_history": np.tile(np.arange(T) < periods, S),
            "demand": demand.ravel(),
            "mean": mean.ravel(),
            "size": np.repeat(size, T),
        }
    )
    if quantiles:
        q = true_quantiles(mean.ravel(), truth_demand["size"].to_numpy(), quantiles)
        for j, level in enumerate(quantiles):
            truth_demand[f"q{level:g}"] = q[:, j]
    hist_mean = mean[:, :periods].mean(axis=1)
    truth_series = pd.DataFrame(
        {
            "item_id": item_ids[item_of],
            "location_id": store_ids[store_of],
            "dc_id": dc_ids[store_dc[store_of]],
            "category": np.array(CATEGORIES, dtype=object)[category[item_of]],
            "intermittent": intermittent[item_of],
            "distribution": np.where(finite, "negbin", "poisson"),
            "size": size,
            "base_log_mean": base_log,
            "trend": trend[item_of],
            "season_amplitude": amp[item_of],
            "season_peak_doy": peak[item_of],
            "ref_price": ref_price[item_of],
            "elasticity": elasticity[item_of],
            "promo_lift": promo_lift[item_of],
            "holiday_effect": hol_effect[item_of],
            "temperature_effect": temp_effect[item_of],
            "temperature_ref": TEMPERATURE_REF,
            "sentiment_effect": sent_effect[item_of],
            "sentiment_lag": sentiment_lag,
            "market_effect": market_effect[item_of],
            **{f"dow_{d}": dow[item_of, d] for d in range(7)},
            "mean_demand": hist_mean,
        }
    )
    truth_effects = _effects_table(
        elasticity,
        promo_lift,
        trend,
        amp,
        hol_effect,
        temp_effect,
        sent_effect,
        market_effect,
        dow,
        daily,
        sentiment_lag,
    )
    truth_weather = pd.DataFrame(
        {
            "location_id": weather["location_id"],
            "period": weather["period"],
            "in_history": np.tile(np.arange(T) < periods, n_stores),
            "temperature": temperature.ravel().astype(float),
            "temperature_forecast": forecast.ravel(),
        }
    )

    supply, lead_times = _supply(
        r_sup,
        item_ids,
        store_ids,
        dc_ids,
        store_dc,
        hist_mean,
        ref_price,
        regular[:, periods - 1],
        n_sup,
        period_days,
        per_year,
        dates,
    )
    return SyntheticData(
        demand=demand_df,
        covariates={
            "prices": prices,
            "weather": weather,
            "sentiment": sentiment,
            "market": market_df,
            "events": events,
            "items": items,
            "stores": stores,
        },
        supply=supply,
        truth={
            "truth_demand": truth_demand,
            "truth_series": truth_series,
            "truth_effects": truth_effects,
            "truth_lead_times": lead_times,
            "truth_weather": truth_weather,
        },
        params=params,
    )


def _regime_change(cfg: dict[str, Any] | None, periods: int) -> dict[str, Any] | None:
    """Validated ``regime_change`` argument with ``period`` as a non-negative index."""
    if not cfg:
        return None
    kinds = ("level", "sentiment", "elasticity")
    kind = cfg.get("kind")
    if kind not in kinds:
        raise ValueError(f"regime_change.kind must be one of {list(kinds)}, not {kind!r}")
    unknown = set(cfg) - {"kind", "period", "size"}
    if unknown:
        raise ValueError(f"regime_change: unknown key(s) {sorted(unknown)} (kind, period, size)")
    period = int(cfg.get("period", -1))
    period = periods + period if period < 0 else period
    if not 0 < period < periods:
        raise ValueError(
            f"regime_change.period must fall inside the history (1..{periods - 1} or "
            f"-{periods - 1}..-1), got {cfg.get('period')}"
        )
    size = float(cfg.get("size", 1.0))
    if kind in ("level", "elasticity") and size <= 0:
        raise ValueError(f"regime_change.size must be > 0 for kind {kind!r}, got {size}")
    return {"kind": kind, "period": period, "size": size}


def _effects_table(
    elasticity: np.ndarray,
    promo_lift: np.ndarray,
    trend: np.ndarray,
    amp: np.ndarray,
    hol_effect: np.ndarray,
    temp_effect: np.ndarray,
    sent_effect: np.ndarray,
    market_effect: np.ndarray,
    dow: np.ndarray,
    daily: bool,
    lag: int,
) -> pd.DataFrame:
    def row(driver, covariate, table, role, values, transform, description, lag_=0):
        values = np.atleast_1d(np.asarray(values, dtype=float))
        return {
            "driver": driver,
            "covariate": covariate,
            "table": table,
            "role": role,
            "relevant": bool(np.any(values != 0)),
            "lag": lag_,
            "effect_mean": float(values.mean()),
            "effect_min": float(values.min()),
            "effect_max": float(values.max()),
            "transform": transform,
            "description": description,
        }

    dow_range = dow.max(axis=1) - dow.min(axis=1)
    rows = [
        row(
            "trend",
            "time_idx",
            "-",
            "known",
            trend,
            "years since start",
            "log-demand change per year",
        ),
        row(
            "yearly_seasonality",
            "month/week_of_year",
            "calendar",
            "known",
            amp,
            "cos(2 pi (doy - season_peak_doy) / 365.25)",
            "amplitude of the yearly cycle (log)",
        ),
        row(
            "weekly_seasonality",
            "day_of_week",
            "calendar",
            "known",
            dow_range if daily else 0.0,
            "dow_<weekday>",
            "max-min day-of-week effect (log); daily grids only",
        ),
        row(
            "price",
            "price",
            "prices",
            "known",
            elasticity,
            "log(price / ref_price)",
            "price elasticity of demand",
        ),
        row(
            "promotion",
            "promo",
            "prices",
            "known",
            promo_lift,
            "promo (0/1)",
            "log lift of a promotion on top of its price cut",
        ),
        row(
            "holiday",
            "holiday",
            "events",
            "known",
            hol_effect,
            "holiday (0/1)",
            "log lift in periods containing a holiday",
        ),
        row(
            "temperature",
            "temperature",
            "weather",
            "unknown",
            temp_effect,
            f"temperature - {TEMPERATURE_REF}",
            "log-demand per deg C of TRUE temperature (temperature_forecast is its noisy "
            "known-future proxy)",
        ),
        row(
            "sentiment",
            "sentiment",
            "sentiment",
            "unknown",
            sent_effect,
            "sentiment[t - lag]",
            "log-demand per unit of the sentiment index, which leads demand by `lag` periods",
            lag,
        ),
        row(
            "market",
            "market_index",
            "market",
            "unknown",
            market_effect,
            "market_index",
            "log-demand per unit of the market index",
        ),
        row(
            "store_size",
            "store_size",
            "stores",
            "static",
            STORE_SIZE_EFFECT,
            "log(store_size)",
            "in base_log_mean",
        ),
        row(
            "pack_size",
            "pack_size",
            "items",
            "static",
            PACK_EFFECT,
            "log(pack_size)",
            "in base_log_mean",
        ),
        row("noise_known", "noise_known", "prices", "known", 0.0, "-", "pure noise"),
        row("noise_unknown", "noise_unknown", "sentiment", "unknown", 0.0, "-", "pure noise"),
        row("noise_static", "noise_static", "items", "static", 0.0, "-", "pure noise"),
    ]
    return pd.DataFrame(rows)


def _supply(
    rng: np.random.Generator,
    item_ids: np.ndarray,
    store_ids: np.ndarray,
    dc_ids: np.ndarray,
    store_dc: np.ndarray,
    series_mean: np.ndarray,
    ref_price: np.ndarray,
    current_price: np.ndarray,
    n_sup: int,
    period_days: float,
    per_year: float,
    dates: pd.DatetimeIndex,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Locations, economics, suppliers, lanes and realised supplier lead times."""
    n_items, n_stores, n_dcs = len(item_ids), len(store_ids), len(dc_ids)
    demand = series_mean.reshape(n_items, n_stores)  # mean demand per period
    store_load = demand.sum(axis=0)

    store_cap = np.ceil(store_load * rng.uniform(4, 8, n_stores))
    dc_cap = np.ceil(np.bincount(store_dc, weights=store_cap, minlength=n_dcs) * 1.5)
    locations = pd.DataFrame(
        {
            "location_id": np.concatenate([dc_ids, store_ids]),
            "echelon": ["dc"] * n_dcs + ["store"] * n_stores,
            "parent_id": [None] * n_dcs + list(dc_ids[store_dc]),
            "capacity": np.concatenate([dc_cap, store_cap]),
        }
    )
    locations["parent_id"] = locations["parent_id"].astype(object)

    unit_cost = np.round(ref_price * rng.uniform(0.45, 0.65, n_items), 2)
    store_price = current_price.reshape(n_items, n_stores)
    dc_price = np.stack(
        [store_price[:, store_dc == d].mean(axis=1) for d in range(n_dcs)], axis=1
    ).round(2)
    price = np.concatenate([dc_price, store_price], axis=1)  # (items, dcs + stores)
    item_dc_load = np.stack([demand[:, store_dc == d].sum(axis=1) for d in range(n_dcs)], axis=1)
    load = np.concatenate([item_dc_load, demand], axis=1)
    cover = np.concatenate(
        [rng.uniform(2, 4, (n_items, n_dcs)), rng.uniform(1, 3, (n_items, n_stores))], axis=1
    )
    n_loc = n_dcs + n_stores
    cost = np.repeat(unit_cost[:, None], n_loc, axis=1)
    economics = pd.DataFrame(
        {
            "item_id": np.repeat(item_ids, n_loc),
            "location_id": np.tile(np.concatenate([dc_ids, store_ids]), n_items),
            "unit_cost": cost.ravel(),
            "price": price.ravel(),
            "holding_cost": np.round(cost * 0.25 / per_year, 4).ravel(),
            "shortage_cost": np.round(np.maximum(price - cost, 0.01), 4).ravel(),
            "salvage_value": np.round(cost * 0.3, 2).ravel(),
            "on_hand": rng.poisson(load * cover).astype(float).ravel(),
            "in_transit": rng.poisson(load * rng.uniform(0, 1, load.shape)).astype(float).ravel(),
        }
    )

    # suppliers: each item has a primary supplier shipping to all DCs, half a second one
    supplier_ids = _ids("sup_", n_sup)
    lt_mean = np.round(rng.uniform(5, 30, n_sup) / period_days, 2)
    lt_std = np.round(lt_mean * rng.uniform(0.1, 0.3, n_sup), 2)
    reliability = np.round(rng.uniform(0.85, 0.99, n_sup), 3)
    primary = np.arange(n_items) % n_sup
    has_second = (rng.random(n_items) < 0.5) & (n_sup > 1)
    second = (primary + 1 + rng.integers(0, max(n_sup - 1, 1), n_items)) % n_sup
    item_total = demand.sum(axis=1)
    recs = []
    for i in range(n_items):
        options = [(primary[i], 1.0, "all")]
        if has_second[i]:
            options.append((second[i], rng.uniform(1.02, 1.15), dc_ids[rng.integers(n_dcs)]))
        for s, markup, ships_to in options:
            recs.append(
                {
                    "supplier_id": supplier_ids[s],
                    "item_id": item_ids[i],
                    "unit_cost": round(float(unit_cost[i] * markup), 2),
                    "lead_time_mean": float(lt_mean[s]),
                    "lead_time_std": float(lt_std[s]),
                    "reliability": float(reliability[s]),
                    "capacity": float(np.ceil(item_total[i] * rng.uniform(1.2, 2.0))),
                    "min_order_qty": float(
                        max(1.0, np.round(item_total[i] * rng.uniform(0.3, 1.0)))
                    ),
                    "ships_to": ships_to,
                }
            )
    suppliers = pd.DataFrame(recs)

    # lanes: DC -> its stores, DC <-> DC, store <-> neighbouring stores of the same DC
    def lead(days: float) -> int:
        return max(1, math.ceil(days / period_days))

    mean_price = float(ref_price.mean())
    lanes = []
    for j in range(n_stores):
        lanes.append((dc_ids[store_dc[j]], store_ids[j], 0.02 * mean_price, lead(1)))
    for a in range(n_dcs):
        for b in range(n_dcs):
            if a != b:
                lanes.append((dc_ids[a], dc_ids[b], 0.05 * mean_price, lead(3)))
    for d in range(n_dcs):
        members = np.flatnonzero(store_dc == d)
        for k, j in enumerate(members):
            for nb in {members[(k + 1) % len(members)], members[(k - 1) % len(members)]} - {j}:
                lanes.append((store_ids[j], store_ids[nb], 0.04 * mean_price, lead(2)))
    lanes_df = pd.DataFrame(lanes, columns=["from_id", "to_id", "transfer_cost", "lead_time"])
    lanes_df["transfer_cost"] = (
        lanes_df["transfer_cost"] * rng.uniform(0.8, 1.2, len(lanes_df))
    ).round(3)
    lanes_df["lead_time"] = lanes_df["lead_time"].astype(int)

    # realised lead times with disruptions (Markov: start with prob (1-rel)/3, mean 3 periods)
    T = len(dates)
    disrupted = np.zeros((n_sup, T), dtype=bool)
    state = np.zeros(n_sup, dtype=bool)
    start_p = (1 - reliability) / 3.0
    for t in range(T):
        u = rng.random(n_sup)
        state = np.where(state, u > 1 / 3.0, u < start_p)
        disrupted[:, t] = state
    realised = np.maximum(
        rng.normal(lt_mean[:, None], lt_std[:, None], (n_sup, T)), 0.25 * lt_mean[:, None]
    ) + disrupted * (1.5 * lt_mean[:, None])
    lead_times = pd.DataFrame(
        {
            "supplier_id": np.repeat(supplier_ids, T),
            "period": np.tile(dates.to_numpy(), n_sup),
            "lead_time": np.round(realised, 2).ravel(),
            "disrupted": disrupted.ravel(),
        }
    )
    return {
        "locations": locations,
        "economics": economics,
        "suppliers": suppliers,
        "lanes": lanes_df,
    }, lead_times
