"""Ground truth of the synthetic data: true quantiles, driver effects, truth tables, lead times.

Everything here is computed from the drivers :func:`~stockcast.data.synthetic.demand.simulate`
drew (:class:`~stockcast.data.synthetic.demand.World`), so forecasts and stock decisions
can be scored against the truth instead of against noise. :func:`true_quantiles` gives the
exact quantiles of the NegativeBinomial / Poisson demand at any level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from stockcast.data.synthetic.demand import (
    CATEGORIES,
    PACK_EFFECT,
    SENTIMENT_AR,
    STORE_SIZE_EFFECT,
    TEMPERATURE_REF,
    WEATHER_ANOMALY_SD,
    WEATHER_AR,
    WEATHER_STORE_SD,
    World,
)

#: Quantile levels of the true demand distribution written to ``truth_demand``
#: (the TFT's default quantiles, so forecasts can be scored level by level).
QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


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


# ----------------------------------------------------------------------------- truth tables
def truth_tables(w: World, quantiles: Sequence[float] | None) -> dict[str, pd.DataFrame]:
    """``truth_demand``, ``truth_series``, ``truth_effects`` and ``truth_weather`` of ``w``.

    Args:
        w: The drawn drivers and demand.
        quantiles: Levels of the true quantiles in ``truth_demand`` (``None``/empty: none).
    """
    S, T, periods = w.n_series, w.n_total, w.periods
    truth_demand = pd.DataFrame(
        {
            **w.panel(T),
            "in_history": np.tile(np.arange(T) < periods, S),
            "demand": w.demand.ravel(),
            "mean": w.mean.ravel(),
            "size": np.repeat(w.size, T),
        }
    )
    if quantiles:
        q = true_quantiles(w.mean.ravel(), truth_demand["size"].to_numpy(), quantiles)
        for j, level in enumerate(quantiles):
            truth_demand[f"q{level:g}"] = q[:, j]
    item_of, store_of = w.item_of, w.store_of
    truth_series = pd.DataFrame(
        {
            "item_id": w.item_ids[item_of],
            "location_id": w.store_ids[store_of],
            "dc_id": w.dc_ids[w.store_dc[store_of]],
            "category": np.array(CATEGORIES, dtype=object)[w.category[item_of]],
            "intermittent": w.intermittent[item_of],
            "distribution": np.where(np.isfinite(w.size), "negbin", "poisson"),
            "size": w.size,
            "base_log_mean": w.base_log,
            "trend": w.trend[item_of],
            "season_amplitude": w.amp[item_of],
            "season_peak_doy": w.peak[item_of],
            "ref_price": w.ref_price[item_of],
            "elasticity": w.elasticity[item_of],
            "promo_lift": w.promo_lift[item_of],
            "holiday_effect": w.hol_effect[item_of],
            "temperature_effect": w.temp_effect[item_of],
            "temperature_ref": TEMPERATURE_REF,
            "sentiment_effect": w.sent_effect[item_of],
            "sentiment_lag": w.sentiment_lag,
            "market_effect": w.market_effect[item_of],
            **{f"dow_{d}": w.dow[item_of, d] for d in range(7)},
            "mean_demand": w.series_mean,
        }
    )
    truth_effects = effects_table(
        w.elasticity,
        w.promo_lift,
        w.trend,
        w.amp,
        w.hol_effect,
        w.temp_effect,
        w.sent_effect,
        w.market_effect,
        w.dow,
        w.daily,
        w.sentiment_lag,
    )
    n_stores = len(w.store_ids)
    truth_weather = pd.DataFrame(
        {
            "location_id": w.store_codes(T),
            "period": np.tile(w.dates.to_numpy(), n_stores),
            "in_history": np.tile(np.arange(T) < periods, n_stores),
            "temperature": w.temperature.ravel().astype(float),
            "temperature_forecast": w.forecast.ravel(),
        }
    )
    return {
        "truth_demand": truth_demand,
        "truth_series": truth_series,
        "truth_effects": truth_effects,
        "truth_weather": truth_weather,
    }


def lead_times(
    rng: np.random.Generator,
    supplier_ids: np.ndarray,
    lt_mean: np.ndarray,
    lt_std: np.ndarray,
    reliability: np.ndarray,
    dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Realised supplier lead times (periods) with disruptions: ``truth_lead_times``.

    Disruptions follow a Markov chain per supplier: one starts with probability
    ``(1 - reliability) / 3`` and lasts 3 periods on average, adding ``1.5 * lt_mean``.
    """
    n_sup = len(supplier_ids)
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
    return pd.DataFrame(
        {
            "supplier_id": np.repeat(supplier_ids, T),
            "period": np.tile(dates.to_numpy(), n_sup),
            "lead_time": np.round(realised, 2).ravel(),
            "disrupted": disrupted.ravel(),
        }
    )


