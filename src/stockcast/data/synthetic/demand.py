"""The demand and covariate generator: every driver drawn from stated distributions.

:func:`simulate` draws, for a supplier -> DC -> store network selling ``n_items`` items in
``n_stores`` stores (``n_items * n_stores`` item-locations) over ``periods`` periods on a
``freq`` grid, every demand driver and the realised demand (:class:`World`);
:func:`covariate_tables` turns them into the published demand and covariate tables.

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

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

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
#: The regional weather anomaly's AR(1) coefficient, and the sd (deg C) of the store noise on it.
WEATHER_AR = 0.6
WEATHER_STORE_SD = 0.5
#: Market index: Gaussian random-walk step sd, and a cycle of this amplitude and period (years).
MARKET_STEP_SD = 0.15
MARKET_CYCLE_AMPLITUDE = 0.5
MARKET_CYCLE_YEARS = 3.5


class Streams(NamedTuple):
    """Independent random streams, one per kind of draw (so one change moves one stream)."""

    item: np.random.Generator
    store: np.random.Generator
    series: np.random.Generator
    price: np.random.Generator
    weather: np.random.Generator
    sentiment: np.random.Generator
    market: np.random.Generator
    noise: np.random.Generator
    draw: np.random.Generator
    supply: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Streams:
        return cls(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)))


@dataclass(frozen=True)
class World:
    """Every driver :func:`simulate` drew, and the realised demand.

    Arrays are indexed by item ``i`` (``n_items``), store ``j`` (``n_stores``), DC ``d``,
    series ``s = i * n_stores + j`` (item-major) and period ``t`` (history then horizon,
    ``n_total = periods + horizon`` of them); shapes are given as ``(axes)``.

    Attributes:
        periods: History periods.
        dates: Period start dates ``(t)``.
        pre_dates: The ``sentiment_lag`` periods before ``dates[0]`` (sentiment is observed
            that early, since it leads demand).
        period_days: Mean period length in days.
        per_year: Periods per year.
        daily: Whether the grid is daily (day-of-week effects exist only then).
        holiday: 1 in periods containing a holiday ``(t)``; ``event`` names it (``none``).
        sentiment_lag: Periods by which the sentiment index leads demand.
        item_ids, store_ids, dc_ids: Identifiers.
        category: Category index ``(i)`` into ``CATEGORIES``.
        intermittent: Intermittent low-volume items ``(i)``.
        ref_price: Reference price ``(i)``; ``pack``: pack size ``(i)``.
        elasticity, promo_lift, trend, amp, peak, hol_effect, temp_effect, sent_effect,
            market_effect: Per-item driver effects ``(i)`` (module docstring).
        dow: Day-of-week effects ``(i, 7)`` (zero unless daily).
        noise_static: Pure-noise static covariate ``(i)``.
        store_dc: DC index of each store ``(j)``; ``region_names``: per DC ``(d)``.
        store_size: ``(j)``.
        item_of, store_of: Item and store index of each series ``(s)``.
        base_log: Base log mean ``(s)``; ``size``: NB dispersion ``(s)`` (``inf``: Poisson).
        regular, price, discount: Regular price, price paid and discount ``(s, t)``.
        promo: Promotion flag ``(s, t)``.
        temperature: True temperature ``(j, t)``; ``forecast``: its noisy forecast.
        temperature_normal: The climatological temperature ``(j, t)`` the anomaly (AR(1)
            per region plus store noise) is added to; ``forecast_error_sd``: the forecast
            error's standard deviation (deg C).
        sentiment: Sentiment index ``(i, sentiment_lag + t)``: column ``c`` holds the value
            observed at period ``c - sentiment_lag``, which drives period ``c``.
        market: Market index ``(t)``: a Gaussian random walk plus a slow cycle, standardised
            on the history; ``market_cycle`` is the cycle ``(t)`` and ``market_step_sd`` the
            walk's step standard deviation, both in the index's standardised units.
        shock: The regime change (:func:`parse_regime_change`) or ``None``.
        noise_known: ``(s, t)``; ``noise_unknown``: ``(i, sentiment_lag + periods)``.
        mean: Mean demand ``(s, t)``; ``demand``: realised demand ``(s, t)``.
    """

    periods: int
    dates: pd.DatetimeIndex
    pre_dates: pd.DatetimeIndex
    period_days: float
    per_year: float
    daily: bool
    holiday: np.ndarray
    event: np.ndarray
    sentiment_lag: int
    item_ids: np.ndarray
    store_ids: np.ndarray
    dc_ids: np.ndarray
    category: np.ndarray
    intermittent: np.ndarray
    ref_price: np.ndarray
    pack: np.ndarray
    elasticity: np.ndarray
    promo_lift: np.ndarray
    trend: np.ndarray
    amp: np.ndarray
    peak: np.ndarray
    hol_effect: np.ndarray
    temp_effect: np.ndarray
    sent_effect: np.ndarray
    market_effect: np.ndarray
    dow: np.ndarray
    noise_static: np.ndarray
    store_dc: np.ndarray
    region_names: np.ndarray
    store_size: np.ndarray
    item_of: np.ndarray
    store_of: np.ndarray
    base_log: np.ndarray
    size: np.ndarray
    regular: np.ndarray
    price: np.ndarray
    discount: np.ndarray
    promo: np.ndarray
    temperature: np.ndarray
    forecast: np.ndarray
    temperature_normal: np.ndarray
    forecast_error_sd: float
    sentiment: np.ndarray
    market: np.ndarray
    market_cycle: np.ndarray
    market_step_sd: float
    shock: dict[str, Any] | None
    noise_known: np.ndarray
    noise_unknown: np.ndarray
    mean: np.ndarray
    demand: np.ndarray

    @property
    def n_series(self) -> int:
        return len(self.item_of)

    @property
    def n_total(self) -> int:
        """History plus horizon periods."""
        return len(self.dates)

    @property
    def series_mean(self) -> np.ndarray:
        """Mean demand per period of each series over the history ``(s)``."""
        return self.mean[:, : self.periods].mean(axis=1)

    def panel(self, n_periods: int) -> dict[str, Any]:
        """Key columns (item, location, period) of every series' first ``n_periods``."""
        S = self.n_series
        n = S * n_periods
        return {
            "item_id": _cat(np.repeat(self.item_of, n_periods), self.item_ids),
            "location_id": _cat(np.repeat(self.store_of, n_periods), self.store_ids),
            "period": np.tile(self.dates[:n_periods].to_numpy(), S)[:n],
        }

    def store_codes(self, n_periods: int) -> pd.Categorical:
        """``location_id`` of a store x period table with ``n_periods`` per store."""
        return _cat(np.repeat(np.arange(len(self.store_ids)), n_periods), self.store_ids)


