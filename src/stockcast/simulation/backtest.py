"""``backtest.py``: replay replenishment policies against the actual demand of the test window.

``run(cfg)`` simulates every policy in ``backtest.policies`` period by period over the test
window (last ``data.split.test_periods`` periods) with the same starting stock, economics,
demand and realised lead times (common random numbers), then reports KPIs overall, per
location and per echelon, *inventory at matched service* (every tunable policy tuned to
the same fill rate), forecast diagnostics, figures and an HTML report, all logged to
MLflow (experiment ``stockcast-backtest``).

Policies: ``stockcast`` (TFT quantiles + :func:`~stockcast.optimization.plan`),
``lightgbm_opt`` (LightGBM quantiles + the same optimizer), ``true_distribution``
(synthetic only: the generator's true quantiles + the optimizer: the best a forecaster can
do), ``classic`` (moving average + ``z·σ·sqrt(L+R)``), ``seasonal_naive_ss`` and ``oracle``
(perfect foresight of demand and lead times).

The simulated network (rules, deliberate):

* series = the store item-locations (customer demand) + the DC item-nodes of their items
  (stock, no customer demand), in the optimizer's node order;
* routes: each store is replenished on the cheapest landed path of the optimizer's network
  (its supplier directly, or a supplier's DC then the DC -> store lane); a DC from its
  cheapest supplier. Safety-stock policies and the oracle follow these routes (DCs run
  echelon base stock for the stores they feed); the optimizer policies execute their plan
  (any supplier, DC -> store and lateral transfers);
* suppliers ship at most their ``capacity`` per review (orders beyond it are cut pro rata
  for every policy alike, except the oracle, which as a bound also ignores capacity;
  ``capacity_cut`` KPI); storage capacities of locations are not simulated, so the
  optimizer plans with them relaxed (``backtest.storage_factor``, default 10x; 1 = as in
  the tables); MOQs are off (``optimizer.values.moq``) because the safety-stock policies
  cannot honour them: every policy faces the same world;
* DC first: a store that orders from its supplier first gets its parent DC's stock when
  that DC feeds no store (initial DC stock would otherwise sit idle for the rule-based
  policies); the optimizer policies apply the same rule to their plan's store orders;
* realised lead time of an order placed at ``t`` with supplier ``s``: synthetic = the
  generator's ``truth_lead_times`` of ``s`` at ``t`` (rounded, incl. delays and
  disruptions); otherwise ``round(lead_time_mean) + round(|Z|·lead_time_std)`` with one
  seeded ``Z`` per series and period (shared by the suppliers); planned = the rounded
  mean; lanes take their stated lead time;
* markdown rule: demand at a marked-down price = actual demand x ``(price/list)^elasticity``
  with the world's elasticity: synthetic = the generator's true per-item elasticity,
  otherwise ``backtest.price_elasticity`` (the optimizer always prices with
  ``backtest.price_elasticity``: on synthetic data its assumption can be wrong);
* optimizer planning economics: stock carries over (``backtest.carry_over``: salvage value =
  unit cost, see :func:`~stockcast.simulation.policies.carry_over_salvage`);
* forecasters are called once per review with horizon ``ceil(max planned lead) + R``.

**Matched service.** Each tunable policy has a service knob: the cycle service level of
the safety-stock policies, a planning service level of the optimizer policies (each
store's forecast is shifted in probit space so the plan stocks up to that quantile instead
of its critical ratio's; costs stay real: see ``OptimizerPolicy`` in
:mod:`stockcast.simulation.policies`). It is simulated on
``backtest.tuning`` grids; for each target fill rate (``backtest.matched.targets``: a
number; a policy name = that policy's fill rate in the main run; ``common`` = the highest
fill rate every tunable policy reaches on its grid) :func:`match_target`
extends the grid while the target lies outside it and re-simulates at the knob
interpolated (in probit scale) between the two runs that bracket it, then reads average
inventory, costs and working capital off the line between the bracketing runs. A target no
knob reaches is reported as such, with the fill rates that were reached. The oracle is
not tuned: its fill rate is the most any policy could serve. The comparison covers the
periods after a warm-up (``backtest.warmup``, default the longest planned store lead
time: before it no decision reaches a shelf); the KPI tables cover the whole window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from scipy import special

from stockcast.data.panel import load_panel
from stockcast.data.supply import SupplyTables, validate_supply
from stockcast.forecast.dataset import TimeSplit
from stockcast.optimization.network import CostModel, build_network
from stockcast.optimization.plan import PlanConfig
from stockcast.schema import GROUP_IDS, TIME_IDX, season_length_for
from stockcast.simulation.engine import (
    Economics,
    SimTrace,
    SupplierCapacity,
    kpis,
    simulate,
    trace_frame,
)
from stockcast.simulation.policies import (
    ClassicPolicy,
    OptimizerPolicy,
    OraclePolicy,
    Routes,
    SeasonalNaiveSSPolicy,
    carry_over_salvage,
    store_ratios,
    z_of,
)
from stockcast.simulation.report import figures, html_report
from stockcast.tracking.mlflow_utils import log_config, log_table, setup_tracking, tracked_run

OPTIMIZER_POLICIES = ("stockcast", "lightgbm_opt", "true_distribution")
SS_POLICIES = ("classic", "seasonal_naive_ss")
ALL_POLICIES = (*OPTIMIZER_POLICIES, *SS_POLICIES, "oracle")
#: KPIs printed and shown first.
SHOWN_KPIS = ["total_cost", "controllable_cost", "fill_rate", "cycle_service_level",
              "stockout_frequency", "avg_inventory", "avg_inventory_value",
              "inventory_turnover", "working_capital", "lost_sales"]


def metric_name(*parts: str) -> str:
    """The one naming scheme of backtest metrics: ``{scope}_{kpi}`` (parts joined by ``_``)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in "_".join(parts))


