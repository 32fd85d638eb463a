"""Order-up-to policies with levels from a forecaster's distribution: the fill-rate mode and
the frontier.

Both stock each store item-location up to a level read off its protection-period demand
(``L + R``, ``L`` = the lead time of the store's reference path in the optimizer's network,
with its spread) at every review, and order on the world's routes like the safety-stock
policies (:class:`~stockcast.simulation.world.Routes`: DC first, DCs running echelon base
stock for the stores they feed).

* :class:`FillRateSpec` (*fill-rate mode*, for planners who set service targets rather than
  shortage costs): the knob is the fill-rate target; the levels are the least that reach it
  by Sobel's formula (:func:`~stockcast.optimization.service.fill_rate_levels`), per
  item-location (``allocation: item``) or for the network at the least expected stock
  (``allocation: network``).
* :class:`FrontierSpec` (*the frontier*, on synthetic data): the best order-up-to policy
  that knows the generator's true distribution, found in hindsight. Its family: store ``i``
  stocks up to the ``theta_i`` quantile of its true protection-period demand at every
  review, one level ``theta_i`` per item-location from a grid. Every grid level is simulated
  for all stores at once in the backtest's world (true demand, realised lead times,
  capacities); then, for a network fill target, each item-location takes the level that
  maximises ``lambda x units served - average stock`` with ``lambda`` bisected until the
  network fill rate over the compared periods reaches the target (a Lagrangian /
  marginal-analysis sweep over each item-location's simulated service-inventory curve). The
  chosen levels are simulated together once more: that run is the frontier's point. It is
  the least inventory at which a policy of this family meets the target, chosen knowing the
  year's demand: "true distribution + our optimizer" measured against it says how much a
  better decision rule could still gain with perfect distributional knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from stockcast.forecast.protocol import Forecaster
from stockcast.optimization.distribution import EmpiricalDemand, forecast_array
from stockcast.optimization.leadtime import LeadTimeDemand, fit_lead_time_demand
from stockcast.optimization.network import build_network
from stockcast.optimization.service import ALLOCATIONS, fill_rate_levels, lagrangian_choice
from stockcast.simulation.engine import Decision, SimView, per_series, simulate
from stockcast.simulation.matching import warmup_periods
from stockcast.simulation.policies import PolicySpec
from stockcast.simulation.world import Window


@dataclass
class StoreDistributions:
    """Protection-period (``L + R``) and lead-time (``L``) demand of every store series at
    every review origin, in the world's series order.

    Attributes:
        protection: Origin -> ``(n_store_series, n)`` sorted samples.
        lead: Origin -> ``(n_store_series, n)`` sorted samples.
        stores: Series index of each row.
        mean: Origin -> mean demand per period over the forecast horizon per row.
    """

    protection: dict[int, np.ndarray]
    lead: dict[int, np.ndarray]
    stores: np.ndarray
    mean: dict[int, np.ndarray]


def store_distributions(world: Window, forecasts: Mapping[int, pd.DataFrame],
                        lead_time: LeadTimeDemand, n_samples: int = 256,
                        seed: int = 0) -> StoreDistributions:
    """Build :class:`StoreDistributions` from a forecaster's tables per origin (a store
    without a forecast at an origin gets zero demand)."""
    stores = world.stores
    net = build_network(stores.astype(str).reset_index(drop=True), world.supply)
    dem = net.nodes.iloc[net.demand_nodes]
    lead_m = dict(zip(zip(dem["item_id"].astype(str), dem["location_id"].astype(str),
                          strict=True), dem["ref_lead_mean"].to_numpy(float), strict=True))
    lead_s = dict(zip(zip(dem["item_id"].astype(str), dem["location_id"].astype(str),
                          strict=True), dem["ref_lead_std"].to_numpy(float), strict=True))
    index = {k: i for i, k in enumerate(zip(world.keys["item_id"], world.keys["location_id"],
                                            strict=True))}
    keys = list(zip(stores["item_id"].astype(str), stores["location_id"].astype(str),
                    strict=True))
    rows = np.array([index[k] for k in keys])
    n = len(keys)
    prot, lead, mean = {}, {}, {}
    for origin in world.review_origins():
        table = forecasts.get(origin)
        p_out, l_out, m_out = np.zeros((n, n_samples)), np.zeros((n, n_samples)), np.zeros(n)
        if table is not None and len(table):
            fa = forecast_array(table)
            at = {k: j for j, k in enumerate(zip(fa.keys["item_id"], fa.keys["location_id"],
                                                 strict=True))}
            have = np.array([k in at for k in keys])
            j = np.array([at[k] for k in keys if k in at], dtype=int)
            if len(j):
                sel = [k for k in keys if k in at]
                lm = np.array([lead_m.get(k, 0.0) for k in sel])
                ls = np.array([lead_s.get(k, 0.0) for k in sel])
                steps = fa.values[j]
                kw = {"lead_mean": lm, "lead_std": ls, "n_samples": n_samples, "seed": seed}
                p_out[have] = lead_time.samples(steps, fa.levels,
                                                review_period=float(world.review), **kw)
                l_out[have] = lead_time.samples(steps, fa.levels, review_period=0.0, **kw)
                mid = int(np.argmin(np.abs(fa.levels - 0.5)))
                m_out[have] = steps[:, :, mid].mean(axis=1)
        prot[origin], lead[origin], mean[origin] = p_out, l_out, m_out
    return StoreDistributions(prot, lead, rows, mean)


@dataclass
class LevelsPolicy:
    """Order up to a level per store at every review, on the world's routes.

    Args:
        world: The window (routes, ``t0``).
        levels: ``t -> (n_store_series,)`` order-up-to levels of the stores at review
            ``t`` (rows = ``stores``).
        stores: Series index of each level.
        mean: ``t -> (n_store_series,)`` mean demand per period (DC echelon levels add it
            over the DC's own lead time).
    """

    world: Window
    levels: object
    stores: np.ndarray
    mean: object

    def __call__(self, view: SimView) -> Decision:
        r = self.world.routes
        target = np.zeros(r.n)
        target[self.stores] = self.levels(view.t)
        if r.is_dc.any() and len(r.fed):
            mean = np.zeros(r.n)
            mean[self.stores] = self.mean(view.t)
            dc = r.child_sum(target) + r.child_sum(mean) * r.lead
            target = np.where(r.is_dc, dc, target)
        return r.decision(target - r.echelon_position(view), view)


def _quantile_at(samples: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Row ``i``'s quantile at ``level[i]``, interpolated between atom midpoints."""
    n = samples.shape[1]
    pos = np.clip(np.asarray(level) * n - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = pos - lo
    rows = np.arange(len(samples))
    return samples[rows, lo] * (1 - w) + samples[rows, hi] * w


@dataclass(kw_only=True)
class _DistributionSpec(PolicySpec):
    """A spec whose policy reads levels off a forecaster's store distributions."""

    forecaster: Forecaster = field(repr=False)
    lead_time_demand: str = "independent"
    n_scenarios: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lead_time = LeadTimeDemand("independent") if self.lead_time_demand in (
            "copula", "direct") else LeadTimeDemand.of(self.lead_time_demand)
        self._fitted = not self.needs_fit
        self._dists: dict[int, StoreDistributions] = {}
        self._curves: dict[int, dict[str, np.ndarray]] = {}
        if not callable(getattr(self.forecaster, "forecast", None)):
            raise ValueError(f"{type(self).__name__}: the forecaster must implement "
                             f"forecast(panel, origins, horizon, quantiles); got "
                             f"{self.forecaster!r}")

    @property
    def needs_fit(self) -> bool:
        """The lead-time demand is fitted on validation forecasts (copula / direct)."""
        return self.lead_time_demand in ("copula", "direct")

    def fit_lead_time(self, validation: pd.DataFrame, world: Window) -> None:
        """Fit the lead-time demand on the forecaster's validation cross-validation table."""
        self.lead_time = fit_lead_time_demand(self.lead_time_demand, validation,
                                              review_period=float(world.review),
                                              max_protection=world.plan_horizon,
                                              n_samples=max(1024, self.n_scenarios),
                                              seed=self.seed)
        self._fitted = True
        self._dists.clear()
        self._curves.clear()

    def distributions(self, world: Window, forecasts) -> StoreDistributions:
        key = id(world)
        if not self._fitted:
            raise ValueError(f"{type(self).__name__}: lead_time_demand="
                             f"{self.lead_time_demand} is fitted on validation forecasts "
                             "first (fit_lead_time)")
        if key not in self._dists:
            if forecasts is None:
                raise ValueError(f"{type(self).__name__}.build needs the forecasts of every "
                                 "review origin")
            self._dists[key] = store_distributions(world, forecasts, self.lead_time,
                                                   int(self.n_scenarios), int(self.seed))
        return self._dists[key]


@dataclass(kw_only=True)
class FillRateSpec(_DistributionSpec):
    """Fill-rate mode: order up to the least level that reaches the fill-rate target by
    Sobel's formula (module docstring); knob = the target.

    Args:
        forecaster: Any :class:`~stockcast.forecast.protocol.Forecaster`.
        allocation: ``item`` (each item-location its target) or ``network`` (the least
            expected stock for the network target).
        lead_time_demand: Protection-period construction
            (:mod:`~stockcast.optimization.leadtime`).
        n_scenarios: Samples per distribution.
        seed: Their seed.
    """

    allocation: str = "item"
    knob: ClassVar[str | None] = "fill-rate target"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"FillRateSpec.allocation must be one of {list(ALLOCATIONS)}, "
                             f"got {self.allocation!r}")

    def build(self, world, knob, forecasts=None) -> LevelsPolicy:
        if knob is None:
            raise ValueError("FillRateSpec needs a fill-rate target (service=)")
        d = self.distributions(world, forecasts)
        origins = {t: world.t0 + t - 1 for t in range(len(world.periods))}
        cache: dict[int, np.ndarray] = {}

        def levels(t: int) -> np.ndarray:
            o = origins[t]
            if o not in cache:
                cache[o] = fill_rate_levels(EmpiricalDemand(d.protection[o]),
                                            EmpiricalDemand(d.lead[o]), float(knob),
                                            allocation=self.allocation)
            return cache[o]

        return LevelsPolicy(world, levels, d.stores, lambda t: d.mean[origins[t]])


@dataclass(kw_only=True)
class FrontierSpec(_DistributionSpec):
    """The frontier: per item-location order-up-to levels on the true distribution,
    chosen in hindsight for a network fill target (module docstring); knob = the target.

    Args:
        forecaster: The generator's truth
            (:meth:`~stockcast.forecast.truth.TruthForecaster.from_spec`).
        levels: Quantile levels in the grid each item-location chooses from.
        lowest: Lowest level of the grid (the grid is even in probit scale up to 0.9995).
        warmup: Periods left out of the fill rate and stock the levels are chosen on
            (``auto`` or a number, as ``backtest.warmup``).
    """

    levels: int = 25
    lowest: float = 0.3
    warmup: int | str = "auto"
    knob: ClassVar[str | None] = "network fill target (hindsight)"
    label: ClassVar[str] = "frontier"

    def grid_levels(self) -> np.ndarray:
        """The quantile levels an item-location chooses from."""
        lo, hi = special.ndtri(float(self.lowest)), special.ndtri(0.9995)
        return special.ndtr(np.linspace(lo, hi, int(self.levels)))

    def curves(self, world: Window, forecasts) -> dict[str, np.ndarray]:
        """Every grid level simulated for all stores at once: per store and level the units
        served and the average stock over the compared periods (cached per world)."""
        key = id(world)
        if key not in self._curves:
            d = self.distributions(world, forecasts)
            start = warmup_periods(self.warmup, world)
            grid = self.grid_levels()
            served, stock = [], []
            for u in grid:
                policy = self._policy(world, d, np.full(len(d.stores), u))
                tr = simulate(world.demand, policy, world.lead_real, world.econ, world.on_hand0,
                              world.unmet, world.review, world.supplier_leads,
                              world.elasticity, self.capacity(world))
                v = per_series(tr, start)
                served.append(v["served"][d.stores])
                stock.append(v["avg_inventory"][d.stores])
                demand = v["demand"][d.stores]
            self._curves[key] = {"served": np.stack(served, 1), "stock": np.stack(stock, 1),
                                 "demand": demand, "grid": grid}
        return self._curves[key]

    def choose(self, curves: dict[str, np.ndarray], target: float) -> np.ndarray:
        """Per store the grid level that meets the network fill ``target`` at the least
        stock (:func:`~stockcast.optimization.service.lagrangian_choice`; the top levels
        where even they fall short)."""
        need = float(target) * curves["demand"].sum()
        return curves["grid"][lagrangian_choice(curves["served"], curves["stock"], need)]

    def _policy(self, world: Window, d: StoreDistributions, theta: np.ndarray) -> LevelsPolicy:
        origins = {t: world.t0 + t - 1 for t in range(len(world.periods))}
        return LevelsPolicy(world, lambda t: _quantile_at(d.protection[origins[t]], theta),
                            d.stores, lambda t: d.mean[origins[t]])

    def build(self, world, knob, forecasts=None) -> LevelsPolicy:
        if knob is None:
            raise ValueError("FrontierSpec needs a network fill target (service=)")
        d = self.distributions(world, forecasts)
        theta = self.choose(self.curves(world, forecasts), float(knob))
        return self._policy(world, d, theta)
