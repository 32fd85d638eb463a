"""Protection-period ("lead-time") demand from a forecaster's own behaviour.

An order must cover demand over the protection period ``P = L + R``. The optimizer builds
that demand from per-step quantile forecasts (:func:`~stockcast.optimization.distribution.
protection_samples`); how the steps depend on each other decides the spread of the sum.
When a forecaster's errors correlate across horizons (a level it misjudges stays misjudged)
drawing the steps independently understates that spread (Saoud, Kourentzes & Boylan 2022;
Trapero, Cardos & Kourentzes 2019), and a service knob then has to over-stock every item
alike to make up for it. :class:`LeadTimeDemand` names four constructions (config key
``optimizer.values.lead_time_demand``):

* ``independent``: every step its own uniform (the default; right for the generator's true
  quantiles, whose draws are independent given the drivers);
* ``summed``: one uniform for all steps, i.e. the protection-period quantile at level
  ``tau`` is the sum of the steps' ``tau`` quantiles (perfectly correlated errors: an upper
  bound on the spread);
* ``copula``: a Gaussian copula across horizons (Pinson et al. 2009): the correlation of the
  normal scores ``Phi^-1(PIT)`` of the forecaster's validation forecasts, pooled over
  item-locations and origins (:func:`fit_lead_time_demand`); the marginals stay the
  forecast's;
* ``direct``: the independent construction recalibrated on the cumulative quantity itself
  (the direct method): at rolling validation origins, the PIT of the realised demand over
  each protection length ``P`` under the forecast's own protection-period distribution is
  recorded; pooled over item-locations, their empirical distribution ``G_P`` maps a level
  ``tau`` to the level ``G_P^-1(tau)`` of the forecast distribution that the realised sums
  actually reached. This corrects the sum's spread *and* its bias (an under-forecasting
  model's PITs pile up near 1), per protection length, with each item-location keeping the
  shape of its own forecast. For normal forecasts with correlated errors it recovers the
  exact quantiles of the sum (``tests/optimization/test_leadtime.py``).

``copula`` and ``direct`` must be fitted (:func:`fit_lead_time_demand` on a
cross-validation table of validation origins with actuals); the backtest fits them on each
forecaster's validation window before the test window starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from stockcast.optimization.distribution import (
    QuantileFunction,
    forecast_array,
    nearest_correlation,
    protection_samples,
)
from stockcast.schema import DEMAND, FORECAST_ORIGIN, GROUP_IDS, HORIZON, quantile_column

#: The constructions of protection-period demand (``optimizer.values.lead_time_demand``).
METHODS = ("independent", "summed", "copula", "direct")


@dataclass
class LeadTimeDemand:
    """How protection-period demand is built from per-step quantiles (module docstring).

    Attributes:
        method: One of :data:`METHODS`.
        correlation: ``copula``: correlation ``(H, H)`` of the normal scores across
            horizons.
        calibration: ``direct``: sorted PIT values of realised protection-period demand per
            protection length ``P`` (whole periods).
        n_fit: Observations the fit used (PIT rows for ``copula``, protection sums for
            ``direct``).
    """

    method: str = "independent"
    correlation: np.ndarray | None = field(default=None, repr=False)
    calibration: dict[int, np.ndarray] | None = field(default=None, repr=False)
    n_fit: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"lead_time_demand must be one of {list(METHODS)}, got "
                             f"{self.method!r}")
        if self.method == "copula" and self.correlation is None:
            raise ValueError("lead_time_demand=copula needs a correlation fitted on validation "
                             "forecasts (stockcast.optimization.leadtime.fit_lead_time_demand)")
        if self.method == "direct" and not self.calibration:
            raise ValueError("lead_time_demand=direct needs PIT values fitted on validation "
                             "forecasts (stockcast.optimization.leadtime.fit_lead_time_demand)")

    @classmethod
    def of(cls, value: str | LeadTimeDemand | None) -> LeadTimeDemand:
        """A :class:`LeadTimeDemand` from a config value (a method name needing no fit, or
        a fitted one)."""
        if value is None:
            return cls()
        if isinstance(value, LeadTimeDemand):
            return value
        return cls(str(value))

    @property
    def dependence(self) -> str | np.ndarray:
        """The ``dependence`` argument of :func:`protection_samples`."""
        if self.method == "summed":
            return "comonotone"
        if self.method == "copula":
            return self.correlation
        return "independent"

    def describe(self) -> str:
        """One line for reports."""
        if self.method == "copula":
            c = self.correlation
            off = c[np.triu_indices_from(c, 1)] if len(c) > 1 else np.array([0.0])
            return (f"copula: mean correlation of normal scores across horizons "
                    f"{float(np.mean(off)):.2f} ({self.n_fit} PIT values)")
        if self.method == "direct":
            spread = {p: float(np.std(v)) for p, v in sorted(self.calibration.items())}
            med = {p: float(np.median(v)) for p, v in sorted(self.calibration.items())}
            return ("direct: median PIT of realised protection-period demand per P "
                    + ", ".join(f"{p}: {med[p]:.2f}" for p in med)
                    + " (calibrated 0.5); PIT std "
                    + ", ".join(f"{p}: {spread[p]:.2f}" for p in spread)
                    + f" (calibrated 0.29; {self.n_fit} sums)")
        return self.method

    def samples(self, steps: np.ndarray, levels: np.ndarray, *, review_period,
                lead_mean, lead_std, n_samples: int, seed: int,
                scale: np.ndarray | None = None) -> np.ndarray:
        """Sorted protection-period samples ``(N, n_samples)`` (arguments as
        :func:`protection_samples`)."""
        out = protection_samples(steps, levels, review_period=review_period,
                                 lead_mean=lead_mean, lead_std=lead_std, n_samples=n_samples,
                                 seed=seed, scale=scale, dependence=self.dependence)
        if self.method != "direct":
            return out
        n_nodes = out.shape[0]
        p = np.rint(np.broadcast_to(np.asarray(review_period, float), (n_nodes,))
                    + np.broadcast_to(np.asarray(lead_mean, float), (n_nodes,))).astype(int)
        return recalibrate(out, p, self.calibration)


def recalibrate(samples: np.ndarray, protection: np.ndarray,
                calibration: dict[int, np.ndarray]) -> np.ndarray:
    """Samples of the direct method: node ``i``'s sorted samples read at the levels
    ``G_P^-1(tau_j)`` (``tau_j = (j + 0.5) / n``, ``P`` = its protection length, the
    nearest fitted one), with exponential tails beyond the outer atoms
    (:class:`QuantileFunction`)."""
    n = samples.shape[1]
    tau = (np.arange(n) + 0.5) / n
    fitted = np.array(sorted(calibration))
    out = samples.copy()
    for p in np.unique(protection):
        rows = np.flatnonzero(protection == p)
        key = int(fitted[np.argmin(np.abs(fitted - p))])
        pit = np.asarray(calibration[key], dtype=float)
        # G^-1 on the PIT sample with its endpoints at 0 and 1 (plotting positions)
        pos = (np.arange(len(pit)) + 0.5) / len(pit)
        target = np.interp(tau, np.concatenate([[0.0], pos, [1.0]]),
                           np.concatenate([[0.0], np.sort(pit), [1.0]]))
        target = np.clip(target, 1e-6, 1 - 1e-6)
        qf = QuantileFunction(tau, samples[rows])
        vals = qf.ppf(target)
        out[rows] = np.sort(vals, axis=1)
    return out


def pit_values(forecast: pd.DataFrame, rng: np.random.Generator | None = None) -> np.ndarray:
    """PIT of each row's actual ``demand`` under its quantile forecast
    (:meth:`QuantileFunction.cdf_rows`, randomised on point masses with ``rng``)."""
    from stockcast.schema import quantile_levels

    levels = quantile_levels(forecast)
    qf = QuantileFunction(np.asarray(levels),
                          forecast[[quantile_column(q) for q in levels]].to_numpy(float))
    return qf.cdf_rows(forecast[DEMAND].to_numpy(float), rng=rng)


def fit_lead_time_demand(method: str, cv: pd.DataFrame, *, review_period: float = 1.0,
                         max_protection: int | None = None, n_samples: int = 1024,
                         seed: int = 0) -> LeadTimeDemand:
    """Fit ``method`` on a forecaster's cross-validation table of validation origins.

    Args:
        method: One of :data:`METHODS` (``independent`` and ``summed`` need no fit).
        cv: Forecast rows (``item_id``, ``location_id``, ``forecast_origin``, ``horizon``,
            ``q<level>``) with the actual ``demand`` (one forecaster).
        review_period: R (``direct``: protection lengths ``P`` run from ``ceil(R)``).
        max_protection: Longest protection length fitted (``direct``; default the longest
            horizon in ``cv``).
        n_samples: Samples per protection-period distribution (``direct``; the PIT of a
            sum is read off them, so few samples bias the tails: at least 1024, or the
            plan's own ``n_scenarios`` and ``seed``, whose samples it recalibrates).
        seed: Seed of the randomised PITs and of the samples.

    Raises:
        ValueError: Unknown method; no rows with actuals to fit on.
    """
    if method not in METHODS:
        raise ValueError(f"lead_time_demand must be one of {list(METHODS)}, got {method!r}")
    if method in ("independent", "summed"):
        return LeadTimeDemand(method)
    rows = cv[cv[DEMAND].notna()].copy()
    if rows.empty:
        raise ValueError(f"lead_time_demand={method}: no validation forecasts with actuals "
                         "to fit on")
    rows["item_id"] = rows["item_id"].astype(str)
    rows["location_id"] = rows["location_id"].astype(str)
    rng = np.random.default_rng(seed)
    if method == "copula":
        rows["z"] = special.ndtri(np.clip(pit_values(rows, rng), 1e-4, 1 - 1e-4))
        wide = rows.pivot_table(index=[*GROUP_IDS, FORECAST_ORIGIN], columns=HORIZON,
                                values="z", aggfunc="first").sort_index(axis=1)
        corr = wide.corr(min_periods=3).to_numpy(float)
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        return LeadTimeDemand("copula", correlation=nearest_correlation(corr),
                              n_fit=int(len(rows)))
    pits = _direct_pits(rows, review_period, max_protection, n_samples, seed, rng)
    return LeadTimeDemand("direct", calibration=pits,
                          n_fit=int(sum(len(v) for v in pits.values())))


def _direct_pits(rows: pd.DataFrame, review_period: float, max_protection: int | None,
                 n_samples: int, seed: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """PIT of realised demand over the first ``P`` steps under the forecast's independent
    protection-period distribution (no lead-time spread: the realised sum is over exactly
    ``P`` periods), per ``P``, pooled over item-locations and origins."""
    h_max = int(rows[HORIZON].max())
    p_max = min(int(max_protection or h_max), h_max)
    p_min = max(1, int(np.ceil(float(review_period) - 1e-9)))
    out: dict[int, list[np.ndarray]] = {}
    for k, (_origin, part) in enumerate(rows.groupby(FORECAST_ORIGIN, sort=True)):
        fa = forecast_array(part.drop(columns=[DEMAND]), table="validation forecast")
        actual = part.pivot_table(index=GROUP_IDS, columns=HORIZON, values=DEMAND,
                                  aggfunc="first")
        actual = actual.reindex(pd.MultiIndex.from_frame(fa.keys))
        y = actual.reindex(columns=range(1, fa.horizon + 1)).to_numpy(float)
        for p in range(p_min, p_max + 1):
            ok = np.isfinite(y[:, :p]).all(axis=1)
            if not ok.any():
                continue
            samples = protection_samples(fa.values[ok], fa.levels, review_period=float(p),
                                         n_samples=n_samples, seed=seed + k)
            total = y[ok, :p].sum(axis=1)
            qf = QuantileFunction((np.arange(n_samples) + 0.5) / n_samples, samples)
            out.setdefault(p, []).append(qf.cdf_rows(total, rng=rng))
    if not out:
        raise ValueError("lead_time_demand=direct: no validation origin has actuals over a "
                         "whole protection period")
    return {p: np.sort(np.concatenate(v)) for p, v in out.items()}