@dataclass
class Window:
    """Everything the simulation needs, aligned on ``keys`` (series) x periods.

    Attributes:
        keys: ``item_id``, ``location_id``, ``echelon`` per series (stores first).
        periods: Period start dates of the window.
        t0: ``time_idx`` of the first period.
        demand: Customer demand ``[n, T]`` (0 at DCs).
        pre: Demand before the window ``[n, t_pre]``.
        econ: Per-series economics.
        on_hand0: Starting stock (on hand + in transit).
        routes: Replenishment routes.
        lead_real: Realised lead time of a route order placed at ``t`` ``[n, T]``.
        supplier_leads: Realised lead time per supplier ``[S, n, T]``.
        suppliers: Supplier ids (first axis of ``supplier_leads``).
        plan_horizon: Forecast steps per review.
        supply: The supply tables.
        elasticity: The world's price elasticity per series (how simulated demand answers a
            markdown); ``None`` = markdowns do not move demand.
        capacity: Supplier capacities per review (the suppliers table's ``capacity``).
    """

    keys: pd.DataFrame
    periods: list
    t0: int
    demand: np.ndarray
    pre: np.ndarray
    econ: Economics
    on_hand0: np.ndarray
    routes: Routes
    lead_real: np.ndarray
    supplier_leads: np.ndarray
    suppliers: list[str]
    plan_horizon: int
    supply: SupplyTables | None = None
    elasticity: np.ndarray | None = None
    capacity: SupplierCapacity | None = None

    @property
    def echelon(self) -> np.ndarray:
        return self.keys["echelon"].to_numpy()

    @property
    def stores(self) -> pd.DataFrame:
        """Store series keys (the forecast nodes)."""
        return self.keys.loc[self.keys["echelon"] != "dc", GROUP_IDS].reset_index(drop=True)


@dataclass
class BacktestResult:
    """What a backtest run produced."""

    run_id: str | None
    table: pd.DataFrame
    by_location: pd.DataFrame
    by_echelon: pd.DataFrame
    matched: pd.DataFrame
    curves: pd.DataFrame
    diagnostics: pd.DataFrame
    traces: dict[str, SimTrace] = field(repr=False)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ data -> window
def _supplier_lead_array(keys: pd.DataFrame, periods: list, supply: SupplyTables,
                         truth: pd.DataFrame | None, seed: int) -> tuple[np.ndarray, list[str]]:
    """Realised lead times ``[S, n, T]`` of every supplier for every series (rules: module doc)."""
    sup = supply.suppliers.assign(item_id=supply.suppliers["item_id"].astype(str),
                                  supplier_id=supply.suppliers["supplier_id"].astype(str))
    names = sorted(sup["supplier_id"].unique())
    n, t_len = len(keys), len(periods)
    out = np.full((len(names), n, t_len), t_len, dtype=int)  # not offered: never arrives
    z = np.abs(np.random.default_rng(seed).standard_normal((n, t_len)))
    items = keys["item_id"].astype(str).to_numpy()
    wide = None
    if truth is not None:
        wide = truth.assign(period=pd.to_datetime(truth["period"]),
                            supplier_id=truth["supplier_id"].astype(str)).pivot_table(
            index="supplier_id", columns="period", values="lead_time")
        wide = wide.reindex(columns=pd.to_datetime(pd.Index(periods))).ffill(axis=1)
    for s_idx, name in enumerate(names):
        rows = sup[sup["supplier_id"] == name].drop_duplicates("item_id").set_index("item_id")
        offered = np.isin(items, rows.index)
        if not offered.any():
            continue
        mean = rows["lead_time_mean"].reindex(items[offered]).to_numpy(float)
        std = rows["lead_time_std"].reindex(items[offered]).to_numpy(float)
        planned = np.round(mean)[:, None]
        if wide is not None and name in wide.index:
            lt = np.broadcast_to(wide.loc[name].to_numpy(float), (int(offered.sum()), t_len))
            lt = np.where(np.isfinite(lt), np.round(lt), planned)
        else:
            lt = planned + np.round(z[offered] * std[:, None])
        out[s_idx, offered] = np.maximum(lt, 0).astype(int)
    return out, names


