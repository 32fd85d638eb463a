"""One network plan in stages: :func:`prepare` -> :meth:`PreparedPlan.solve` -> results.

Steps (each in its own module):

1. validate the supply tables and the forecast (:mod:`stockcast.data.supply`,
   :func:`~stockcast.optimization.distribution.forecast_array`);
2. build the network graph, landed costs and each node's reference replenishment path
   (:mod:`~stockcast.optimization.network`) and the cut levels
   (:mod:`~stockcast.optimization.cuts`);
3. protection-period demand per node (lead time of the reference path + review period,
   lead-time spread mixed in) as ``n_scenarios`` equally likely values
   (:mod:`~stockcast.optimization.distribution`);
4. choose each node's price from the candidates by newsvendor profit
   (:mod:`~stockcast.optimization.pricing`);
5. solve the network problem (orders, transfers, positions under budget, capacities,
   MOQs, service floors) with CVXPY (:mod:`~stockcast.optimization.problem`);
6. write the decisions table and KPIs (:mod:`~stockcast.optimization.decisions`);
7. re-plan under each configured supply disruption and report its cost and the changed
   sourcing (the compiled problem is reused: only parameters change; each node keeps its
   base protection-period demand so the objective delta is the cost of the disruption; a
   note says how a slowdown moved the landed cost, and when a re-plan equals another).

Steps 1-4 make a :class:`PreparedPlan` (:func:`prepare`); step 5 solves it under a budget
and storage limits (:meth:`PreparedPlan.solve`); steps 6-7 are :meth:`PreparedPlan.result`
and :meth:`PreparedPlan.replans`. :func:`stockcast.optimization.plan.plan` runs them once
on the whole network; :mod:`~stockcast.optimization.decompose` runs them per block of
items.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from stockcast.data.supply import SupplyTables, validate_supply
from stockcast.optimization.cuts import (
    budget_multiplier,
    budget_ratio,
    closed_form_spend,
    cut_levels,
    transfer_ratio,
)
from stockcast.optimization.decisions import (
    NodeContext,
    add_markdown_evidence,
    build_decisions,
    compare_plans,
    node_report,
    summarize,
)
from stockcast.optimization.distribution import (
    NODE_KEYS,
    EmpiricalDemand,
    ForecastArray,
    forecast_array,
    protection_samples,
)
from stockcast.optimization.leadtime import METHODS as LEAD_TIME_DEMAND
from stockcast.optimization.leadtime import LeadTimeDemand
from stockcast.optimization.network import (
    CostModel,
    DisruptionSpec,
    Network,
    NetworkCache,
    build_network,
    disrupt,
    keep_lanes,
    surplus_lanes,
)
from stockcast.optimization.newsvendor import critical_ratio, newsvendor_quantity
from stockcast.optimization.pricing import (
    PriceGrid,
    PricingResult,
    choose_prices,
    elasticity_grid,
    table_grid,
)
from stockcast.optimization.problem import (
    Flags,
    NetworkProblem,
    NetworkSolution,
    ProblemCache,
    Values,
    node_values,
    solve_network,
)


@dataclass
class PlanConfig:
    """Everything :func:`plan` can be told (plain values, so Hydra can set them).

    Args:
        review_period: Periods between two decisions (R); the protection period is lead
            time + R.
        n_scenarios: Equally likely demand values per item-location (stratified samples of
            the protection-period demand). More = finer quantiles, same LP size.
        seed: Seed of the scenario draws (common random numbers across re-plans).
        budget: Cap on spend (supplier unit cost x units, plus transfer cost when
            ``budget_includes_transfers``); ``None`` = no cap.
        budget_includes_transfers: Count transfer costs against the budget.
        min_service_level: Every item-location's position must reach its demand quantile
            at this level (cycle service level); ``None`` = no floor.
        network_service_level: Per item, total position over the network must reach
            ``sum mean + z sqrt(sum var)`` with ``z`` = normal quantile of this level
            (pooled safety stock); ``None`` = off.
        moq: Enforce supplier minimum order quantities (binary variables, MIP) when any
            ``min_order_qty > 0``; ``False`` ignores them (pure LP).
        solver: CVXPY solver for the LP (``CLARABEL`` or ``HIGHS``).
        mip_solver: CVXPY solver when MOQs make it a MIP (``HIGHS``).
        solver_options: Options for ``solver`` (e.g. ``{"tol_gap_rel": 1e-7}``).
        mip_solver_options: Options for ``mip_solver`` (e.g. ``{"time_limit": 60,
            "mip_rel_gap": 1e-4}``).
        pipeline_holding: Landed cost includes holding over the mean lead time.
        lead_time_spread_weight: Landed cost includes holding x this x lead-time std.
        late_loss_share: Share of a late unit's expected margin + goodwill that is lost
            (landed cost includes ``(1 - reliability)`` x this x ...).
        markdowns: Markdown fractions tried when ``price_elasticity`` builds the candidates.
        price_elasticity: Constant elasticity used to derive demand at markdown prices when
            no ``price_forecasts`` are given; ``None`` = no pricing without price forecasts.
        pricing_scope: ``all`` (every item-location may change price) or ``excess`` (only
            those with excess stock may go below the list price).
        excess_quantile: Stock above this quantile of demand over the whole forecast
            horizon is *excess*.
        lateral_scope: ``surplus`` (default: transfers may leave DCs and item-locations
            whose stock exceeds their own order-up-to target, i.e. rebalance excess) or
            ``all`` (every lane; a larger, more degenerate problem).
        cut_levels: ``adaptive`` (about 10 tangent cuts per item-location placed around
            its critical ratio: exact at the unconstrained and budget-limited answers, a
            close lower bound elsewhere) or ``exact`` (one cut per scenario: the full
            scenario LP, ``n_scenarios + 1`` rows per item-location; for validation).
        report_levels: Quantile levels quoted in ``quantiles_used``.
        quantity_tol: Orders/transfers at or below this many units are not reported.
        explain: Write each decision's ``alternative`` and ``reason`` texts; ``False``
            leaves them empty (a backtest re-planning at every review reads only the
            quantities and prices: the texts cost about as much as the solve).
        disruptions: Supply disruptions to re-plan under (dicts or :class:`DisruptionSpec`).
        decompose: ``auto`` (decompose by item from ``decompose_min_item_locations``
            item-locations on), ``true`` or ``false`` (always one problem); see
            :mod:`~stockcast.optimization.decompose`.
        workers: Dask worker processes when the plan starts its own ``LocalCluster``.
        block_size: Item-locations per block of a decomposed plan (whole items).
        decompose_min_item_locations: Size from which ``auto`` decomposes.
        coordination_rounds: Most solve rounds of a decomposed plan (priced rounds, then
            a mixture of two of them or one recovery round, then correction rounds while
            rounds remain; probes and the mixture, which solves nothing, not counted).
        coordination_tol: A priced round within the budget is kept as the plan when what
            its unspent budget could still save (budget price x unspent budget: its
            duality gap) is within this fraction of its expected cost (the probes aim at
            half of it below the budget).
        keep_block_problems: Blocks keep their compiled problems between rounds (faster);
            ``False`` rebuilds them each round (a compiled problem takes more memory than
            the rest of its block: for the largest networks).
        lead_time_demand: How protection-period demand is built from the per-step
            quantiles (:mod:`~stockcast.optimization.leadtime`): ``independent``,
            ``summed``, or a fitted :class:`~stockcast.optimization.leadtime.LeadTimeDemand`
            (``copula`` / ``direct`` are fitted on a forecaster's validation forecasts:
            the backtest does it; naming them without a fit raises when planning).
    """

    review_period: float = 1.0
    n_scenarios: int = 256
    seed: int = 0
    budget: float | None = None
    budget_includes_transfers: bool = True
    min_service_level: float | None = None
    network_service_level: float | None = None
    moq: bool = True
    solver: str = "CLARABEL"
    mip_solver: str = "HIGHS"
    solver_options: dict[str, Any] = field(default_factory=dict)
    mip_solver_options: dict[str, Any] = field(default_factory=dict)
    pipeline_holding: bool = True
    lead_time_spread_weight: float = 1.0
    late_loss_share: float = 1.0
    markdowns: tuple[float, ...] = (0.1, 0.2, 0.3)
    price_elasticity: float | None = None
    pricing_scope: str = "excess"
    excess_quantile: float = 0.9
    lateral_scope: str = "surplus"
    cut_levels: str = "adaptive"
    report_levels: tuple[float, ...] = (0.5, 0.9)
    quantity_tol: float = 1e-6
    explain: bool = True
    disruptions: tuple[DisruptionSpec, ...] = ()
    decompose: bool | str = "auto"
    workers: int = 2
    block_size: int = 5_000
    decompose_min_item_locations: int = 50_000
    coordination_rounds: int = 3
    coordination_tol: float = 0.003
    keep_block_problems: bool = True
    lead_time_demand: str | LeadTimeDemand = "independent"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | PlanConfig | None) -> PlanConfig:
        """Build from a plain mapping (nested disruption dicts allowed).

        Raises:
            ValueError: Unknown keys or invalid values.
        """
        if values is None:
            cfg = cls()
        elif isinstance(values, PlanConfig):
            cfg = values
        else:
            values = dict(values)
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - names)
            if unknown:
                raise ValueError(f"unknown PlanConfig keys: {unknown}; known: {sorted(names)}")
            for key in ("markdowns", "report_levels"):
                if key in values and values[key] is not None:
                    values[key] = tuple(float(v) for v in values[key])
            if values.get("disruptions") is not None:
                values["disruptions"] = tuple(
                    d if isinstance(d, DisruptionSpec) else DisruptionSpec(**dict(d))
                    for d in values["disruptions"])
            else:
                values.pop("disruptions", None)
            for key in ("solver_options", "mip_solver_options"):
                if values.get(key) is None:
                    values.pop(key, None)
                else:
                    values[key] = dict(values[key])
            cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.review_period <= 0:
            raise ValueError("PlanConfig.review_period must be > 0")
        if self.n_scenarios < 2:
            raise ValueError("PlanConfig.n_scenarios must be >= 2")
        if self.budget is not None and self.budget < 0:
            raise ValueError("PlanConfig.budget must be >= 0 (or None)")
        for name in ("min_service_level", "network_service_level"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                raise ValueError(f"PlanConfig.{name} must lie in (0, 1)")
        if not 0 < self.excess_quantile < 1:
            raise ValueError("PlanConfig.excess_quantile must lie in (0, 1)")
        if self.lateral_scope not in ("surplus", "all"):
            raise ValueError("PlanConfig.lateral_scope must be 'surplus' or 'all'")
        if self.cut_levels not in ("adaptive", "exact"):
            raise ValueError("PlanConfig.cut_levels must be 'adaptive' or 'exact'")
        if self.pricing_scope not in ("all", "excess"):
            raise ValueError("PlanConfig.pricing_scope must be 'all' or 'excess'")
        modes = ("auto", "true", "false", True, False)
        if self.decompose not in modes and str(self.decompose).lower() not in modes:
            raise ValueError("PlanConfig.decompose must be auto, true or false")
        for name in ("workers", "block_size", "decompose_min_item_locations",
                     "coordination_rounds"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PlanConfig.{name} must be >= 1")
        if self.coordination_tol < 0:
            raise ValueError("PlanConfig.coordination_tol must be >= 0")
        if (not isinstance(self.lead_time_demand, LeadTimeDemand)
                and self.lead_time_demand not in LEAD_TIME_DEMAND):
            raise ValueError(f"PlanConfig.lead_time_demand must be one of "
                             f"{list(LEAD_TIME_DEMAND)}, got {self.lead_time_demand!r}")

    def cost_model(self) -> CostModel:
        """The landed-cost knobs."""
        return CostModel(self.pipeline_holding, self.lead_time_spread_weight,
                         self.late_loss_share)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (for logging)."""
        return asdict(self)