def simulate(
    rng: Streams,
    n_items: int,
    n_stores: int,
    n_dcs: int,
    periods: int,
    freq: str,
    *,
    start: str,
    horizon: int,
    intermittent_share: float,
    sentiment_lag: int,
    forecast_error_sd: float,
    shock: dict[str, Any] | None,
) -> World:
    """Draw the network's drivers and the realised demand.

    The arguments are those of :func:`~stockcast.data.synthetic.generate`, already
    validated; ``shock`` is what :func:`parse_regime_change` returned.
    """
    r_item, r_store, r_series, r_price, r_weather, r_sent, r_market, r_noise, r_draw = rng[:9]

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
        make_ids("item_", n_items),
        make_ids("store_", n_stores),
        make_ids("dc_", n_dcs, 2),
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
    anomaly = _ar1(r_weather, (n_dcs, T), WEATHER_AR)[store_dc] * WEATHER_ANOMALY_SD + r_weather.normal(
        0, WEATHER_STORE_SD, (n_stores, T)
    )
    normal = clim_mean[:, None] - clim_amp[:, None] * np.cos(2 * np.pi * (doy - 15) / 365.25)[None, :]
    temperature = np.round(normal + anomaly, 1)
    forecast = np.round(temperature + r_weather.normal(0, forecast_error_sd, temperature.shape), 1)

    # sentiment (leads demand), market index, noise ------------------------------------------
    sentiment_full = np.round(_ar1(r_sent, (n_items, T + sentiment_lag), SENTIMENT_AR), 3)
    if shock is not None and shock["kind"] == "sentiment":
        # column c holds the sentiment observed at period c - lag, which drives period c
        sentiment_full[:, shock["period"] :] += shock["size"]
    sentiment_driver = sentiment_full[:, :T]  # value at t - lag drives period t
    cycle = MARKET_CYCLE_AMPLITUDE * np.sin(2 * np.pi * years / MARKET_CYCLE_YEARS)
    walk = np.cumsum(r_market.normal(0, MARKET_STEP_SD, T)) + cycle
    hist = walk[:periods]
    market_scale = hist.std() or 1.0
    market = np.round((walk - hist.mean()) / market_scale, 3)
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
    mean = np.exp(log_mean)
    size = size_item[item_of]
    finite = np.isfinite(size)
    demand = np.empty((S, T), dtype=np.int64)
    demand[~finite] = r_draw.poisson(mean[~finite])
    r_nb = np.broadcast_to(size[finite][:, None], mean[finite].shape)
    demand[finite] = r_draw.negative_binomial(r_nb, r_nb / (r_nb + mean[finite]))

    return World(
        periods=periods,
        dates=dates,
        pre_dates=pre,
        period_days=period_days,
        per_year=per_year,
        daily=daily,
        holiday=holiday,
        event=event,
        sentiment_lag=sentiment_lag,
        item_ids=item_ids,
        store_ids=store_ids,
        dc_ids=dc_ids,
        category=category,
        intermittent=intermittent,
        ref_price=ref_price,
        pack=pack,
        elasticity=elasticity,
        promo_lift=promo_lift,
        trend=trend,
        amp=amp,
        peak=peak,
        hol_effect=hol_effect,
        temp_effect=temp_effect,
        sent_effect=sent_effect,
        market_effect=market_effect,
        dow=dow,
        noise_static=noise_static,
        store_dc=store_dc,
        region_names=region_names,
        store_size=store_size,
        item_of=item_of,
        store_of=store_of,
        base_log=base_log,
        size=size,
        regular=regular,
        price=price,
        discount=discount,
        promo=promo,
        temperature=temperature,
        forecast=forecast,
        temperature_normal=normal,
        forecast_error_sd=float(forecast_error_sd),
        sentiment=sentiment_full,
        market=market,
        market_cycle=cycle / market_scale,
        market_step_sd=MARKET_STEP_SD / market_scale,
        shock=shock,
        noise_known=noise_known,
        noise_unknown=noise_unknown,
        mean=mean,
        demand=demand,
    )