def build_window(panel: pd.DataFrame, t0: int, t1: int, supply: SupplyTables,
                 truth_lead: pd.DataFrame | None, fixed_order_cost: float, seed: int,
                 review: int = 1, cost_model: CostModel | None = None) -> Window:
    """Align demand, history, economics, routes and lead times of the window ``t0..t1``.

    Raises:
        DataValidationError: Supply tables that fail validation, or store item-locations
            without an economics row (names the rows).
    """
    tables = validate_supply(supply)
    p = panel.assign(item_id=panel["item_id"].astype(str),
                     location_id=panel["location_id"].astype(str))
    stores = p[GROUP_IDS].drop_duplicates().sort_values(GROUP_IDS).reset_index(drop=True)
    net = build_network(stores, tables, cost_model or CostModel(), table="panel")
    nodes = net.nodes.reset_index(drop=True)
    keys = nodes[[*GROUP_IDS, "echelon"]].astype(str).reset_index(drop=True)
    n, n_store = len(nodes), len(stores)
    wide = p.pivot_table(index=GROUP_IDS, columns=TIME_IDX, values="demand", aggfunc="sum")
    wide = wide.reindex(pd.MultiIndex.from_frame(stores))
    cols = [c for c in wide.columns if c <= t1]
    periods = (p[(p[TIME_IDX] >= t0) & (p[TIME_IDX] <= t1)].drop_duplicates(TIME_IDX)
               .sort_values(TIME_IDX)["period"].tolist())
    t_len = len(periods)
    pre_cols = [c for c in cols if c < t0]
    demand = np.zeros((n, t_len))
    demand[:n_store] = np.nan_to_num(wide[[c for c in cols if c >= t0]].to_numpy(float))
    pre = np.zeros((n, len(pre_cols)))
    pre[:n_store] = wide[pre_cols].to_numpy(float)

    sup_leads, names = _supplier_lead_array(keys, periods, tables, truth_lead, seed)
    s_code = {s: i for i, s in enumerate(names)}
    node_of = {k: i for i, k in enumerate(zip(keys["item_id"], keys["location_id"], strict=True))}
    lanes = {(str(a), str(b)): (float(c), float(lt)) for a, b, c, lt in zip(
        tables.lanes["from_id"], tables.lanes["to_id"], tables.lanes["transfer_cost"],
        tables.lanes["lead_time"], strict=True)}
    price = {(str(s), str(i)): float(c) for s, i, c in zip(
        tables.suppliers["supplier_id"], tables.suppliers["item_id"],
        tables.suppliers["unit_cost"], strict=True)}
    # each DC's cheapest direct supplier (a DC is replenished straight from a supplier)
    arcs = net.arcs.loc[net.arcs.groupby("node")["landed_cost"].idxmin()].set_index("node")
    supplier = np.array([None] * n, dtype=object)
    source = np.full(n, -1)
    lead = np.zeros(n, dtype=int)
    lane_cost = np.zeros(n)
    for i, (item, loc, ech, ref) in enumerate(zip(keys["item_id"], keys["location_id"],
                                                   keys["echelon"], nodes["ref_source"],
                                                   strict=True)):
        if ech != "dc" and str(ref) == "none":
            continue  # no supplier reaches this store: it lives off its stock
        if ech == "dc" or " via " not in str(ref):
            if i in arcs.index:
                supplier[i] = str(arcs.loc[i, "supplier_id"]) if ech == "dc" else str(ref)
            continue
        sup_id, dc = str(ref).split(" via ", 1)
        source[i] = node_of[(item, dc)]
        supplier[i] = sup_id
        lane_cost[i], lane_lead = lanes[(dc, loc)]
        lead[i] = int(round(lane_lead))
    can_order = np.array([s is not None for s in supplier])
    lead_real = np.zeros((n, t_len), dtype=int)
    order_cost = nodes["unit_cost"].to_numpy(float).copy()
    arc_lead = dict(zip(zip(net.arcs["node"], net.arcs["supplier_id"].astype(str), strict=True),
                        net.arcs["lead_time_mean"], strict=True))
    items = keys["item_id"].to_numpy()
    for i in np.flatnonzero(can_order):
        s = s_code[supplier[i]]
        order_cost[i] = price[(supplier[i], items[i])]
        if source[i] < 0:
            lead_real[i] = sup_leads[s, i]
            mean = arc_lead.get((i, supplier[i]))
            lead[i] = int(round(float(mean))) if mean is not None else int(lead_real[i, 0])
    lead_real[source >= 0] = lead[source >= 0, None]
    # DC first: a store that orders from its supplier is first handed its parent DC's stock
    # when that DC feeds no store on its route (stock that would otherwise sit there)
    parent_of = dict(zip(tables.locations["location_id"].astype(str),
                         tables.locations["parent_id"], strict=True))
    feeding = set(source[source >= 0].tolist())
    parent, parent_lead, parent_cost = np.full(n, -1), np.zeros(n, dtype=int), np.zeros(n)
    for i, (item, loc, ech) in enumerate(zip(keys["item_id"], keys["location_id"],
                                             keys["echelon"], strict=True)):
        dc = parent_of.get(loc)
        j = node_of.get((item, str(dc))) if ech != "dc" and source[i] < 0 and dc else None
        if j is not None and j not in feeding and (str(dc), loc) in lanes:
            parent[i] = j
            parent_cost[i], lt = lanes[(str(dc), loc)]
            parent_lead[i] = int(round(lt))
    routes = Routes(lead, source, lane_cost, (keys["echelon"] == "dc").to_numpy(), can_order,
                    parent, parent_lead, parent_cost)
    econ = Economics(nodes["unit_cost"].to_numpy(float), nodes["price"].to_numpy(float),
                     nodes["holding_cost"].to_numpy(float),
                     nodes["shortage_cost"].to_numpy(float), float(fixed_order_cost),
                     order_cost)
    on_hand0 = (nodes["on_hand"] + nodes["in_transit"]).to_numpy(float)
    item_codes, item_names = pd.factorize(keys["item_id"])
    cap = np.full((len(names), len(item_names)), np.inf)
    item_index = {str(v): j for j, v in enumerate(item_names)}
    for sup_id, item, c in zip(tables.suppliers["supplier_id"].astype(str),
                               tables.suppliers["item_id"].astype(str),
                               tables.suppliers["capacity"], strict=True):
        if item in item_index:
            cap[s_code[sup_id], item_index[item]] = float(c)
    route_sup = np.array([s_code[supplier[i]] if can_order[i] and source[i] < 0 else -1
                          for i in range(n)], dtype=int)
    capacity = SupplierCapacity(item_codes.astype(int), route_sup, cap)
    horizon = int(math.ceil(float(nodes["ref_lead_mean"].iloc[:n_store].max()) - 1e-9)) + review
    return Window(keys, periods, t0, demand, pre, econ, on_hand0, routes, lead_real, sup_leads,
                  names, max(horizon, 1), tables, capacity=capacity)


def world_elasticity(win: Window, assumed: float | None, truth_dir: Path | None
                     ) -> np.ndarray | None:
    """How simulated demand answers a markdown: the generator's true per-item elasticity
    (``truth_series.parquet``) when there is one, else the configured ``assumed`` value
    (``None``: markdowns do not move demand)."""
    n = len(win.keys)
    out = None if assumed is None else np.full(n, float(assumed))
    path = truth_dir / "truth_series.parquet" if truth_dir is not None else None
    if path is not None and path.exists():
        ts = pd.read_parquet(path, columns=["item_id", "elasticity"])
        true = ts.assign(item_id=ts["item_id"].astype(str)).groupby("item_id")["elasticity"].first()
        mapped = win.keys["item_id"].map(true).to_numpy(float)
        out = np.where(np.isfinite(mapped), mapped, np.nan if out is None else out)
        out = np.nan_to_num(out, nan=0.0)
    return out