@dataclass
class DisruptionResult:
    """A re-plan under one disruption.

    Attributes:
        label: Description of the disruption.
        cost: Objective increase (expected cost after - before; > 0 = it hurts).
        objective_base: Expected cost of the base plan.
        objective: Expected cost under the disruption.
        changed_sourcing: Orders/transfers whose quantity changed
            (:func:`~stockcast.optimization.decisions.compare_plans`).
        decisions: The full re-planned decisions table.
        summary: KPIs of the re-plan.
        stats: Solver statistics of the re-plan.
        note: What a lead-time change did to the supplier's landed cost and, when it is
            dropped everywhere, why the re-plan equals the outage; ``same plan as ...`` when
            it equals an earlier disruption's re-plan.
    """

    label: str
    cost: float
    objective_base: float
    objective: float
    changed_sourcing: pd.DataFrame
    decisions: pd.DataFrame
    summary: dict[str, Any]
    stats: dict[str, Any]
    note: str = ""


@dataclass
class PlanResult:
    """Output of :func:`plan`.

    Attributes:
        decisions: The decisions table (see :mod:`~stockcast.optimization.decisions`).
        nodes: One row per item-location (and DC stock node): position, target, price,
            expected profit/fill/shortage, reference path, excess flag, binding constraints.
        stats: ``solver``, ``status``, ``solve_time_s`` (solver), ``setup_time_s`` (CVXPY
            build + compile, or parameter refresh when the compiled problem was reused),
            ``n_variables``, ``n_constraints``, ``objective`` (expected cost),
            ``iterations``, ``mip``, ``demand_time_s`` (scenarios + pricing),
            ``plan_time_s`` (without disruption re-plans), ``total_time_s``.
        summary: KPIs (total expected cost/profit, fill rate, counts, spend, binding).
        disruptions: One :class:`DisruptionResult` per configured disruption.
        pricing: The price choice and its per-candidate profits.
    """

    decisions: pd.DataFrame
    nodes: pd.DataFrame
    stats: dict[str, Any]
    summary: dict[str, Any]
    disruptions: list[DisruptionResult]
    pricing: PricingResult


