"""Replenishment policies for :func:`stockcast.simulation.engine.simulate`, and their specs.

Every policy is a callable ``SimView -> Decision``; only :class:`OraclePolicy` is handed the
future (on purpose).

**Routes** (:class:`~stockcast.simulation.world.Routes`). Each series is replenished on one
route: a store either orders from its supplier (``source = -1``) or is shipped from a DC
series (``source`` = that DC's index, DC -> store lane lead time and cost); a DC orders
from its supplier. The safety-stock policies and the oracle follow the routes: a store's
protection period is its own replenishment lead time + review (``P = L + R``), and a DC
runs an *echelon* base-stock rule over the stores it feeds (echelon position = its own
position + theirs; protection = its supplier lead time + lane lead time + R). The optimizer
policy takes its own routing decisions (suppliers, DC shipments, lateral transfers) from
the network plan.

**Specs** (:class:`PolicySpec`). A backtest builds its policies from specs (one Hydra
``_target_`` entry each, ``conf/backtest.yaml`` ``backtest.catalog``): a spec holds a
policy's own settings, knows its service knob (``knob``: what it means, ``service``: the
knob of the main run, ``grid``: the knobs simulated for matched service) and builds the
policy for a :class:`~stockcast.simulation.world.Window` at a knob. An optimizer spec also
holds its forecaster (:class:`~stockcast.forecast.protocol.Forecaster`); its policy looks
the forecasts of every review origin up in a table made beforehand (forecasts do not
depend on stock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from stockcast.data.supply import SupplyTables, validate_supply
from stockcast.forecast.protocol import Forecaster
from stockcast.optimization.distribution import QuantileFunction
from stockcast.optimization.leadtime import METHODS as LEAD_TIME_METHODS
from stockcast.optimization.leadtime import LeadTimeDemand, fit_lead_time_demand
from stockcast.optimization.network import build_network
from stockcast.optimization.newsvendor import critical_ratio
from stockcast.optimization.plan import PlanConfig, Planner
from stockcast.schema import GROUP_IDS, quantile_column, quantile_levels
from stockcast.simulation.engine import Decision, Policy, SimView
from stockcast.simulation.world import Routes, Window


def order_up_to(mean: np.ndarray, sigma: np.ndarray, lead: np.ndarray, review: float,
                z: float) -> np.ndarray:
    """Classic order-up-to level ``mean·(L+R) + z·σ·sqrt(L+R)`` (per-period mean and σ)."""
    p = np.asarray(lead, dtype=float) + float(review)
    return np.asarray(mean) * p + float(z) * np.asarray(sigma) * np.sqrt(p)


def _history(pre: np.ndarray, view: SimView) -> np.ndarray:
    return np.concatenate([pre, view.history], axis=1) if pre.size else view.history


def _as_routes(routes: Routes | np.ndarray) -> Routes:
    return routes if isinstance(routes, Routes) else Routes.direct(routes)


def _echelon_targets(routes: Routes, mean: np.ndarray, var: np.ndarray, review: int,
                     z: float) -> np.ndarray:
    """Store order-up-to levels, and DC echelon levels from the stores they feed."""
    target = order_up_to(mean, np.sqrt(var), routes.lead, review, z)
    if routes.is_dc.any():
        dc_t = order_up_to(routes.child_sum(mean), np.sqrt(routes.child_sum(var)),
                           routes.echelon_lead(), review, z)
        target = np.where(routes.is_dc, dc_t, target)
    return target


@dataclass
class ClassicPolicy:
    """Moving-average forecast + ``z·σ`` safety stock over lead time + review.

    Args:
        pre: Demand before the window ``[n, t_pre]`` (the policy's history).
        routes: :class:`Routes`, or the planned lead time per series (all stores ordering
            from their supplier).
        review: Review period R.
        z: Safety factor (normal quantile of the target cycle service level).
        window: Periods in the moving average and the σ estimate.
    """

    pre: np.ndarray
    routes: Routes | np.ndarray
    review: int
    z: float
    window: int = 6

    def __post_init__(self) -> None:
        self.routes = _as_routes(self.routes)

    def target(self, view: SimView) -> np.ndarray:
        """Order-up-to level from the last ``window`` observed periods (echelon at DCs)."""
        hist = _history(self.pre, view)[:, -self.window:]
        mean = np.nan_to_num(np.nanmean(hist, axis=1))
        var = (np.nan_to_num(np.nanvar(hist, axis=1, ddof=1)) if hist.shape[1] > 1
               else np.zeros(len(hist)))
        return _echelon_targets(self.routes, mean, var, self.review, self.z)

    def __call__(self, view: SimView) -> Decision:
        r = self.routes
        return r.decision(self.target(view) - r.echelon_position(view), view)


@dataclass
class SeasonalNaiveSSPolicy:
    """Seasonal-naive forecast (same period one season ago) + ``z·σ`` of its errors.

    Args:
        pre: Demand before the window ``[n, t_pre]``.
        routes: :class:`Routes` or planned lead time per series.
        review: Review period R.
        z: Safety factor.
        season: Season length (periods).
        window: Recent seasonal-naive errors used for σ.
    """

    pre: np.ndarray
    routes: Routes | np.ndarray
    review: int
    z: float
    season: int = 12
    window: int = 12

    def __post_init__(self) -> None:
        self.routes = _as_routes(self.routes)

    def _forecast(self, hist: np.ndarray, p: np.ndarray) -> np.ndarray:
        n, t_len = hist.shape
        m = min(self.season, max(t_len, 1))
        fc = np.zeros(n)
        for k in range(int(p.max(initial=0))):
            idx = t_len - m + k
            while idx >= t_len:
                idx -= m
            fc += np.where(k < p, hist[:, idx] if idx >= 0 else 0.0, 0.0)
        return fc

    def __call__(self, view: SimView) -> Decision:
        r = self.routes
        hist = np.nan_to_num(_history(self.pre, view))
        n, t_len = hist.shape
        m = min(self.season, max(t_len, 1))
        err = (hist[:, m:] - hist[:, :-m])[:, -self.window:] if t_len > m else np.zeros((n, 1))
        var = err.var(axis=1, ddof=1) if err.shape[1] > 1 else np.zeros(n)
        p_own = np.ceil(r.lead + float(self.review)).astype(int)
        target = self._forecast(hist, p_own) + self.z * np.sqrt(var * p_own)
        if r.is_dc.any():
            p_ech = np.ceil(r.echelon_lead() + float(self.review)).astype(int)
            # each DC's echelon forecast: its stores' seasonal-naive sums over the DC's P
            child_fc = self._forecast(hist, np.where(r.source >= 0, p_ech[np.maximum(r.source, 0)],
                                                     0))
            dc_t = r.child_sum(child_fc) + self.z * np.sqrt(r.child_sum(var) * p_ech)
            target = np.where(r.is_dc, dc_t, target)
        return r.decision(target - r.echelon_position(view), view)


@dataclass
class OraclePolicy:
    """Perfect foresight of demand and realised lead times: serves everything it can.

    A store's supplier order placed at ``t`` arrives at ``a = t + L_t``; the next order that
    can arrive after it comes at ``e`` (the earliest arrival of the later reviews' orders).
    The oracle projects the store's stock to ``a`` with the known demand and scheduled
    receipts (lost sales or backlog as simulated) and asks for the least quantity that
    leaves no unmet demand in ``[a, e)``: no safety stock, nothing early. Where a DC hands
    out stock first (:class:`Routes` ``parent``) it also asks that DC for what is missing
    in ``[t + lane, a)``, which only a DC shipment reaches in time, so only demand no
    source can reach in time is missed. A DC that feeds stores orders their demand over its
    echelon protection period minus its echelon position.

    Args:
        future: Actual demand of the window ``[n, T]`` (the one policy allowed to see it).
        lead: Realised lead time per series and order period ``[n, T]`` (for DC-fed stores
            the lane lead time is used).
        review: Review period R.
        routes: :class:`Routes` (default: all stores ordering from their supplier).
        unmet: ``lost`` or ``backorder`` (how the projection treats a shortfall).
    """

    future: np.ndarray
    lead: np.ndarray
    review: int
    routes: Routes | None = None
    unmet: str = "lost"

    def __post_init__(self) -> None:
        self.future = np.asarray(self.future, dtype=float)
        n, t_len = self.future.shape
        self.lead = np.asarray(self.lead, dtype=int)
        self.routes = self.routes or Routes.direct(self.lead[:, 0])
        lead = self.lead.copy()
        fed = self.routes.source >= 0
        lead[fed] = self.routes.lead[fed, None]
        self._arrive = np.arange(t_len)[None, :] + lead  # arrival of an order placed at t
        self._cum = np.concatenate([np.zeros((n, 1)), np.cumsum(self.future, axis=1)], axis=1)

    def need(self, view: SimView, a: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Least receipt at ``a`` that leaves no unmet demand in ``[a, e)`` (per series)."""
        t, (n, t_len) = view.t, self.future.shape
        stock = view.on_hand - (view.backlog if self.unmet == "backorder" else 0.0)
        sched = view.schedule if view.schedule is not None else np.zeros((n, t_len - t))
        need, cover = np.zeros(n), np.zeros(n)
        for p in range(t, t_len):
            got = sched[:, p - t - 1] if p > t else 0.0  # receipts due at p (t's are on hand)
            d = self.future[:, p]
            before, inside = p < a, (p >= a) & (p < e)
            stock = stock + got
            after = np.maximum(stock - d, 0.0) if self.unmet == "lost" else stock - d
            cover = np.where(p == a, d - stock, np.where(inside, cover + d - got, cover))
            stock = np.where(before, after, stock)
            need = np.where(inside, np.maximum(need, cover), need)
        return np.where(a < np.minimum(e, t_len), need, 0.0)

    def __call__(self, view: SimView) -> Decision:
        r, t, t_len = self.routes, view.t, self.future.shape[1]
        a = self._arrive[:, t]
        later = self._arrive[:, t + self.review::self.review]
        e = np.minimum(later.min(axis=1) if later.shape[1] else t_len, t_len)
        need = self.need(view, a, e)
        urgent = None
        if len(r.drawing):
            fast = t + r.parent_lead
            urgent = np.where(r.parent >= 0, self.need(view, fast, np.minimum(a, e)), 0.0)
            need = need + urgent
        if r.is_dc.any():
            # a DC's order arrives after its realised lead time, then reaches the stores
            # after the lane: it covers its stores' demand until then + R, minus what the
            # echelon (DC + stores + everything in transit) holds
            lane = r.echelon_lead() - r.lead
            end = np.minimum(t + self.lead[:, t] + lane + self.review, t_len).astype(int)
            child_end = end[np.maximum(r.source, 0)]
            child_demand = self._cum[np.arange(r.n), child_end] - self._cum[:, t]
            dc_need = r.child_sum(child_demand) - r.echelon_position(view)
            need = np.where(r.is_dc, dc_need, need)
        return r.decision(need, view, urgent)


def carry_over_salvage(supply: SupplyTables) -> pd.Series:
    """Salvage value per economics row when leftover stock carries over to the next period.

    In a rolling plan a unit left at the end of the protection period is not sold off: it
    serves later demand, so it is worth its cost (the holding cost is charged separately).
    Returns ``min(unit_cost, cheapest supplier price of the item)`` (the supply validation
    forbids salvage above either).
    """
    econ = supply.economics
    cheapest = supply.suppliers.groupby(supply.suppliers["item_id"].astype(str))["unit_cost"].min()
    cap = econ["item_id"].astype(str).map(cheapest).to_numpy(float)
    cap = np.where(np.isfinite(cap), cap, econ["unit_cost"].to_numpy(float))
    return pd.Series(np.minimum(econ["unit_cost"].to_numpy(float), cap), index=econ.index)


def shift_quantiles(forecast: pd.DataFrame, shift: pd.Series | float) -> pd.DataFrame:
    """Forecast table with every quantile moved ``shift`` probit units: ``q'(tau) =
    Q(Phi(Phi^-1(tau) + shift))`` (``Q`` = the row's quantile function with exponential
    tails, :class:`~stockcast.optimization.distribution.QuantileFunction`).

    ``shift`` is one number or a Series indexed by (``item_id``, ``location_id``) (missing
    = 0). Positive shifts raise every quantile, and levels stay ordered, so quantiles never
    cross.
    """
    levels = quantile_levels(forecast)
    cols = [quantile_column(q) for q in levels]
    values = forecast[cols].to_numpy(float)
    if isinstance(shift, pd.Series):
        idx = pd.MultiIndex.from_frame(forecast[GROUP_IDS].astype(str))
        delta = np.nan_to_num(shift.reindex(idx).to_numpy(float))
    else:
        delta = np.full(len(forecast), float(shift))
    qf = QuantileFunction(np.asarray(levels), values)
    out = forecast.copy()
    base = special.ndtri(np.asarray(levels))
    for k, col in enumerate(cols):
        u = np.clip(special.ndtr(base[k] + delta), 1e-6, 1 - 1e-6)
        out[col] = qf.ppf_rows(u)
    return out


@dataclass
class OptimizerPolicy:
    """Quantile forecasts + :func:`stockcast.optimization.plan` at every review.

    At review ``t`` the policy plans with the forecast made at origin ``t0 + t - 1`` (the
    last observed period: ``forecasts[t0 + t - 1]``); the network plan is solved with the simulated
    stock (on hand - backlog, in transit) of every series (stores and DCs), and its
    decisions are executed as planned: supplier orders (each arrives after that supplier's
    realised lead time), DC -> store and lateral transfers, and markdown prices that hold
    until the next review (the plan prices with ``elasticity``; the simulated demand
    responds with the world's elasticity).

    Planning economics: with ``carry_over`` the salvage value is the unit's cost (stock left
    over serves the next periods; :func:`carry_over_salvage`), otherwise the tables' salvage
    value (a one-period newsvendor that sells leftovers off).

    Service knob (``service``, for tuning): every store's forecast is shifted in probit
    space (:func:`shift_quantiles`) by ``Phi^-1(service) - Phi^-1(cr)``, ``cr`` = its
    critical ratio under the planning economics, so the plan stocks each store up to the
    forecast's ``service`` quantile instead of its ``cr`` quantile while every cost
    (pricing, transfers, sourcing) stays real. ``None`` = no shift.

    Args:
        forecasts: Forecast table of each review origin (``time_idx`` -> table), made
            beforehand (:func:`stockcast.simulation.forecasts.by_origin`).
        keys: Series of the simulation (``item_id``, ``location_id``), stores and DCs.
        supply: Supply tables (full network).
        plan_config: Optimizer settings.
        t0: ``time_idx`` of the first simulated period.
        supplier_index: ``supplier_id`` -> index in the simulation's ``supplier_leads``.
        demand_keys: The store series that get forecasts (needed with ``service``).
        service: Planning service level (tuning knob) in (0, 1), or ``None``.
        carry_over: Plan with carry-over salvage values.
        elasticity: Price elasticity the plan prices markdowns with; ``None`` = no markdowns.
        routes: The network's :class:`Routes`; with it the plan's store orders follow the
            DC-first rule like every other policy.
        storage_factor: The plan's storage capacities = the locations' x this (> 1 relaxes
            them for a simulated world that does not limit storage; a finite relaxation
            keeps the LP well scaled).
    """

    forecasts: Mapping[int, pd.DataFrame]
    keys: pd.DataFrame
    supply: SupplyTables
    plan_config: PlanConfig
    t0: int
    supplier_index: dict[str, int]
    demand_keys: pd.DataFrame | None = None
    service: float | None = None
    carry_over: bool = True
    elasticity: float | None = None
    routes: Routes | None = None
    storage_factor: float = 1.0
    plans: list = field(default_factory=list, repr=False)
    #: Keeps the compiled problems across reviews (and across policies sharing it).
    planner: Planner | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.keys = self.keys[GROUP_IDS].reset_index(drop=True).astype(str)
        self._index = {tuple(r): i for i, r in enumerate(self.keys.itertuples(index=False))}
        # a review executes the plan's quantities and prices: its decision texts are left out
        self.plan_config = replace(
            self.plan_config, disruptions=(), explain=False,
            price_elasticity=self.elasticity if self.elasticity is not None else None,
            markdowns=self.plan_config.markdowns if self.elasticity is not None else ())
        tables = validate_supply(self.supply)
        econ = tables.economics.copy()
        econ["item_id"] = econ["item_id"].astype(str)
        econ["location_id"] = econ["location_id"].astype(str)
        if self.carry_over:
            econ["salvage_value"] = carry_over_salvage(replace(tables, economics=econ))
        # validated once as planned (carry-over salvage included): a review changes only the
        # stock (non-negative) and the storage factor, so its plan skips the validation
        self._tables = validate_supply(replace(tables, economics=econ))
        self._shift = None
        if self.service is not None:
            if not 0.0 < float(self.service) < 1.0:
                raise ValueError(f"service knob must lie in (0, 1), got {self.service}")
            if self.demand_keys is None:
                raise ValueError("OptimizerPolicy: the service knob needs demand_keys")
            cr = store_ratios(self._tables, self.demand_keys, self.plan_config)
            self._shift = pd.Series(special.ndtri(float(self.service))
                                    - special.ndtri(np.clip(cr.to_numpy(), 1e-6, 1 - 1e-6)),
                                    index=cr.index)
        pos = econ.set_index(GROUP_IDS).index.map(self._index.get)
        self._hit = np.asarray([p is not None and p == p for p in pos])
        self._pos = np.asarray([int(p) for p in pos[self._hit]], dtype=int)
        sup = tables.suppliers
        self._price = {(str(s), str(i)): float(c) for s, i, c in zip(
            sup["supplier_id"], sup["item_id"], sup["unit_cost"], strict=True)}
        lanes = tables.lanes
        self._lanes = {(str(a), str(b)): (float(c), float(lt)) for a, b, c, lt in zip(
            lanes["from_id"], lanes["to_id"], lanes["transfer_cost"], lanes["lead_time"],
            strict=True)}

    def __call__(self, view: SimView) -> Decision:
        origin = self.t0 + view.t - 1
        forecast = self.forecasts.get(origin)
        if forecast is None:
            raise ValueError(f"OptimizerPolicy: no forecast for review origin time_idx {origin} "
                             f"(forecasts made for {sorted(self.forecasts)})")
        if self._shift is not None:
            forecast = shift_quantiles(forecast, self._shift)
        econ = self._tables.economics.copy()
        idx = self._pos
        econ.loc[self._hit, "on_hand"] = np.maximum(view.on_hand[idx] - view.backlog[idx], 0.0)
        econ.loc[self._hit, "in_transit"] = view.pipeline[idx]
        tables = replace(self._tables, economics=econ)
        if self.storage_factor != 1.0:
            tables = replace(tables, locations=tables.locations.assign(
                capacity=tables.locations["capacity"] * float(self.storage_factor)))
        if self.planner is None:
            self.planner = Planner(self.plan_config)
        result = self.planner.plan(forecast, tables, config=self.plan_config, validated=True)
        self.plans.append(result.summary)
        n = len(self.keys)
        factor = np.ones(n)
        nodes = result.nodes
        nodes = nodes[nodes["demand"].astype(bool)] if "demand" in nodes else nodes
        for item, loc, price, lp in zip(nodes["item_id"].astype(str),
                                        nodes["location_id"].astype(str), nodes["price"],
                                        nodes["list_price"], strict=True):
            i = self._index.get((item, loc))
            if i is not None:
                factor[i] = float(price) / float(lp) if lp > 0 else 1.0
        dec = result.decisions
        lines, rows = [], []
        for item, loc, action, src, qty in dec[["item_id", "location_id", "action", "source",
                                                "quantity"]].itertuples(index=False):
            d = self._index.get((str(item), str(loc)))
            if d is None or not qty > 1e-6:
                continue
            if action == "order":
                s = self.supplier_index.get(str(src))
                if s is None:
                    raise ValueError(f"plan ordered from unknown supplier {src!r}")
                lines.append((d, float(qty), s, self._price[(str(src), str(item))]))
            elif action == "transfer":
                s = self._index.get((str(item), str(src)))
                if s is None:
                    raise ValueError(f"plan transfers {item} from {src!r}, which is not simulated")
                cost, lead = self._lanes.get((str(src), str(loc)), (0.0, 0.0))
                rows.append((s, d, float(qty), int(round(lead)), cost))
        lines = np.asarray(lines, dtype=float).reshape(-1, 4)
        rows = np.asarray(rows, dtype=float).reshape(-1, 5)
        if self.routes is not None and len(self.routes.drawing) and len(lines):
            lines, extra = self._dc_first(view, lines, rows)
            rows = np.vstack([rows, extra]) if extra is not None else rows
        return Decision(np.zeros(n), price_factor=factor,
                        transfers=rows if len(rows) else None,
                        lines=lines if len(lines) else None)

    def _dc_first(self, view: SimView, lines: np.ndarray, rows: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's DC-first rule on the plan's store orders: stock of a parent DC
        that feeds no store (what the plan does not move itself) is shipped first and the
        supplier orders shrink by as much."""
        r = self.routes
        series = lines[:, 0].astype(int)
        asked = np.bincount(series, weights=lines[:, 1], minlength=r.n)
        planned_out = (np.bincount(rows[:, 0].astype(int), weights=rows[:, 2], minlength=r.n)
                       if len(rows) else np.zeros(r.n))
        ship = r.dc_first(asked, view.on_hand - planned_out)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(asked > 1e-12, 1.0 - ship / asked, 1.0)
        lines = lines.copy()
        lines[:, 1] *= keep[series]
        return lines[lines[:, 1] > 1e-6], r.shipments(ship)


def store_ratios(tables: SupplyTables, stores: pd.DataFrame, plan_config: PlanConfig
                 ) -> pd.Series:
    """List-price critical ratio ``(p - c + g) / (p - c + g + c - s + h)`` of each store
    (``c`` = landed cost of its reference path), indexed by (``item_id``, ``location_id``)."""
    net = build_network(stores[GROUP_IDS].astype(str).reset_index(drop=True), tables,
                        plan_config.cost_model())
    d = net.nodes.iloc[net.demand_nodes]
    cr = critical_ratio(d["price"], d["ref_cost"], d["holding_cost"], d["shortage_cost"],
                        d["salvage_value"])
    return pd.Series(np.asarray(cr, dtype=float),
                     index=pd.MultiIndex.from_frame(d[GROUP_IDS].astype(str)))


def z_of(service: float) -> float:
    """Normal quantile of a cycle service level."""
    return float(special.ndtri(service))


# ------------------------------------------------------------------ specs
@dataclass(kw_only=True)
class PolicySpec:
    """How a backtest builds one policy (base class; module docstring).

    Args:
        service: The service knob of the main run (``None`` = the policy's own rule: the
            real economics of an optimizer policy).
        grid: Knobs simulated first when the policy is tuned to a matched fill rate
            (empty: the policy is not tuned).

    A spec whose policy plans with forecasts has a ``forecaster`` attribute
    (:class:`OptimizerSpec`); its forecasts of every review origin are passed to
    :meth:`build`.

    Class attributes:
        knob: What the service knob is (``None``: the policy has none).
        bound: The policy is a bound (it ignores supplier capacity).
        label: What an untuned policy is, for reports.
    """

    service: float | None = None
    grid: Sequence[float] = ()
    knob: ClassVar[str | None] = None
    bound: ClassVar[bool] = False
    label: ClassVar[str] = "fixed rule"

    def __post_init__(self) -> None:
        self.grid = tuple(float(k) for k in (self.grid or ()))
        if self.service is not None:
            self.service = float(self.service)
        for k in (*self.grid, *(() if self.service is None else (self.service,))):
            if not 0.0 < k < 1.0:
                raise ValueError(f"{type(self).__name__}: service knobs lie in (0, 1), got {k}")
        if self.knob is None and (self.grid or self.service is not None):
            raise ValueError(f"{type(self).__name__} has no service knob: leave service and "
                             "grid unset")

    @property
    def tunable(self) -> bool:
        """The policy is tuned to matched fill rates."""
        return self.knob is not None and bool(self.grid)

    def capacity(self, world: Window):
        """Supplier capacity the policy's orders face (``None`` for a bound)."""
        return None if self.bound else world.capacity

    def build(self, world: Window, knob: float | None,
              forecasts: Mapping[int, pd.DataFrame] | None = None) -> Policy:
        """The policy for ``world`` at service knob ``knob`` (``forecasts``: the
        forecaster's table per review origin, for policies that plan with one)."""
        raise NotImplementedError


def _cycle_service(spec: PolicySpec, knob: float | None) -> float:
    if knob is None:
        raise ValueError(f"{type(spec).__name__} needs a cycle service level (service=)")
    return z_of(knob)


@dataclass(kw_only=True)
class ClassicSpec(PolicySpec):
    """:class:`ClassicPolicy`: moving average + ``z·σ·sqrt(L+R)``, knob = cycle service level.

    Args:
        window: Periods in the moving average and the σ estimate.
    """

    window: int = 6
    knob: ClassVar[str | None] = "cycle service level"

    def build(self, world, knob, forecasts=None) -> ClassicPolicy:
        return ClassicPolicy(world.pre, world.routes, world.review, _cycle_service(self, knob),
                             int(self.window))


@dataclass(kw_only=True)
class SeasonalNaiveSpec(PolicySpec):
    """:class:`SeasonalNaiveSSPolicy`, knob = cycle service level.

    Args:
        season_length: Season length (``None`` = the data's, ``Window.season``; 12 when
            unknown).
        window: Recent seasonal-naive errors used for σ.
    """

    season_length: int | None = None
    window: int = 12
    knob: ClassVar[str | None] = "cycle service level"

    def build(self, world, knob, forecasts=None) -> SeasonalNaiveSSPolicy:
        season = int(self.season_length or world.season or 12)
        return SeasonalNaiveSSPolicy(world.pre, world.routes, world.review,
                                     _cycle_service(self, knob), season, int(self.window))


@dataclass(kw_only=True)
class OracleSpec(PolicySpec):
    """:class:`OraclePolicy`: perfect foresight of demand and lead times, no supplier
    capacity limit (a bound, not tuned)."""

    bound: ClassVar[bool] = True
    label: ClassVar[str] = "perfect foresight"

    def build(self, world, knob=None, forecasts=None) -> OraclePolicy:
        return OraclePolicy(world.demand, world.lead_real, world.review, world.routes,
                            world.unmet)


@dataclass(kw_only=True)
class OptimizerSpec(PolicySpec):
    """:class:`OptimizerPolicy`: a forecaster's quantiles + the network plan at every
    review, knob = planning service level (``None``: the real economics).

    Args:
        forecaster: Any :class:`~stockcast.forecast.protocol.Forecaster`.
        plan: Optimizer settings.
        carry_over: Plan with carry-over salvage values (:func:`carry_over_salvage`).
        storage_factor: The plan's storage capacities = the locations' x this.
        price_elasticity: Elasticity the plan prices markdowns with (``None``: none).
        lead_time_demand: Protection-period construction of this policy's plans
            (:mod:`~stockcast.optimization.leadtime`; ``None`` = the plan's
            ``lead_time_demand``); ``copula`` and ``direct`` are fitted on the
            forecaster's validation forecasts (:meth:`fit_lead_time`) before the window.
    """

    forecaster: Forecaster = field(repr=False)
    plan: PlanConfig = field(default_factory=PlanConfig)
    carry_over: bool = True
    storage_factor: float = 10.0
    price_elasticity: float | None = -2.0
    lead_time_demand: str | None = None
    knob: ClassVar[str | None] = "planning service level"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.plan = PlanConfig.from_dict(self.plan)
        method = self.lead_time_method
        if method not in LEAD_TIME_METHODS:
            raise ValueError(f"OptimizerSpec.lead_time_demand must be one of "
                             f"{list(LEAD_TIME_METHODS)}, got {method!r}")
        self._fitted = not self.needs_fit
        # one planner for every policy this spec builds: each knob's plans reuse the
        # problems compiled for the network's structure
        self._planner = Planner(self.plan)
        if not callable(getattr(self.forecaster, "forecast", None)):
            raise ValueError("OptimizerSpec: the forecaster must implement forecast(panel, "
                             f"origins, horizon, quantiles); got {self.forecaster!r}")

    @property
    def lead_time_method(self) -> str:
        """The protection-period construction: the spec's own, else the plan's."""
        if self.lead_time_demand is not None:
            return str(self.lead_time_demand)
        ltd = self.plan.lead_time_demand
        return ltd.method if isinstance(ltd, LeadTimeDemand) else str(ltd)

    @property
    def needs_fit(self) -> bool:
        """The lead-time demand is fitted on validation forecasts (copula / direct)."""
        return (self.lead_time_method in ("copula", "direct")
                and not isinstance(self.plan.lead_time_demand, LeadTimeDemand))

    def fit_lead_time(self, validation: pd.DataFrame, world: Window) -> None:
        """Fit the lead-time demand on the forecaster's validation cross-validation table
        (the plan then builds protection-period demand with it)."""
        fitted = fit_lead_time_demand(self.lead_time_method, validation,
                                      review_period=float(world.review),
                                      max_protection=world.plan_horizon,
                                      n_samples=max(1024, int(self.plan.n_scenarios)),
                                      seed=int(self.plan.seed))
        self.plan = replace(self.plan, lead_time_demand=fitted)
        self._fitted = True

    def build(self, world, knob, forecasts=None) -> OptimizerPolicy:
        if forecasts is None:
            raise ValueError("OptimizerSpec.build needs the forecasts of every review origin")
        if not self._fitted:
            raise ValueError(f"OptimizerSpec: lead_time_demand={self.lead_time_method} is "
                             "fitted on validation forecasts first (fit_lead_time)")
        plan = self.plan
        if self.lead_time_demand is not None and not isinstance(plan.lead_time_demand,
                                                                LeadTimeDemand):
            plan = replace(plan, lead_time_demand=self.lead_time_method)
        return OptimizerPolicy(forecasts, world.keys, world.supply, plan, world.t0,
                               {s: i for i, s in enumerate(world.suppliers)},
                               demand_keys=world.stores, service=knob,
                               carry_over=bool(self.carry_over),
                               elasticity=(None if self.price_elasticity is None
                                           else float(self.price_elasticity)),
                               routes=world.routes, storage_factor=float(self.storage_factor),
                               planner=self._planner)

    def planning_ratio(self, world: Window) -> float:
        """Median list-price critical ratio of the stores under the plan's real economics
        (carry-over salvage with ``carry_over``)."""
        tables = world.supply
        if self.carry_over:
            tables = replace(tables, economics=tables.economics.assign(
                salvage_value=carry_over_salvage(tables)))
        return float(np.median(store_ratios(tables, world.stores, self.plan)))