# ------------------------------------------------------------------ policies
def make_policy(name: str, knob: float | None, win: Window, review: int, season: int,
                forecasters: dict[str, Callable[[int, int], pd.DataFrame]],
                plan_cfg: PlanConfig | None, elasticity: float | None, window: int = 6,
                carry_over: bool = True, unmet: str = "lost", storage_factor: float = 10.0):
    """Build policy ``name`` with its service knob: the cycle service level of the
    safety-stock policies, the planning service level of the optimizer policies (``None``
    = the real economics); the oracle has none."""
    if name in SS_POLICIES and knob is None:
        raise ValueError(f"policy {name!r} needs a cycle service level")
    if name == "classic":
        return ClassicPolicy(win.pre, win.routes, review, z_of(knob), window)
    if name == "seasonal_naive_ss":
        return SeasonalNaiveSSPolicy(win.pre, win.routes, review, z_of(knob), season)
    if name == "oracle":
        return OraclePolicy(win.demand, win.lead_real, review, win.routes, unmet)
    if name in OPTIMIZER_POLICIES:
        if name not in forecasters:
            raise ValueError(f"policy {name!r} has no forecaster (model/truth unavailable)")
        return OptimizerPolicy(forecasters[name], win.keys, win.supply, plan_cfg, win.t0,
                               win.plan_horizon, {s: i for i, s in enumerate(win.suppliers)},
                               demand_keys=win.stores, service=knob, carry_over=carry_over,
                               elasticity=elasticity, routes=win.routes,
                               storage_factor=storage_factor)
    raise ValueError(f"unknown policy {name!r}; choose from {ALL_POLICIES}")


class CachedForecaster:
    """Memoize a forecaster on (origin, horizon): forecasts don't depend on stock."""

    def __init__(self, fn: Callable[[int, int], pd.DataFrame]) -> None:
        self.fn = fn
        self.memo: dict[tuple[int, int], pd.DataFrame] = {}

    def __call__(self, origin: int, horizon: int) -> pd.DataFrame:
        if (origin, horizon) not in self.memo:
            self.memo[(origin, horizon)] = self.fn(origin, horizon)
        return self.memo[(origin, horizon)]


def truth_forecaster(truth: pd.DataFrame, panel: pd.DataFrame) -> Callable[[int, int], pd.DataFrame]:
    """Forecast table from the generator's true quantiles (``truth_demand``)."""
    tmap = panel.drop_duplicates(TIME_IDX).set_index("period")[TIME_IDX]
    t = truth.assign(period=pd.to_datetime(truth["period"]),
                     item_id=truth["item_id"].astype(str),
                     location_id=truth["location_id"].astype(str))
    t[TIME_IDX] = t["period"].map(tmap)
    t = t.dropna(subset=[TIME_IDX])
    qcols = [c for c in t.columns if c.startswith("q")]
    keys = panel[GROUP_IDS].astype(str).drop_duplicates()
    t = t.merge(keys, on=GROUP_IDS)
    origin_date = dict(zip(tmap.to_numpy(), tmap.index, strict=True))

    def forecast(origin: int, horizon: int) -> pd.DataFrame:
        rows = t[(t[TIME_IDX] > origin) & (t[TIME_IDX] <= origin + horizon)].copy()
        rows["horizon"] = (rows[TIME_IDX] - origin).astype(int)
        rows["forecast_origin"] = origin_date.get(origin)
        return rows[[*GROUP_IDS, "period", "forecast_origin", "horizon", *qcols]]

    return forecast


# ------------------------------------------------------------------ matched service
def _probit(k: float) -> float:
    return float(special.ndtri(min(max(k, 1e-9), 1 - 1e-9)))


def _bracket(points: dict[float, dict], target: float) -> tuple[float, float] | None:
    """The first adjacent pair of knobs (ascending) whose fill rates straddle ``target``."""
    ks = sorted(points)
    for a, b in zip(ks, ks[1:], strict=False):
        fa, fb = points[a]["fill_rate"], points[b]["fill_rate"]
        if min(fa, fb) - 1e-12 <= target <= max(fa, fb) + 1e-12:
            return a, b
    for k in ks:
        if abs(points[k]["fill_rate"] - target) <= 1e-12:
            return k, k
    return None


def match_target(points: dict[float, dict], target: float,
                 run_knob: Callable[[float], dict] | None = None, *, expand: int = 3,
                 refine: int = 2, tolerance: float = 0.002, step: float = 0.75,
                 values: tuple[str, ...] = ("avg_inventory", "avg_inventory_value",
                                            "total_cost", "controllable_cost",
                                            "working_capital")) -> dict:
    """A policy's KPIs at fill rate ``target``, read off its service-vs-knob curve.

    Args:
        points: Knob -> KPI dict (with ``fill_rate``) of the runs so far; runs added here
            are stored in it too.
        target: Fill rate to match.
        run_knob: Simulates the policy at a knob in (0, 1) and returns its KPIs (``None``:
            no new runs, interpolate on ``points`` only).
        expand: Runs allowed beyond the grid (``step`` probit units past its end) while
            every fill rate lies below (or above) the target.
        refine: Runs allowed at the knob interpolated (probit scale) between the bracketing
            runs, until one lies within ``tolerance`` of the target.
        tolerance: Fill-rate distance that ends refinement.
        step: Probit distance of one expansion step.
        values: KPIs interpolated (linearly in fill rate) between the bracketing runs.

    Returns:
        ``reached`` (bool), ``status`` (one sentence), ``knob`` (interpolated),
        ``fill_lo``/``fill_hi`` (bracketing runs), ``n_runs`` (new runs), and each of
        ``values`` (NaN when not reached).
    """
    new_runs = 0

    def add(k: float) -> None:
        nonlocal new_runs
        if k not in points:
            points[k] = run_knob(k)
            new_runs += 1

    n_expand, n_refine = expand, refine
    while True:
        br = _bracket(points, target)
        fills = {k: points[k]["fill_rate"] for k in points}
        if br is None:
            lo_k, hi_k = min(points), max(points)
            up = all(f < target for f in fills.values())
            if run_knob is None or n_expand <= 0:
                best = max(fills.values()) if up else min(fills.values())
                where = "highest" if up else "lowest"
                return {"reached": False, "n_runs": new_runs, "knob": np.nan,
                        "fill_lo": min(fills.values()), "fill_hi": max(fills.values()),
                        "status": (f"unreachable: {where} fill rate reached {best:.4f} "
                                   f"(knob {hi_k if up else lo_k:.6g}) "
                                   f"{'<' if up else '>'} target {target:.4f}"),
                        **{v: np.nan for v in values}}
            edge = hi_k if up else lo_k
            k = float(special.ndtr(_probit(edge) + (step if up else -step)))
            if k in points:  # the knob saturated at 0 or 1
                n_expand = 0
                continue
            add(k)
            n_expand -= 1
            if abs(points[k]["fill_rate"] - points[edge]["fill_rate"]) < tolerance / 4:
                n_expand = 0  # the fill rate no longer moves with the knob: saturated
            continue
        a, b = br
        fa, fb = fills[a], fills[b]
        close = min(abs(fa - target), abs(fb - target)) <= tolerance
        if close or run_knob is None or n_refine <= 0 or a == b:
            break
        w = (target - fa) / (fb - fa)
        k = float(special.ndtr(_probit(a) + w * (_probit(b) - _probit(a))))
        if k in points or not (min(a, b) < k < max(a, b)):
            break
        add(k)
        n_refine -= 1
    w = 0.0 if fb == fa else (target - fa) / (fb - fa)
    knob = float(special.ndtr(_probit(a) + w * (_probit(b) - _probit(a)))) if a != b else a
    out = {"reached": True, "n_runs": new_runs, "knob": knob, "fill_lo": min(fa, fb),
           "fill_hi": max(fa, fb),
           "status": (f"matched: interpolated between knob {a:.6g} (fill {fa:.4f}) and "
                      f"{b:.6g} (fill {fb:.4f})" if a != b else f"matched at knob {a:.6g}")}
    for v in values:
        va, vb = points[a].get(v, np.nan), points[b].get(v, np.nan)
        out[v] = float(va + w * (vb - va))
    return out