def _protection(net: Network, fa: ForecastArray, cfg: PlanConfig, steps: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> EmpiricalDemand:
    dem = net.nodes.iloc[net.demand_nodes]
    values = fa.values if steps is None else steps
    lead_m, lead_s = dem["ref_lead_mean"].to_numpy(), dem["ref_lead_std"].to_numpy()
    if rows is not None:
        values, lead_m, lead_s = values[rows], lead_m[rows], lead_s[rows]
    return EmpiricalDemand(LeadTimeDemand.of(cfg.lead_time_demand).samples(
        values, fa.levels, review_period=cfg.review_period, lead_mean=lead_m, lead_std=lead_s,
        n_samples=cfg.n_scenarios, seed=cfg.seed))


def _price_grid(fa: ForecastArray, list_price: np.ndarray, cfg: PlanConfig,
                price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None) -> PriceGrid:
    if price_forecasts is not None:
        return table_grid(price_forecasts, fa.keys, list_price, fa.values, fa.levels)
    if cfg.price_elasticity is not None and cfg.markdowns:
        return elasticity_grid(list_price, cfg.markdowns, cfg.price_elasticity)
    return PriceGrid(price=np.asarray(list_price, dtype=float)[:, None])


@dataclass
class Solved:
    """One solve of a prepared plan: the compiled problem, its inputs and the solution."""

    problem: NetworkProblem | None
    levels: np.ndarray
    budget: float | None
    loc_cap: np.ndarray | None
    solution: NetworkSolution
    options: dict[str, Any]


@dataclass
class PreparedPlan:
    """A plan up to its LP: validated inputs, network, demand, prices, critical ratios.

    Made by :func:`prepare`; :meth:`solve` builds (or reuses) and solves the network
    problem, :meth:`result` and :meth:`replans` turn a solve into decisions. A
    decomposed plan (:mod:`~stockcast.optimization.decompose`) keeps one per block of
    items and solves it under the block's share of the budget and storage.
    """

    cfg: PlanConfig
    fa: ForecastArray
    net: Network
    grid: PriceGrid
    pricing: PricingResult
    list_price: np.ndarray
    cr: np.ndarray
    target: np.ndarray
    flags: Flags
    demand_time_s: float
    t_start: float

    @property
    def demand(self) -> EmpiricalDemand:
        return self.pricing.demand

    def _econ(self) -> dict[str, np.ndarray]:
        dem = self.net.nodes.iloc[self.net.demand_nodes]
        out = {c: dem[c].to_numpy(float) for c in ("holding_cost", "shortage_cost",
                                                    "salvage_value", "ref_cost", "ref_cash")}
        out["stock"] = (dem["on_hand"] + dem["in_transit"]).to_numpy(float)
        return out

    def _budget_terms(self) -> dict[str, Any]:
        e = self._econ()
        under = self.pricing.price + e["shortage_cost"]
        return {"demand": self.demand, "under": under,
                "over": under + e["holding_cost"] - e["salvage_value"],
                "ref_cost": e["ref_cost"], "cash_cost": e["ref_cash"], "stock": e["stock"]}

    def closed_form_spend(self, prices: np.ndarray) -> np.ndarray:
        """Cash spend of the closed-form order-up-to plan at each budget price (each node
        buys its own need; transfers left out)."""
        terms = self._budget_terms()
        return np.array([closed_form_spend(lam=float(lam), **terms) for lam in prices])

    def max_budget_price(self) -> float:
        """A budget price at which the closed form orders nothing."""
        t = self._budget_terms()
        return float(np.max((t["under"] - t["ref_cost"]) / np.maximum(t["cash_cost"], 1e-12),
                            initial=0.0)) + 1.0

    def budget_price(self, budget: float | None) -> float | None:
        """The closed form's Lagrange multiplier of ``budget`` (``None`` if it does not bind)."""
        if budget is None:
            return None
        return budget_multiplier(budget=float(budget), **self._budget_terms())

    def closed_form_positions(self, lam: float | None) -> np.ndarray:
        """Closed-form positions (never below the stock) of the demand nodes at ``lam``."""
        t = self._budget_terms()
        ratio = budget_ratio(lam or 0.0, t["under"], t["over"], t["ref_cost"], t["cash_cost"])
        y = np.where(ratio > 0, self.demand.quantile(ratio), 0.0)
        return np.maximum(y, t["stock"])

    def levels(self, lam: float | None) -> np.ndarray:
        """Cut levels, with a bracket at the ratio under budget price ``lam`` (if any)."""
        extra = None
        if lam is not None and lam > 0:
            t = self._budget_terms()
            extra = budget_ratio(lam, t["under"], t["over"], t["ref_cost"], t["cash_cost"])
        cfg = self.cfg
        return cut_levels(self.cr, cfg.n_scenarios,
                          (transfer_ratio(self.net, self.pricing.price, self.cr,
                                          cfg.n_scenarios), extra),
                          exact=cfg.cut_levels == "exact")

    def values(self, net: Network, levels: np.ndarray, budget: float | None,
               loc_cap: np.ndarray | None = None, budget_price: float = 0.0,
               flags: Flags | None = None) -> Values:
        """Parameter values; ``budget_price`` adds that much per unit of spend to the costs
        (the budget's Lagrange multiplier, for price-directive decomposition)."""
        cfg, flags = self.cfg, flags or self.flags
        z = float(special.ndtri(cfg.network_service_level)) if flags.safety_stock else None
        values = node_values(net, self.demand, levels, self.pricing.price, flags,
                             budget=budget, min_service_level=cfg.min_service_level,
                             network_z=z)
        if loc_cap is not None:
            values.loc_cap = np.minimum(values.loc_cap, np.asarray(loc_cap, dtype=float))
        if budget_price:
            values.arc_cost = values.arc_cost + budget_price * net.arcs["cash_cost"].to_numpy(
                float)
            if cfg.budget_includes_transfers:
                values.lane_cost = values.lane_cost + budget_price * net.lanes[
                    "transfer_cost"].to_numpy(float)
        return values

    def solve(self, problems: ProblemCache, levels: np.ndarray, budget: float | None,
              loc_cap: np.ndarray | None = None, budget_price: float = 0.0,
              flags: Flags | None = None) -> Solved:
        """Solve under ``budget`` and storage ``loc_cap`` (default: the locations'), with
        ``budget_price`` per unit of spend added to the costs (the objective includes it).
        ``flags`` replaces the plan's constraint set (a decomposed block's priced solves
        leave the budget row out)."""
        cfg, flags = self.cfg, flags or self.flags
        problem = problems.get(self.net, levels, flags)
        options = cfg.mip_solver_options if problem.is_mip else cfg.solver_options
        sol = solve_network(self.net, levels, flags,
                            self.values(self.net, levels, budget, loc_cap, budget_price, flags),
                            solver=cfg.solver, mip_solver=cfg.mip_solver, options=options,
                            problem=problem)
        return Solved(problem, levels, budget, loc_cap, sol, options)

    def context(self) -> NodeContext:
        cfg = self.cfg
        return NodeContext(self.demand, self.pricing.price, self.list_price, self.cr,
                           self.target, cfg.review_period, self.pricing, cfg.report_levels,
                           cfg.excess_quantile)

    def result(self, solved: Solved) -> PlanResult:
        """Decisions, node report, KPIs and statistics of a solve (no disruptions)."""
        cfg, net, sol = self.cfg, self.net, solved.solution
        report = node_report(net, sol, self.context())
        decisions = _decisions(net, sol, report, self.pricing, self.fa.keys, cfg)
        summary = summarize(net, sol, report, decisions, budget=solved.budget)
        stats = dict(sol.stats)
        stats["demand_time_s"] = self.demand_time_s
        stats["n_scenarios"] = cfg.n_scenarios
        stats["n_item_locations"] = int(len(net.demand_nodes))
        stats["n_price_candidates"] = int(self.grid.n_candidates)
        stats["plan_time_s"] = time.perf_counter() - self.t_start
        return PlanResult(decisions, report, stats, summary, [], self.pricing)

    def replans(self, solved: Solved, specs: Sequence[DisruptionSpec],
                base: PlanResult | None = None) -> list[DisruptionResult]:
        """Re-plan under each disruption with the solve's compiled problem and limits."""
        if not specs:
            return []
        base = base or self.result(solved)
        results = [_replan(self, solved, spec, base.decisions, solved.solution.stats["objective"])
                   for spec in specs]
        _note_equal_plans(results, self.cfg.quantity_tol)
        return results


def _decisions(net: Network, sol: NetworkSolution, report: pd.DataFrame,
               pricing: PricingResult, keys: pd.DataFrame, cfg: PlanConfig) -> pd.DataFrame:
    """The decisions table of a solve, explained unless ``cfg.explain`` is false."""
    decisions = build_decisions(net, sol, report, tol=cfg.quantity_tol, explain=cfg.explain)
    if cfg.explain:
        decisions = add_markdown_evidence(decisions, report, pricing, keys)
    return decisions


def prepare(
    forecast: pd.DataFrame,
    supply: SupplyTables | Mapping[str, pd.DataFrame],
    config: PlanConfig | Mapping[str, Any] | None = None,
    price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    *,
    validated: bool = False,
    networks: NetworkCache | None = None,
) -> PreparedPlan:
    """Steps 1-4 of :func:`plan`: validate, build the network, demand and prices.

    Args:
        validated: ``supply`` is already the output of
            :func:`~stockcast.data.supply.validate_supply` (or a slice of it by item: a
            decomposed plan's block), so it is not validated again.

    Raises:
        DataValidationError: Bad forecast or supply tables.
    """
    t_start = time.perf_counter()
    cfg = PlanConfig.from_dict(config)
    tables = supply if validated and isinstance(supply, SupplyTables) else validate_supply(
        supply)
    fa = forecast_array(forecast)
    build = build_network if networks is None else networks.build
    net = build(fa.keys, tables, cfg.cost_model())
    dem_nodes = net.nodes.iloc[net.demand_nodes]
    h, g, s = (dem_nodes[c].to_numpy(float) for c in ("holding_cost", "shortage_cost",
                                                       "salvage_value"))
    stock = (dem_nodes["on_hand"] + dem_nodes["in_transit"]).to_numpy(float)
    list_price = dem_nodes["price"].to_numpy(float)
    ref_cost = dem_nodes["ref_cost"].to_numpy(float)

    t0 = time.perf_counter()
    base_demand = _protection(net, fa, cfg)
    horizon = EmpiricalDemand(protection_samples(
        fa.values, fa.levels, review_period=float(fa.horizon),
        n_samples=min(cfg.n_scenarios, 128), seed=cfg.seed)).interpolated(cfg.excess_quantile)
    grid = _price_grid(fa, list_price, cfg, price_forecasts)
    candidates = None
    if grid.steps is not None:
        candidates = []
        for j in range(grid.n_candidates):
            rows = np.flatnonzero(np.isfinite(grid.price[:, j]))
            samples = base_demand.samples.copy()
            if len(rows):
                samples[rows] = _protection(net, fa, cfg, grid.steps[j], rows).samples
            candidates.append(EmpiricalDemand(samples))
        base_demand = candidates[0]
    pricing = choose_prices(candidates, grid, unit_cost=ref_cost, holding=h, shortage=g,
                            salvage=s, stock=stock, base_demand=base_demand,
                            horizon_quantile=horizon, scope=cfg.pricing_scope)
    demand_time = time.perf_counter() - t0

    demand, price = pricing.demand, pricing.price
    cr = critical_ratio(price, ref_cost, h, g, s)
    target = newsvendor_quantity(demand, cr)
    if cfg.lateral_scope == "surplus":
        net = keep_lanes(net, surplus_lanes(net, target))
    flags = Flags(budget=cfg.budget is not None,
                  budget_transfers=cfg.budget_includes_transfers,
                  service=cfg.min_service_level is not None,
                  safety_stock=cfg.network_service_level is not None,
                  moq=bool(cfg.moq and (net.arcs["moq"] > 0).any()))
    return PreparedPlan(cfg, fa, net, grid, pricing, list_price, cr, target, flags,
                        demand_time, t_start)


def _replan(prep: PreparedPlan, solved: Solved, spec: DisruptionSpec,
            base_decisions: pd.DataFrame, base_objective: float) -> DisruptionResult:
    """Re-plan under one disruption with the same compiled problem, prices and demand windows.

    Each node keeps its base protection-period demand so the two objectives are comparable:
    the disruption acts through supplier availability/capacity and landed costs (a longer
    or wider lead time raises pipeline/spread holding), not through a longer window. (One
    protection period per item-location, set by its cheapest landed path: lengthening it
    only where a slowed supplier is kept, while an outage's substitutes keep theirs, would
    rate a slowdown above an outage, which it cannot cost: the slowed plan may always drop
    the supplier.) So a slowed supplier whose landed cost comes to exceed the alternative
    everywhere gives the outage's plan; :attr:`DisruptionResult.note` says so.
    """
    cfg, net, ctx, price = prep.cfg, prep.net, prep.context(), prep.pricing.price
    dnet = disrupt(net, spec, cfg.cost_model())
    demand = ctx.demand
    values = prep.values(dnet, solved.levels, solved.budget, solved.loc_cap)
    sol = solve_network(dnet, solved.levels, prep.flags, values, solver=cfg.solver,
                        mip_solver=cfg.mip_solver, options=solved.options,
                        problem=solved.problem)
    dem = dnet.nodes.iloc[dnet.demand_nodes]
    cr = critical_ratio(price, dem["ref_cost"].to_numpy(float), dem["holding_cost"].to_numpy(),
                        dem["shortage_cost"].to_numpy(), dem["salvage_value"].to_numpy())
    dctx = NodeContext(demand, price, ctx.list_price, cr, newsvendor_quantity(demand, cr),
                       cfg.review_period, ctx.pricing, cfg.report_levels, cfg.excess_quantile)
    report = node_report(dnet, sol, dctx)
    decisions = _decisions(dnet, sol, report, ctx.pricing, prep.fa.keys, cfg)
    summary = summarize(dnet, sol, report, decisions, budget=solved.budget)
    objective = sol.stats["objective"]
    return DisruptionResult(spec.label, objective - base_objective, base_objective, objective,
                            compare_plans(base_decisions, decisions, tol=cfg.quantity_tol),
                            decisions, summary, dict(sol.stats),
                            note=_disruption_note(spec, net, dnet, base_decisions, decisions,
                                                  cfg.quantity_tol))


def _supplier_units(decisions: pd.DataFrame, spec: DisruptionSpec) -> float:
    d = decisions[(decisions["action"] == "order") & (decisions["source"] == spec.supplier_id)]
    if spec.items is not None:
        d = d[d["item_id"].isin([str(i) for i in spec.items])]
    return float(d["quantity"].sum())


def _disruption_note(spec: DisruptionSpec, net: Network, dnet: Network, base: pd.DataFrame,
                     after: pd.DataFrame, tol: float) -> str:
    """How a slowed supplier's landed cost moved; why it is dropped when it is."""
    if spec.down or spec.capacity_factor == 0 or spec.lead_time_factor == 1.0:
        return ""
    hit = dnet.arcs["supplier_id"] == spec.supplier_id
    if spec.items is not None:
        hit &= dnet.arcs["item_id"].isin([str(i) for i in spec.items])
    served = base[(base["action"] == "order") & (base["source"] == spec.supplier_id)]
    nodes = dnet.nodes.reset_index().rename(columns={"index": "node"})
    rows = served[NODE_KEYS].drop_duplicates().merge(nodes, on=NODE_KEYS)
    used = hit & dnet.arcs["node"].isin(rows["node"])
    used = used if used.any() else hit
    rise = (dnet.arcs.loc[used, "landed_cost"] - net.arcs.loc[used, "landed_cost"]).mean()
    note = (f"lead time x{spec.lead_time_factor:g} raises {spec.supplier_id}'s landed cost by "
            f"{rise:.4g}/u on average where it supplied (pipeline and spread holding; each "
            "item-location keeps its base protection period)")
    if _supplier_units(base, spec) <= tol or _supplier_units(after, spec) > tol:
        return note
    own = dnet.arcs[hit].groupby("node")["landed_cost"].min()
    examples = [f"{r.item_id}@{r.location_id}: {own[r.node]:.4g}/u vs {r.ref_source} "
                f"{r.ref_cost:.4g}/u" for r in rows.head(3).itertuples(index=False)
                if r.node in own.index]
    return (f"{note}; it now exceeds the alternative's for every item-location it supplied"
            f"{' (' + '; '.join(examples) + ')' if examples else ''}, so the re-plan orders "
            "nothing from it and equals the outage")


def _note_equal_plans(results: list[DisruptionResult], tol: float) -> None:
    """Say so when a re-plan is the same plan as an earlier disruption's."""
    for k, res in enumerate(results):
        for other in results[:k]:
            diff = compare_plans(other.decisions, res.decisions, tol=tol)
            if diff.empty:
                same = f"same plan as '{other.label}'"
                res.note = f"{same}: {res.note}" if res.note else same
                break


#: ``DisruptionSpec.supplier_id`` value meaning "the supplier the base plan relies on most".
AUTO_SUPPLIER = "auto"


def resolve_auto(specs: Sequence[DisruptionSpec], result: PlanResult,
                 suppliers: pd.DataFrame) -> tuple[DisruptionSpec, ...]:
    """Aim ``supplier_id: auto`` disruptions at the plan's :func:`main_supplier`."""
    if not any(d.supplier_id == AUTO_SUPPLIER for d in specs):
        return tuple(specs)
    main = main_supplier(result, suppliers)
    return tuple(replace(d, supplier_id=main) if d.supplier_id == AUTO_SUPPLIER else d
                 for d in specs)


def main_supplier(result: PlanResult, suppliers: pd.DataFrame) -> str:
    """The supplier a plan orders the most units from (else the one with most capacity in
    ``suppliers``: ``supplier_id``, ``capacity`` rows)."""
    orders = result.decisions[result.decisions["action"] == "order"]
    if orders.empty:
        return str(suppliers.groupby("supplier_id")["capacity"].sum().idxmax())
    return str(orders.groupby("source")["quantity"].sum().idxmax())