def effects_table(
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
    """``truth_effects``: one row per driver with its covariate, role and effect sizes."""

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


# ----------------------------------------------------------------------------- attainable truth
#: Gauss-Hermite nodes over the log mean's unknown part (a smooth lognormal mixture).
_GH_NODES = 16


def conditional_quantiles(
    w: World,
    origins: Sequence[int],
    horizon: int,
    levels: Sequence[float] = QUANTILES,
) -> np.ndarray:
    """Quantiles of the demand law given only what is known at each origin: the attainable
    bound for a forecaster, where :func:`true_quantiles` of ``w.mean`` is a clairvoyant one.

    The true quantiles condition on every driver as it was realised. Three of them are
    not known at a forecast origin: the sentiment index beyond its lead (``sentiment_lag``
    periods), the market index (a random walk, observed only after the fact) and the true
    temperature (the weather forecast is). Here each is replaced by its law given the data
    up to the origin, so the bound holds exactly the information a forecaster can have:

    * sentiment: AR(1) with coefficient ``SENTIMENT_AR`` and unit variance from the last value
      observed (plus a sentiment regime change's jump once it has been observed);
    * market index: the last value observed, plus the known cycle's change and a random
      walk of ``h`` steps;
    * temperature: climatology plus the anomaly's AR(1) law given the last observed
      temperature (Gaussian conditioning), updated by the forecast of the period
      (``forecast_error_sd``): a Gaussian posterior.

    A regime change (``w.shock``) is unforeseeable: an origin before it forecasts the old
    regime, one after it the new. Their sum on the log mean is Gaussian (``N(0, v)``), so the demand law is a
    NegativeBinomial (Poisson) mixed over a lognormal mean, whose quantiles are found by
    exact steps on its CDF (Gauss-Hermite quadrature over the mean). With no uncertain
    driver (``v = 0``) they equal :func:`true_quantiles`.

    Args:
        w: The drawn world.
        origins: Period indices of ``w`` (0-based, into ``w.dates``) of each origin's last
            observed period; the forecasts cover ``origin + 1 .. origin + horizon``.
        horizon: Periods ahead (>= 1); they must lie inside ``w.dates``.
        levels: Quantile levels in (0, 1).

    Returns:
        Array ``(series, origin, horizon, level)``.

    Raises:
        ValueError: An origin outside the drawn periods, or a horizon past them.
    """
    origins = np.asarray([int(o) for o in origins], dtype=int)
    H, T = int(horizon), w.n_total
    if H < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if origins.size == 0 or origins.min() < 0 or origins.max() + H >= T:
        raise ValueError(f"origins {origins.tolist()} + horizon {H} must lie inside the "
                         f"{T} drawn periods")
    levels = np.asarray(levels, dtype=float)
    if ((levels <= 0) | (levels >= 1)).any():
        raise ValueError(f"quantile levels must lie in (0, 1), got {levels.tolist()}")
    S = w.n_series
    h = np.arange(1, H + 1)
    t = origins[:, None] + h[None, :]                      # (o, h) target periods
    it, st = w.item_of, w.store_of

    # sentiment: column c drives period c and is observed at c - lag
    lag, phi = w.sentiment_lag, SENTIMENT_AR
    last_col = origins + lag                               # last observed column per origin
    steps = np.maximum(t - last_col[:, None], 0)           # AR steps beyond it (o, h)
    shock = w.shock or {}
    jump = np.zeros(w.sentiment.shape[1])
    if shock.get("kind") == "sentiment":
        jump[shock["period"]:] = shock["size"]
    # a jump is known once observed (its first column observed by the origin), not before
    seen = (last_col >= shock["period"]) if shock.get("kind") == "sentiment" else np.ones_like(last_col, bool)
    s_last = w.sentiment[:, last_col] - jump[last_col][None, :]          # (i, o)
    s_mean = (jump[t] * seen[:, None])[None] + (phi ** steps)[None] * s_last[:, :, None]
    s_var = 1.0 - phi ** (2 * steps)                                      # (o, h)
    s_mean = np.where(steps[None] > 0, s_mean, w.sentiment[:, t])

    # market index: random walk (+ its known cycle) from the last observed value
    m_mean = (w.market[origins][:, None] + w.market_cycle[t]
              - w.market_cycle[origins][:, None])                         # (o, h)
    m_var = (w.market_step_sd ** 2) * h[None, :].astype(float)            # (o, h)

    # temperature: anomaly a = 3 * AR(1) + store noise, conditioned on the last observed
    # anomaly, then on the period's forecast
    var_a = WEATHER_ANOMALY_SD**2 + WEATHER_STORE_SD**2
    cov = WEATHER_ANOMALY_SD**2 * WEATHER_AR ** h.astype(float)           # (h)
    a_last = w.temperature[:, origins] - w.temperature_normal[:, origins]  # (j, o)
    prior_mean = w.temperature_normal[:, t] + (cov / var_a)[None, None] * a_last[:, :, None]
    prior_var = var_a - cov**2 / var_a                                    # (h)
    f_var = max(w.forecast_error_sd, 1e-9) ** 2
    post_var = 1.0 / (1.0 / prior_var + 1.0 / f_var)                      # (h)
    t_mean = post_var * (prior_mean / prior_var + w.forecast[:, t] / f_var)  # (j, o, h)

    # a level or elasticity break is unforeseeable: after it, an origin before it forecasts
    # the old regime
    log_true = np.log(np.maximum(w.mean[:, t], 1e-300))
    if shock.get("kind") in ("level", "elasticity"):
        unseen = ((t >= shock["period"]) & (origins[:, None] < shock["period"]))[None]
        if shock["kind"] == "level":
            change = np.full(log_true.shape, math.log(shock["size"]))
        else:
            ratio = np.log(w.price[:, t] / w.ref_price[it][:, None, None])
            change = (shock["size"] - 1.0) * w.elasticity[it][:, None, None] * ratio
        log_true = log_true - np.where(unseen, change, 0.0)
    # the log mean with the unknowns at their conditional means; its remaining variance
    log_mean = (log_true
                - w.sent_effect[it][:, None, None] * (w.sentiment[:, t][it] - s_mean[it])
                - w.market_effect[it][:, None, None] * (w.market[t][None] - m_mean[None])
                - w.temp_effect[it][:, None, None] * (w.temperature[:, t][st] - t_mean[st]))
    var = (w.sent_effect[it][:, None, None] ** 2 * s_var[None]
           + w.market_effect[it][:, None, None] ** 2 * m_var[None]
           + w.temp_effect[it][:, None, None] ** 2 * post_var[None, None, :])
    zero = w.mean[:, t] <= 0
    out = _mixture_quantiles(log_mean.ravel(), np.sqrt(var).ravel(),
                             np.broadcast_to(w.size[:, None, None], log_mean.shape).ravel(),
                             levels)
    out[zero.ravel()] = 0.0
    return out.reshape(S, len(origins), H, len(levels))


def _mixture_quantiles(log_mean: np.ndarray, sd: np.ndarray, size: np.ndarray,
                       levels: np.ndarray) -> np.ndarray:
    """Quantiles ``(rows, level)`` of NegativeBinomial(exp(log_mean + sd * Z), size), Z
    standard normal: the smallest integer ``k`` whose mixture CDF reaches the level.

    The first guess is the quantile of the NegativeBinomial with the mixture's mean and
    variance; exact mixture-CDF steps (Gauss-Hermite over Z) then correct it, one or two
    steps as a rule."""
    z, wts = np.polynomial.hermite_e.hermegauss(_GH_NODES)
    wts = wts / wts.sum()
    means = np.exp(log_mean[:, None] + sd[:, None] * z[None, :])         # (rows, nodes)
    sizes = np.broadcast_to(size[:, None], means.shape)
    poisson = ~np.isfinite(sizes)
    r = np.where(poisson, 1.0, sizes)
    mean = means @ wts
    second = ((means + np.where(poisson, 0.0, means**2 / r)) + means**2) @ wts
    var = np.maximum(second - mean**2, mean * (1 + 1e-9))
    with np.errstate(divide="ignore"):
        matched = np.where(var > mean * (1 + 1e-9), mean**2 / (var - mean), np.inf)
    k = true_quantiles(mean, matched, levels)                            # (rows, level)

    def cdf(rows: np.ndarray, kk: np.ndarray) -> np.ndarray:
        grid = np.broadcast_to(kk[:, None], (rows.size, _GH_NODES)).copy()
        return (_cdf(grid, means[rows], r[rows], poisson[rows]) * wts).sum(axis=1)

    for j, q in enumerate(levels):
        kj = k[:, j]
        rows = np.arange(len(kj))
        f = cdf(rows, kj)
        up = rows[f < q]                          # step up until the CDF reaches q
        while up.size:
            kj[up] += 1.0
            up = up[cdf(up, kj[up]) < q]
        down = rows[(f >= q) & (kj > 0)]          # step down while k - 1 still reaches q
        while down.size:
            ok = cdf(down, kj[down] - 1.0) >= q
            down = down[ok]
            kj[down] -= 1.0
            down = down[kj[down] > 0]
    return k