def _pct_less(value: float, ref: float) -> float:
    """How much lower ``value`` is than ``ref``, in % of ``|ref|`` (positive = lower)."""
    return float(100.0 * (ref - value) / abs(ref)) if ref and np.isfinite(ref) else np.nan


def _pct_above(value: float, ref: float) -> float:
    """How much higher ``value`` is than ``ref``, in % of ``|ref|`` (the gap to a bound)."""
    return float(100.0 * (value - ref) / abs(ref)) if ref and np.isfinite(ref) else np.nan


def matched_table(rows: list[dict]) -> pd.DataFrame:
    """Add the comparisons to classic and the gaps to the oracle and true-distribution
    policies (same target) to per-(policy, target) rows from :func:`match_target`.

    Columns added: ``{kpi}_reduction_vs_classic_pct`` (% less than classic, for average
    inventory, total and controllable cost), ``avg_inventory_gap_to_{bound}_pct`` (% above
    the bound) and ``controllable_cost_gap_to_{bound}`` (cost above the bound, in money: a
    bound's controllable cost can be near 0, so a % would say little).
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    above = lambda v, ref: float(v - ref)  # noqa: E731
    specs = [("classic", col, f"{col}_reduction_vs_classic_pct", _pct_less)
             for col in ("avg_inventory", "total_cost", "controllable_cost")]
    for ref in ("oracle", "true_distribution"):
        specs += [(ref, "avg_inventory", f"avg_inventory_gap_to_{ref}_pct", _pct_above),
                  (ref, "controllable_cost", f"controllable_cost_gap_to_{ref}", above)]
    for ref, col, name, how in specs:
        vals = []
        for r in df.to_dict("records"):
            match = df[(df["policy"] == ref) & (df["target"] == r["target"])]
            refv = float(match[col].iloc[0]) if len(match) else np.nan
            vals.append(how(r[col], refv) if r["reached"] and np.isfinite(refv) else np.nan)
        if any(np.isfinite(vals)):
            df[name] = vals
    return df


# ------------------------------------------------------------------ run
def _forecasters(cfg: DictConfig, policies: list[str], panel: pd.DataFrame, spec, bundle,
                 truth: pd.DataFrame | None, end: int) -> dict[str, CachedForecaster]:
    out = {}
    if "stockcast" in policies and bundle is not None:
        out["stockcast"] = CachedForecaster(lambda o, h: bundle.forecast(panel, [o], h))
    if "lightgbm_opt" in policies:
        from hydra.utils import instantiate

        from stockcast.baselines import LightGBMBaseline

        entry = cfg.backtest.get("lightgbm")
        make = instantiate(entry, _partial_=True, _convert_="all") if entry else LightGBMBaseline
        lgb = make(spec=spec)
        out["lightgbm_opt"] = CachedForecaster(lambda o, h: lgb.forecast(panel, [o], h))
    if "true_distribution" in policies and truth is not None:
        out["true_distribution"] = CachedForecaster(truth_forecaster(truth, panel))
    return out


def forecast_diagnostics(fcs: dict[str, CachedForecaster], panel: pd.DataFrame, t0: int,
                         t1: int) -> pd.DataFrame:
    """Accuracy and interval coverage of every forecast the optimizer policies planned
    with, scored on the window's actual demand (rolling origins)."""
    from stockcast.evaluation.metrics import forecast_metrics

    actual = panel.loc[(panel[TIME_IDX] >= t0) & (panel[TIME_IDX] <= t1),
                       [*GROUP_IDS, "period", "demand"]].astype({"item_id": str,
                                                                 "location_id": str})
    actual["period"] = pd.to_datetime(actual["period"])
    rows = []
    for name, fc in fcs.items():
        if not fc.memo:
            continue
        t = pd.concat(list(fc.memo.values()), ignore_index=True)
        t = t[[*GROUP_IDS, "period", *(c for c in t.columns if c.startswith("q"))]]
        t = t.assign(item_id=t["item_id"].astype(str), location_id=t["location_id"].astype(str),
                     period=pd.to_datetime(t["period"]))
        t = t.merge(actual, on=[*GROUP_IDS, "period"])
        if t.empty:
            continue
        m = forecast_metrics(t, prefix="backtest")
        rows.append({"policy": name, "n_forecasts": len(t),
                     **{k.removeprefix("backtest_"): v for k, v in m.items()}})
    return pd.DataFrame(rows)