def covariate_tables(w: World) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The published ``demand`` table (history) and the covariate tables by name."""
    periods, T = w.periods, w.n_total
    n_items, n_stores = len(w.item_ids), len(w.store_ids)
    demand = pd.DataFrame({**w.panel(periods), "demand": w.demand[:, :periods].ravel()})
    prices = pd.DataFrame(
        {
            **w.panel(T),
            "price": w.price.ravel(),
            "regular_price": w.regular.ravel(),
            "discount": w.discount.ravel(),
            "promo": w.promo.astype(int).ravel(),
            "noise_known": w.noise_known.ravel(),
        }
    )
    temp_actual = w.temperature.astype(float).copy()
    temp_actual[:, periods:] = np.nan
    weather = pd.DataFrame(
        {
            "location_id": w.store_codes(T),
            "period": np.tile(w.dates.to_numpy(), n_stores),
            "temperature_forecast": w.forecast.ravel(),
            "temperature": temp_actual.ravel(),
        }
    )
    sent_dates = w.pre_dates.append(w.dates[:periods])
    n_sent = len(sent_dates)
    sentiment = pd.DataFrame(
        {
            "item_id": _cat(np.repeat(np.arange(n_items), n_sent), w.item_ids),
            "period": np.tile(sent_dates.to_numpy(), n_items),
            "sentiment": w.sentiment[:, :n_sent].ravel(),
            "noise_unknown": w.noise_unknown.ravel(),
        }
    )
    market = pd.DataFrame({"period": w.dates[:periods], "market_index": w.market[:periods]})
    events = pd.DataFrame({"period": w.dates, "holiday": w.holiday, "event": w.event})
    items = pd.DataFrame(
        {
            "item_id": w.item_ids,
            "category": np.array(CATEGORIES, dtype=object)[w.category],
            "pack_size": w.pack.astype(float),
            "noise_static": w.noise_static,
        }
    )
    stores = pd.DataFrame(
        {
            "location_id": w.store_ids,
            "region": w.region_names[w.store_dc],
            "dc_id": w.dc_ids[w.store_dc],
            "store_size": w.store_size,
        }
    )
    return demand, {
        "prices": prices,
        "weather": weather,
        "sentiment": sentiment,
        "market": market,
        "events": events,
        "items": items,
        "stores": stores,
    }


def parse_regime_change(cfg: dict[str, Any] | None, periods: int) -> dict[str, Any] | None:
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


# ----------------------------------------------------------------------------- helpers
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


def make_ids(prefix: str, n: int, width: int = 3) -> np.ndarray:
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