def _planning_ratio(win: Window, carry_over: bool, plan_cfg: PlanConfig) -> float:
    """Median list-price critical ratio of the stores under the optimizer's real economics."""
    tables = win.supply
    if carry_over:
        tables = replace(tables, economics=tables.economics.assign(
            salvage_value=carry_over_salvage(tables)))
    return float(np.median(store_ratios(tables, win.stores, plan_cfg)))


def warmup_periods(value, win: Window) -> int:
    """Periods left out of the matched-service comparison: an int, or ``auto`` = the longest
    planned replenishment lead time of a store (before it, no decision can reach a shelf),
    capped at half the window so a window shorter than twice the lead time still compares
    its second half (:func:`warmup_note` says so)."""
    t_len = len(win.periods)
    if value in (None, "auto"):
        stores = ~win.routes.is_dc
        return min(int(win.routes.lead[stores].max(initial=0)), t_len // 2)
    w = int(value)
    if not 0 <= w < t_len:
        raise ValueError(f"backtest.warmup={value}: must leave at least one of the "
                         f"{t_len} periods (0 <= warmup < {t_len})")
    return w


def warmup_note(value, win: Window) -> str | None:
    """A warning when ``warmup=auto`` had to be capped below the longest lead time."""
    if value not in (None, "auto"):
        return None
    lead = int(win.routes.lead[~win.routes.is_dc].max(initial=0))
    if lead <= len(win.periods) // 2:
        return None
    return (f"the window ({len(win.periods)} periods) is shorter than twice the longest store "
            f"lead time ({lead}): warm-up capped at {len(win.periods) // 2}, so the matched "
            "comparison still includes periods no decision could reach; use a longer window "
            "(data.split.test_periods) for decision claims")


def _target(t, main_table: pd.DataFrame, points: dict[str, float]) -> tuple[str, float]:
    """(label, fill rate) of one ``backtest.matched.targets`` entry (``points``: each
    tunable policy's highest fill rate on its grid)."""
    fills = main_table.set_index("policy")["fill_rate"]
    if t == "common":
        if not points:
            raise ValueError("backtest.matched.targets: 'common' needs a tunable policy")
        return "common", float(min(points.values()))
    if isinstance(t, str) and not t.replace(".", "", 1).isdigit():
        if t not in fills.index:
            raise ValueError(f"backtest.matched.targets: {t!r} is not a simulated policy "
                             f"({list(fills.index)}) nor 'common'")
        return t, float(fills[t])
    v = float(t)
    if not 0 < v < 1:
        raise ValueError(f"backtest.matched.targets: fill rate {v} not in (0, 1)")
    return f"{v:g}", v


def run(cfg: DictConfig) -> BacktestResult:
    """Backtest the configured policies on the test window; log to MLflow (see module doc)."""
    from stockcast.data.panel import select_series
    from stockcast.data.supply import supply_for
    from stockcast.tracking.context import load_context

    setup_tracking()
    bt = cfg.backtest
    review = int(bt.review_period)
    unmet = str(bt.unmet)
    carry_over = bool(bt.get("carry_over", True))
    policies = list(bt.policies)
    unknown = [p for p in policies if p not in ALL_POLICIES]
    if unknown:
        raise ValueError(f"backtest.policies: unknown {unknown}; choose from {ALL_POLICIES}")
    bundle, version = None, None
    if "stockcast" in policies:
        ctx = load_context(cfg)
        version, bundle, spec, panel = ctx.version, ctx.bundle, ctx.spec, ctx.panel
    else:
        spec = instantiate(cfg.data)
        panel = select_series(load_panel(spec), None, cfg.get("max_series"))
    split = TimeSplit.from_panel(panel, spec)
    t0, t1 = int(split.test_start), int(split.test_end)
    history = panel[panel[TIME_IDX] < t0]
    supply = supply_for(spec, history, **OmegaConf.to_container(cfg.supply, resolve=True))
    notes = []
    truth_lead = truth_demand = gdir = None
    if spec.generator is not None:
        from stockcast.data.sources import generated_dir, materialize

        materialize(spec)
        gdir = generated_dir(spec)
        truth_lead = pd.read_parquet(gdir / "truth_lead_times.parquet")
        truth_demand = pd.read_parquet(gdir / "truth_demand.parquet")
    elif "true_distribution" in policies:
        policies = [p for p in policies if p != "true_distribution"]
        notes.append(f"true_distribution skipped: dataset {spec.name} has no generator truth")
    plan_cfg = instantiate(cfg.optimizer)
    win = build_window(panel, t0, t1, supply, truth_lead, float(bt.fixed_order_cost),
                       int(cfg.seed), review, plan_cfg.cost_model())
    elasticity = bt.get("price_elasticity")
    win.elasticity = world_elasticity(win, elasticity, gdir if truth_lead is not None else None)
    fcs = _forecasters(cfg, policies, panel, spec, bundle, truth_demand,
                       int(panel[TIME_IDX].max()))
    season = int(bt.get("season_length") or season_length_for(spec.freq))
    traces: dict[tuple[str, float | None], SimTrace] = {}

    def sim(name: str, knob: float | None) -> SimTrace:
        if (name, knob) not in traces:
            pol = make_policy(name, knob, win, review, season, fcs, plan_cfg, elasticity,
                              int(bt.ma_window), carry_over, unmet,
                              float(bt.get("storage_factor", 10.0)))
            # the oracle is a bound: perfect foresight and no supplier capacity limit
            cap = None if name == "oracle" else win.capacity
            traces[(name, knob)] = simulate(win.demand, pol, win.lead_real, win.econ,
                                            win.on_hand0, unmet, review, win.supplier_leads,
                                            win.elasticity, cap)
        return traces[(name, knob)]

    def main_knob(name: str) -> float | None:
        return float(bt.service_target) if name in SS_POLICIES else None

    main = {n: sim(n, main_knob(n)) for n in policies}
    table = pd.DataFrame([{"policy": n, **kpis(tr)} for n, tr in main.items()])
    locs, ech = win.keys["location_id"].to_numpy(), win.echelon
    by_loc = pd.DataFrame([{"policy": n, "location_id": loc,
                            "echelon": ech[locs == loc][0], **kpis(tr, locs == loc)}
                           for n, tr in main.items() for loc in pd.unique(locs)])
    by_ech = pd.DataFrame([{"policy": n, "echelon": e, "n_series": int((ech == e).sum()),
                            **kpis(tr, ech == e)}
                           for n, tr in main.items() for e in pd.unique(ech)])

    # ---- inventory at matched service (periods after the warm-up)
    warm = warmup_periods(bt.get("warmup", "auto"), win)
    if (note := warmup_note(bt.get("warmup", "auto"), win)) is not None:
        notes.append(note)
    evald = pd.DataFrame([{"policy": n, **kpis(tr, start=warm)} for n, tr in main.items()])
    tun = bt.tuning
    grids = {n: [float(k) for k in (tun.service_levels if n in SS_POLICIES
                                    else tun.critical_ratios)]
             for n in policies if n != "oracle"}
    points: dict[str, dict[float, dict]] = {}
    for n, grid in grids.items():
        ks = sorted(set(grid) | ({main_knob(n)} if main_knob(n) is not None else set()))
        points[n] = {k: kpis(sim(n, k), start=warm) for k in ks}
    grid_reach = {n: max(kp["fill_rate"] for kp in pts.values()) for n, pts in points.items()}
    rows, targets = [], []
    for entry in bt.matched.targets:
        label, target = _target(entry, evald, grid_reach)
        targets.append((label, target))
        for n in policies:
            if n == "oracle":
                k = evald.set_index("policy").loc["oracle"]
                ok = bool(k["fill_rate"] >= target - 1e-9)
                rows.append({"policy": n, "target": label, "target_fill_rate": target,
                             "reached": ok, "knob": np.nan, "fill_lo": k["fill_rate"],
                             "fill_hi": k["fill_rate"], "n_runs": 0,
                             "status": (f"perfect foresight, not tuned: fill "
                                        f"{k['fill_rate']:.4f}" + ("" if ok else
                                                                    " < target")),
                             **{v: float(k[v]) for v in ("avg_inventory",
                                                         "avg_inventory_value", "total_cost",
                                                         "controllable_cost",
                                                         "working_capital")}})
                continue
            res = match_target(points[n], target,
                               lambda k, n=n: kpis(sim(n, k), start=warm),
                               expand=int(tun.expand), refine=int(tun.refine),
                               tolerance=float(tun.tolerance))
            rows.append({"policy": n, "target": label, "target_fill_rate": target, **res})
    matched = matched_table(rows)
    curves = pd.DataFrame([{"policy": n, "knob": k, **kp} for n, pts in points.items()
                           for k, kp in sorted(pts.items())])
    diagnostics = forecast_diagnostics(fcs, panel, t0, t1)
    if any(p in OPTIMIZER_POLICIES for p in policies):
        ratio = _planning_ratio(win, carry_over, plan_cfg)
        notes.append(f"optimizer policies plan with {'carry-over' if carry_over else 'sell-off'}"
                     f" salvage: median store critical ratio {ratio:.3f}")
        if len(diagnostics):
            diagnostics["planning_critical_ratio"] = ratio
    per_period = {n: trace_frame(tr, win.periods, ech) for n, tr in main.items()}
    notes.insert(0, f"matched service over the {len(win.periods) - warm} periods from "
                 f"{pd.Timestamp(win.periods[warm]).date()} (warm-up {warm}: "
                 "backtest.warmup); the KPI tables cover the whole window")
    return _log(cfg, version, spec, win, table, by_loc, by_ech, matched, curves, diagnostics,
                per_period, main, targets, notes, evald)


def _log(cfg, version, spec, win, table, by_loc, by_ech, matched, curves, diagnostics,
         per_period, traces, targets, notes, evaluated=None) -> BacktestResult:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bt = cfg.backtest
    with tracked_run(cfg.logger.experiment_name,
                     run_name=f"backtest-v{version.version}" if version else "backtest",
                     tags={"stockcast.task": "backtest",
                           "stockcast.model_version": version.version if version else "none"}
                     ) as active:
        log_config(cfg)
        n_dc = int((win.keys["echelon"] == "dc").sum())
        mlflow.log_params({"dataset": spec.name, "n_series": len(win.keys) - n_dc,
                           "n_dc_nodes": n_dc,
                           "window_start": str(pd.Timestamp(win.periods[0]).date()),
                           "n_periods": len(win.periods)})
        metrics = {metric_name(r["policy"], k): float(v) for r in table.to_dict("records")
                   for k, v in r.items() if k != "policy" and pd.notna(v)}
        metrics.update({metric_name(r["policy"], r["echelon"], k): float(r[k])
                        for r in by_ech.to_dict("records") for k in SHOWN_KPIS
                        if pd.notna(r.get(k))})
        for r in matched.to_dict("records"):
            tag = "matched" if r["target"] == targets[0][0] else f"matched_{r['target']}"
            for k in ("avg_inventory", "total_cost", "controllable_cost",
                      "avg_inventory_reduction_vs_classic_pct",
                      "total_cost_reduction_vs_classic_pct",
                      "controllable_cost_reduction_vs_classic_pct",
                      "avg_inventory_gap_to_oracle_pct", "controllable_cost_gap_to_oracle",
                      "avg_inventory_gap_to_true_distribution_pct",
                      "controllable_cost_gap_to_true_distribution"):
                if pd.notna(r.get(k, np.nan)):
                    metrics[metric_name(r["policy"], tag, k)] = float(r[k])
        metrics.update({metric_name(r["policy"], "forecast", k): float(v)
                        for r in diagnostics.to_dict("records") for k, v in r.items()
                        if k not in ("policy",) and isinstance(v, int | float) and pd.notna(v)})
        mlflow.log_metrics(metrics)
        files = {}
        for name, df in {"kpis": table, "kpis_by_location": by_loc, "kpis_by_echelon": by_ech,
                         "matched_service": matched, "tuning_curves": curves,
                         "forecast_diagnostics": diagnostics}.items():
            df.to_csv(out / f"{name}.csv", index=False)
            files[f"{name}_csv"] = str(out / f"{name}.csv")
            log_table(df, f"backtest/{name}.csv")
        md = out / "kpis.md"
        md.write_text(table.to_markdown(index=False, floatfmt=",.3f") + "\n\n"
                      + matched_view(matched).to_markdown(index=False, floatfmt=",.3f"),
                      encoding="utf-8")
        files["kpis_md"] = str(md)
        mlflow.log_artifact(str(md), "backtest")
        figs = figures(per_period, table, curves, matched, evaluated)
        for name, fig in figs.items():
            mlflow.log_figure(fig, f"figures/{name}")
        tlabels = ", ".join(f"{lbl} = {v:.4f}" for lbl, v in targets)
        notes = [f"dataset {spec.name}: {len(win.keys) - n_dc} store item-locations + {n_dc} "
                 f"DC item-nodes, {len(win.periods)} periods from "
                 f"{pd.Timestamp(win.periods[0]).date()}",
                 f"unmet demand: {bt.unmet}; review period {bt.review_period}; "
                 f"classic/seasonal cycle service level {bt.service_target} in the main run",
                 f"matched service: fill-rate targets {tlabels}; each tunable policy's knob is "
                 "searched (grid, extension, probit interpolation) and its KPIs are read off "
                 "the line between the two runs that bracket the target",
                 "total cost = holding + shortage (goodwill + lost revenue when lost) + "
                 "ordering + transfer + net markdown cost + starting stock - end stock (both at "
                 "unit cost) = list-price value of the demand - profit; controllable cost = "
                 "total cost - unit cost x demand (0 for a perfect policy); differences between "
                 "policies are profit differences. Per location and echelon, costs fall where "
                 "they occur (purchases where goods arrive, transfers at the receiver): only "
                 "the network totals compare policies", *notes]
        report = html_report(out / "backtest_report.html", "stockcast backtest", notes,
                             {"KPIs (all item-locations)": table,
                              "Inventory at matched service": matched_view(matched),
                              "Matched-service search": matched,
                              "KPIs per echelon": by_ech,
                              "Forecasts the optimizer policies planned with": diagnostics,
                              "KPIs per location": by_loc}, figs)
        files["report_html"] = str(report)
        mlflow.log_artifact(str(report), "backtest")
        mlflow.log_dict(json.loads(json.dumps({lbl: v for lbl, v in targets})),
                        "backtest/matched_targets.json")
        import matplotlib.pyplot as plt

        for fig in figs.values():
            plt.close(fig)
        return BacktestResult(active.info.run_id, table, by_loc, by_ech, matched, curves,
                              diagnostics, traces, files, notes)


def matched_view(matched: pd.DataFrame) -> pd.DataFrame:
    """The matched-service table a planner reads: one row per target and policy; costs and
    inventory at the target, % less than classic (positive = better), % above the oracle
    and the true-distribution policy (the gaps to the bounds)."""
    if matched.empty:
        return matched
    names = {"target": "target", "target_fill_rate": "fill", "policy": "policy",
             "reached": "reached", "avg_inventory": "inventory",
             "total_cost": "total_cost", "controllable_cost": "ctrl_cost",
             "avg_inventory_reduction_vs_classic_pct": "inv_vs_classic_%",
             "total_cost_reduction_vs_classic_pct": "total_vs_classic_%",
             "controllable_cost_reduction_vs_classic_pct": "ctrl_vs_classic_%",
             "avg_inventory_gap_to_oracle_pct": "inv_gap_oracle_%",
             "controllable_cost_gap_to_oracle": "ctrl_gap_oracle",
             "avg_inventory_gap_to_true_distribution_pct": "inv_gap_truth_%",
             "controllable_cost_gap_to_true_distribution": "ctrl_gap_truth"}
    view = matched[[c for c in names if c in matched]].rename(columns=names)
    pct = [c for c in view if c.endswith("%")]
    view[pct] = view[pct].round(1)
    view["fill"] = view["fill"].round(4)
    return view


def summary_text(result: BacktestResult) -> str:
    """KPI, per-echelon and matched-service tables for the terminal."""
    fmt = lambda v: f"{v:.4g}" if abs(v) < 100 else f"{v:,.0f}"  # noqa: E731
    parts = ["KPIs over the whole window (classic/seasonal at their configured cycle service "
             "level, optimizer policies at the real economics)",
             result.table[["policy", *SHOWN_KPIS]].to_string(index=False, float_format=fmt),
             "", "KPIs per echelon (costs fall where they occur: purchases where goods arrive, "
             "transfers at the receiver; DC fill = internal fill rate to the stores)",
             result.by_echelon[["policy", "echelon", "n_series", "fill_rate",
                                "internal_fill_rate", "avg_inventory", "holding_cost",
                                "ordering_cost", "transfer_cost"]].to_string(
                 index=False, float_format=fmt)]
    if len(result.matched):
        parts += ["", "Inventory and cost at matched fill rate (after the warm-up; vs classic: "
                  "% less than classic; inventory gap: % above the bound; cost gap: above the "
                  "bound, in money)",
                  matched_view(result.matched).to_string(index=False, float_format=fmt)]
        bad = result.matched[~result.matched["reached"].astype(bool)]
        for r in bad.to_dict("records"):
            parts.append(f"  {r['policy']} @ {r['target']}: {r['status']}")
    if len(result.diagnostics):
        cols = [c for c in ("policy", "n_forecasts", "wape", "bias_scaled", "coverage_80",
                            "coverage_96", "planning_critical_ratio") if c in result.diagnostics]
        parts += ["", "Forecasts behind the optimizer policies (rolling origins, window actuals)",
                  result.diagnostics[cols].to_string(index=False, float_format=fmt)]
    parts += [f"note: {n}" for n in result.notes[4:]]
    parts.append(f"report: {result.files.get('report_html')}")
    return "\n".join(parts)
