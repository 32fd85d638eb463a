"""The network plan decomposed by item and coordinated by prices, on Dask.

**What couples items.** In the network problem (:mod:`~stockcast.optimization.problem`)
an item's nodes, supplier arcs, lanes, supplier capacities (one per supplier x *item*),
MOQs, service floors and network safety stock involve that item only. Two constraint
groups span items: the **budget** (one row over all spend) and **location capacity**
(storage at a location, all items together). Everything else is block-diagonal by item.

**Blocks.** Items are dealt into blocks of about ``block_size`` item-locations (whole
items, balanced by size). Each block is a :class:`BlockPlanner` held by a Dask actor on a
worker: it builds its network, protection-period demand and prices once
(:func:`~stockcast.optimization.planning.prepare`, on tables validated once by the
coordinator) and keeps its compiled CVXPY problems, so every later solve only changes
parameter values. A block's priced solves leave the budget row out, and its storage rows
are added only once a solve without them would exceed its storage shares (exact: a
solution that keeps within rows it was not given is optimal with them): without these
rows that span items the block's problem separates by item and solves about 1.5x faster.
Blocks of 5,000 item-locations (the default) planned 30,000 item-locations in 15 s of
CPU against 19 s for blocks of 2,000 (fewer per-block builds and compilations).

**Budget (price-directive, with a feasible primal recovery).**

0. *Probes* (not rounds): one or two blocks per worker are solved at a trial budget price
   (no budget row); their spend, scaled up by the ratio of all blocks' to the probed
   blocks' *pooled closed-form* spend (each item's closed-form needs net of the stock its
   DCs and surplus item-locations can move, :meth:`BlockPlanner.pooled_spend_curve`),
   estimates the total spend at that price. Up to three trial prices (the pooled curves'
   price, then log-linear steps) aim at just under the budget.
1. *Priced rounds*: every block solves with that price ``lam`` per unit of spend added to
   its costs and no budget row (the Lagrangian relaxation of the budget, whose value
   ``sum_k obj_k(lam) - lam * budget`` is a lower bound, ``lagrangian_bound``). A priced
   round within the budget whose duality gap ``lam * (budget - spend)`` is within
   ``coordination_tol`` of its expected cost is kept (the gap bounds how far it is from
   the optimum of the blocks' problems). One whose spend is within
   :data:`RECOVERY_BAND` of the budget goes to the recovery; else (rounds permitting) the
   next price: after one priced round, where every block's pooled closed-form curve,
   rescaled through its spend in that round, adds up to the budget (the probes' estimate
   of 10 % of the blocks is good to 10-20 %; this one was 0.1-0.4 % off at 100,000
   item-locations); after more, log-linear between the totals on either side.
2. *Mixture*: where two priced rounds bracket the budget (one under, one over) and no
   block has MOQs, every block's two solutions are mixed with one weight ``w`` that makes
   the total spend the budget (:meth:`BlockPlanner.mix`). The blocks' problems are LPs,
   so the mixture is feasible (under the same mixture of storage shares), spends exactly
   the budget, and costs the same mixture of the two rounds' costs, without a solve. It
   is kept when within ``coordination_tol`` of the Lagrangian bound; else the recovery
   runs, and the best of both is kept. At 100,000 item-locations under a binding budget
   it cut the plan from 37-45 s to 28 s (0.12 % above the single LP, against 0.10 % for
   the recovery): the recovery compiles every block's budget-row problem.
3. *Recovery*: each block gets its own budget row, feasible by construction: its spends
   interpolated between the two priced rounds nearest the budget on either side (where
   their totals meet it), else its spend in the priced round nearest the budget scaled to
   it.
4. *Correction* (while rounds remain): the blocks' budget duals should be equal; each
   block's spend is taken as linear in its price through its last two points, and the
   shares move to where those lines meet the budget at one price
   (:meth:`_Coordinator._corrected_shares`). The best feasible round is kept.

``coordination_rounds`` (default 3) bounds the rounds (the probes excluded): at most
``coordination_rounds - 1`` priced rounds, then the mixture or the recovery (a mixture
is not a round: it solves nothing); ``1`` is a single round of
closed-form shares under budget rows. Measured on the synthetic networks of
``benchmarks/plan_scale.py``: 10,000 item-locations in 1-2 rounds, 0.001-0.02 % above the
single LP; 30,000 in 2-3 rounds, 0.01-0.06 % above; 100,000 in 3 rounds, 0.04 % above
(budget not binding); where it binds 0.63 % above before the rescaled-curve price, the
duality-gap rule and the corrections, 0.10-0.39 % after them, 0.12 % with the mixture
in 28 s (``docs/cluster.md``). A
round costs about 0.45 s per 5,000-item-location block; a recovery round also compiles
each block's budget-row problem (about twice a plain round's wall time).

**Storage (resource-directive, approximate).** Each location's capacity is shared out
as each block's current stock there (when the location can hold all of it; else what no
lane can move) plus a slice of the rest in proportion to what its unconstrained
closed-form positions would add. Between rounds, storage moves toward the blocks whose
storage duals are positive (:func:`rebalance_storage`). Every block respects its shares,
so the plan respects every location's capacity; but when storage binds in many blocks the
shares are only as good as these rules: measured a few per cent above the single LP on
a small test network whose stores are full, where the budget coordination alone is within
0.02 %. ``stats["storage_binding_blocks"]`` counts the blocks whose storage binds.

MIP blocks (MOQs) have no duals (storage is not rebalanced for them); the budget rounds
need none. Disruptions are re-planned in each block under its final shares, with every
row of the plan (budget share, storage shares).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stockcast.data.supply import SupplyTables, validate_supply
from stockcast.optimization.cuts import budget_ratio
from stockcast.optimization.distribution import EmpiricalDemand, forecast_array
from stockcast.optimization.network import DisruptionSpec
from stockcast.optimization.planning import (
    DisruptionResult,
    PlanConfig,
    PlanResult,
    PreparedPlan,
    Solved,
    prepare,
    resolve_auto,
)
from stockcast.optimization.pricing import PricingResult
from stockcast.optimization.problem import NetworkSolution, ProblemCache

#: A priced round whose total spend lies within this fraction of the budget goes straight
#: to the recovery round (measured: from 1.6 % / 5.7 % / 14 % off the budget, the recovered
#: plan was 0.001 % / 0.06 % / 0.85 % above the single LP); farther off, another priced round
#: comes first.
RECOVERY_BAND = 0.06

#: How far inside their bracket the probes' and the priced rounds' price steps stay
#: (``_log_step``'s ``keep``: a fraction of the bracket's width in log price).
BRACKET_KEEP = 0.2

#: Most probes (trial prices) before the first priced round.
PROBES = 6

#: The probes stop once their estimate of the total spend is this close to the aim (the
#: probed blocks are a sample: their estimate is good to several per cent).
PROBE_TOL = 0.03

#: The first priced round is the free plan (price 0) when the probes estimate its spend at
#: most this fraction above the budget (their estimate was 10 % high on a small network).
FREE_TRY = 0.1

#: The correction rounds stop once the blocks' budget duals agree within this fraction of
#: their mean (equal duals: the budget's split is optimal).
DUAL_TOL = 0.01

#: Items the probe blocks should hold together (the probes' sample).
PROBE_ITEMS = 40

#: ``PlanConfig.decompose`` values.
DECOMPOSE_MODES = ("auto", "true", "false")


def decompose_mode(value: bool | str | None) -> str:
    """Normalize ``decompose`` (YAML gives booleans for true/false).

    Raises:
        ValueError: Naming ``optimizer.values.decompose``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    mode = "auto" if value is None else str(value).lower()
    if mode not in DECOMPOSE_MODES:
        raise ValueError(f"optimizer.values.decompose must be one of {DECOMPOSE_MODES}, "
                         f"got {value!r}")
    return mode


def should_decompose(cfg: PlanConfig, n_item_locations: int, n_items: int) -> bool:
    """``true``; or ``auto`` with at least ``decompose_min_item_locations`` and 2 items."""
    mode = decompose_mode(cfg.decompose)
    if mode == "false" or n_items < 2:
        return False
    return mode == "true" or n_item_locations >= cfg.decompose_min_item_locations


def item_blocks(forecast: pd.DataFrame, block_size: int, min_blocks: int = 1) -> list[list[str]]:
    """Items dealt into blocks of about ``block_size`` item-locations (largest first)."""
    sizes = forecast[["item_id", "location_id"]].astype(str).drop_duplicates()
    sizes = sizes.groupby("item_id").size().sort_values(ascending=False, kind="stable")
    n_blocks = max(min_blocks, int(np.ceil(sizes.sum() / max(1, block_size))))
    n_blocks = max(1, min(n_blocks, len(sizes)))
    load = np.zeros(n_blocks)
    blocks: list[list[str]] = [[] for _ in range(n_blocks)]
    for item, size in sizes.items():
        k = int(np.argmin(load))
        blocks[k].append(str(item))
        load[k] += size
    return [b for b in blocks if b]


def block_tables(forecast: pd.DataFrame, supply: SupplyTables,
                 price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None,
                 items: Sequence[str]) -> tuple[pd.DataFrame, SupplyTables, Any]:
    """The forecast, supply tables and price forecasts of some items (all locations, lanes)."""
    return split_tables(forecast, supply, price_forecasts, [items])[0]


def split_tables(forecast: pd.DataFrame, supply: SupplyTables,
                 price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None,
                 blocks: Sequence[Sequence[str]]) -> list[tuple[pd.DataFrame, SupplyTables, Any]]:
    """:func:`block_tables` of every block, each table grouped by item once."""

    def splitter(df: pd.DataFrame):
        rows = df.groupby(df["item_id"].astype(str).to_numpy(), sort=False).indices
        empty = np.array([], dtype=int)

        def of(items: Sequence[str]) -> pd.DataFrame:
            idx = np.sort(np.concatenate([rows.get(str(i), empty) for i in items] or [empty]))
            return df.iloc[idx].reset_index(drop=True)
        return of

    fc_of, econ_of, sup_of = (splitter(t) for t in (forecast, supply.economics,
                                                     supply.suppliers))
    price_of = None
    if price_forecasts is not None:
        price_of = (splitter(price_forecasts) if isinstance(price_forecasts, pd.DataFrame)
                    else [splitter(t) for t in price_forecasts])
    out = []
    for items in blocks:
        prices = None
        if price_of is not None:
            prices = price_of(items) if callable(price_of) else [f(items) for f in price_of]
        tables = SupplyTables(supply.locations, econ_of(items), sup_of(items), supply.lanes)
        out.append((fc_of(items), tables, prices))
    return out


@dataclass
class BlockOutcome:
    """What a block's solve tells the coordinator."""

    objective: float
    spend: float
    budget_dual: float | None
    loc_use: np.ndarray
    loc_dual: np.ndarray | None
    solve_time_s: float
    setup_time_s: float
    status: str
    mip: bool


class BlockPlanner:
    """One block of items: prepared once, solved under shares, reported at the end.

    Meant to live in a Dask actor (:func:`plan_decomposed`); plain Python otherwise.

    Args:
        forecast, supply, price_forecasts: The block's tables (:func:`block_tables`).
        config: The plan's configuration (``budget`` is replaced by the block's share).
    """

    def __init__(self, forecast: pd.DataFrame, supply: SupplyTables, config: PlanConfig,
                 price_forecasts: Any = None) -> None:
        self.cfg = replace(config, disruptions=())
        self.prep: PreparedPlan = prepare(forecast, supply, self.cfg, price_forecasts,
                                          validated=True)
        self.problems = ProblemCache(4)
        self._storage_rows = False
        self.levels: np.ndarray | None = None
        self.solved: Solved | None = None
        self.history: list[Solved] = []
        self._committed = self._committed_stock()

    def _committed_stock(self) -> np.ndarray:
        net = self.prep.net
        nodes = net.nodes
        movable = np.zeros(net.n_nodes, bool)
        movable[net.lanes["from_node"].to_numpy()] = True
        committed = nodes["in_transit"].to_numpy() + np.where(
            movable, 0.0, nodes["on_hand"].to_numpy())
        return np.bincount(nodes["loc"].to_numpy(), weights=committed,
                           minlength=len(net.locations))

    def max_budget_price(self) -> float:
        return self.prep.max_budget_price()

    def is_mip(self) -> bool:
        """Whether the block's problem has MOQ binaries (no duals)."""
        return bool(self.prep.flags.moq)

    def spend_curve(self, prices: np.ndarray) -> np.ndarray:
        """Closed-form cash spend at each budget price."""
        return self.prep.closed_form_spend(np.asarray(prices, dtype=float))

    def pooled_spend_curve(self, prices: np.ndarray) -> np.ndarray:
        """Spend at each budget price of the closed form pooled per item: each item-location
        wants its closed-form position; what the item's DCs hold and its item-locations hold
        above their positions (where a lane leaves them) is moved at the lanes' mean transfer
        cost, the rest is bought at the item-locations' cash costs."""
        prep, net = self.prep, self.prep.net
        nodes, dem = net.nodes, net.demand_nodes
        n_items = len(net.items)
        item = nodes["item"].to_numpy()
        on_hand = nodes["on_hand"].to_numpy(float)
        stock = on_hand + nodes["in_transit"].to_numpy(float)
        movable = np.zeros(net.n_nodes, bool)
        movable[net.lanes["from_node"].to_numpy()] = True
        is_dem = np.zeros(net.n_nodes, bool)
        is_dem[dem] = True
        dc_stock = np.bincount(item, weights=np.where(~is_dem & movable, on_hand, 0.0),
                               minlength=n_items)
        t = prep._budget_terms()
        cash = t["cash_cost"]
        move_cost = float(net.lanes["transfer_cost"].mean()) if len(net.lanes) else 0.0
        if not self.cfg.budget_includes_transfers:
            move_cost = 0.0
        lam = np.asarray(prices, dtype=float)[:, None]
        ratio = budget_ratio(lam, t["under"], t["over"], t["ref_cost"], cash)  # (P, N)
        d = prep.demand
        idx = np.clip(np.ceil(ratio * d.n - 1e-9).astype(int) - 1, 0, d.n - 1)
        y = np.where(ratio > 0, np.take_along_axis(d.samples, idx.T, axis=1).T, 0.0)
        y = np.maximum(y, t["stock"])  # never below the stock (closed_form_positions)
        s_dem, oh_dem, it_dem = stock[dem], on_hand[dem], item[dem]
        need = np.maximum(y - s_dem, 0.0)
        spare = np.where(movable[dem], np.minimum(np.maximum(s_dem - y, 0.0), oh_dem), 0.0)
        onehot = sp.csc_matrix((np.ones(len(dem)), (np.arange(len(dem)), it_dem)),
                               shape=(len(dem), n_items))
        want, avail = (onehot.T @ need.T).T, dc_stock + (onehot.T @ spare.T).T
        moved = np.minimum(want, avail)
        cash_need = (onehot.T @ (need * cash).T).T
        bought = np.where(want > 0, cash_need * (want - moved) / np.maximum(want, 1e-300), 0.0)
        return bought.sum(axis=1) + move_cost * moved.sum(axis=1)

    def storage_request(self, lam: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(committed, held, wanted)`` stock per location: what no lane can move, what is
        there now, and the closed-form positions at budget price ``lam``."""
        net = self.prep.net
        loc, n_locs = net.nodes["loc"].to_numpy(), len(net.locations)
        base = (net.nodes["on_hand"] + net.nodes["in_transit"]).to_numpy(float)
        held = np.bincount(loc, weights=base, minlength=n_locs)
        y = base.copy()
        y[net.demand_nodes] = self.prep.closed_form_positions(lam)
        wanted = np.bincount(loc, weights=y, minlength=n_locs)
        return self._committed, held, np.maximum(wanted, held)

    def solve(self, lam: float | None, budget: float | None, loc_cap: np.ndarray,
              price: float = 0.0, record: bool = True) -> BlockOutcome:
        """Solve under a budget share (``None``: none) and storage shares, with ``price``
        per unit of spend added to the costs. Cut levels are fixed at the first call (with
        a bracket at the closed-form ratio under ``lam``). The reported objective is the
        expected cost without the price term. ``record=False``: a probe, not kept as a
        round (:meth:`select` indexes the recorded solves)."""
        if self.levels is None:
            self.levels = self.prep.levels(lam)
        prep, net = self.prep, self.prep.net
        # a priced solve has no budget row; storage rows are added once they are needed
        flags = replace(prep.flags, budget=prep.flags.budget and budget is not None,
                        location_capacity=self._storage_rows)
        solved = prep.solve(self.problems, self.levels, budget, loc_cap, price, flags)
        if not self._storage_rows:
            use = np.bincount(net.nodes["loc"].to_numpy(), weights=solved.solution.position,
                              minlength=len(net.locations))
            cap = net.locations["capacity"].to_numpy(float)
            if loc_cap is not None:
                cap = np.minimum(cap, np.asarray(loc_cap, dtype=float))
            if np.any(use > cap * (1 + 1e-7) + 1e-6):
                self._storage_rows = True
                flags = replace(flags, location_capacity=True)
                solved = prep.solve(self.problems, self.levels, budget, loc_cap, price, flags)
        sol = solved.solution
        spend = self._spend(sol)
        sol.stats["objective"] -= price * spend
        if not self.cfg.keep_block_problems:
            self.problems.clear()
            solved = replace(solved, problem=None)
        if record:
            self.history.append(solved)
            self.solved = solved
        dual = sol.duals.get("location_capacity")
        if not flags.location_capacity and not sol.stats.get("mip"):
            dual = np.zeros(len(net.locations))  # no storage row binds (checked above)
        return self._outcome(sol, spend, sol.duals.get("budget"), dual)

    def _spend(self, sol: NetworkSolution) -> float:
        """Cash a solution spends (orders, and transfers where the budget counts them)."""
        net = self.prep.net
        spend = float(net.arcs["cash_cost"].to_numpy() @ sol.order)
        if self.cfg.budget_includes_transfers:
            spend += float(net.lanes["transfer_cost"].to_numpy() @ sol.transfer)
        return spend

    def _outcome(self, sol: NetworkSolution, spend: float, budget_dual: float | None,
                 loc_dual: np.ndarray | None) -> BlockOutcome:
        net = self.prep.net
        loc_use = np.bincount(net.nodes["loc"].to_numpy(), weights=sol.position,
                              minlength=len(net.locations))
        st = sol.stats
        return BlockOutcome(float(st["objective"]), spend, budget_dual, loc_use,
                            None if loc_dual is None else np.maximum(loc_dual, 0.0),
                            float(st["solve_time_s"]), float(st["setup_time_s"]),
                            str(st["status"]), bool(st.get("mip")))

    def mix(self, lo: int, hi: int, w: float, price: float) -> BlockOutcome:
        """Record ``(1 - w) x`` solve ``lo`` ``+ w x`` solve ``hi`` as a solve of its own.

        The block's problem is a linear program (no MOQs): a convex combination of two of
        its solutions (every variable, the cost epigraphs included) is feasible under the
        same combination of their storage shares, spends the same combination, and its
        objective is the same combination of theirs. A constraint binds at the mixture
        where it binds at both. ``price`` is reported as its budget dual (the budget price
        at which both solves are near-optimal lies between theirs)."""
        a, b = self.history[lo], self.history[hi]
        sa, sb = a.solution, b.solution

        def lin(u: Any, v: Any) -> Any:
            if u is None or v is None:
                return None
            return (1.0 - w) * np.asarray(u, dtype=float) + w * np.asarray(v, dtype=float)

        binding: dict[str, Any] = {}
        for key, value in sb.binding.items():
            other = sa.binding.get(key)
            if isinstance(value, np.ndarray) and isinstance(other, np.ndarray):
                binding[key] = value & other
        zero = np.zeros(len(self.prep.net.locations))
        duals = {k: lin(sa.duals.get(k, zero), sb.duals.get(k, zero))
                 for k in ("location_capacity",) if k in sa.duals or k in sb.duals}
        duals["budget"] = float(price)
        stats = dict(sb.stats)
        stats.update(objective=lin(sa.stats["objective"], sb.stats["objective"]).item(),
                     solve_time_s=0.0, setup_time_s=0.0, compiled_now=False, mixed=float(w))
        sol = NetworkSolution(lin(sa.order, sb.order), lin(sa.transfer, sb.transfer),
                              lin(sa.position, sb.position), stats, binding, duals)
        spend = self._spend(sol)
        binding["budget"], binding["spend"] = True, spend
        solved = Solved(None, b.levels, spend, lin(a.loc_cap, b.loc_cap), sol, dict(b.options))
        self.history.append(solved)
        self.solved = solved
        return self._outcome(sol, spend, float(price), duals.get("location_capacity", zero))

    def select(self, index: int, budget: float | None) -> None:
        """Keep solve ``index`` as the block's plan; ``budget`` is its share for re-plans."""
        self.solved = replace(self.history[index], budget=budget)

    def result(self, atoms: int = 16) -> PlanResult:
        """The block's plan from its selected solve (no disruptions).

        Its ``pricing.demand`` keeps ``atoms`` equally spaced atoms of each node's sorted
        demand samples (a summary: the full samples stay on the worker), so that gathering
        a large plan does not copy every scenario.
        """
        res = self.prep.result(self.solved)
        samples = res.pricing.demand.samples
        if atoms and samples.shape[1] > atoms:
            idx = ((np.arange(atoms) + 0.5) / atoms * samples.shape[1]).astype(int)
            res.pricing = replace(res.pricing, demand=EmpiricalDemand(samples[:, idx]))
        return res

    def replans(self, specs: Sequence[DisruptionSpec],
                base_decisions: pd.DataFrame) -> list[DisruptionResult]:
        """The block's re-plans under its last shares (specs naming none of its items skip)."""
        groups = self.prep.net.groups
        out = []
        for spec in specs:
            hit = groups["supplier_id"] == spec.supplier_id
            if spec.items is not None:
                hit &= groups["item_id"].isin([str(i) for i in spec.items])
            if not hit.any():
                out.append(None)
                continue
            if self.solved.problem is None or self.solved.problem.flags != self.prep.flags:
                # dropped to save memory, or a priced / storage-free solve: the re-plan has
                # every row of the plan (its budget share, its storage shares)
                self.solved = replace(self.solved, problem=self.problems.get(
                    self.prep.net, self.solved.levels, self.prep.flags))
            base = PlanResult(base_decisions, pd.DataFrame(), {}, {}, [], self.prep.pricing)
            out.append(self.prep.replans(self.solved, [spec], base)[0])
        return out


# --------------------------------------------------------------------------------------
# coordination
# --------------------------------------------------------------------------------------


def _interp(curve: np.ndarray, prices: np.ndarray, lam: float) -> float:
    return float(np.interp(lam, prices, curve))


def _curves_at(curves: np.ndarray, prices: np.ndarray, lam: float) -> np.ndarray:
    """Each block's curve (a row of ``curves`` over ``prices``) at price ``lam``."""
    return np.array([_interp(c, prices, lam) for c in curves])


def _price_for(total: np.ndarray, prices: np.ndarray, budget: float) -> float:
    """Smallest price on the (decreasing) total curve at which it meets ``budget``."""
    if total[0] <= budget:
        return 0.0
    k = int(np.argmax(total <= budget)) if np.any(total <= budget) else len(prices) - 1
    lo, hi = prices[k - 1], prices[k]
    t_lo, t_hi = total[k - 1], total[k]
    if t_lo == t_hi:
        return float(hi)
    return float(lo + (t_lo - budget) / (t_lo - t_hi) * (hi - lo))


def budget_shares(curves: np.ndarray, prices: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    """The budget's price on the closed-form curves and each block's share of the budget."""
    total = curves.sum(axis=0)
    lam = _price_for(total, prices, budget)
    at = _curves_at(curves, prices, lam)
    if at.sum() <= 0:
        return lam, np.full(len(curves), budget / len(curves))
    return lam, at * budget / at.sum()


def storage_shares(capacity: np.ndarray, committed: np.ndarray,
                   wanted: np.ndarray) -> np.ndarray:
    """Per block x location storage: the ``committed`` floor plus a slice of the rest of
    the capacity in proportion to what each block wants above its floor."""
    extra = np.maximum(wanted - committed, 0.0)
    slack = capacity - committed.sum(axis=0)
    weight = np.where(extra.sum(axis=0) > 0, extra / np.maximum(extra.sum(axis=0), 1e-300),
                      1.0 / len(committed))
    return committed + np.maximum(slack, 0.0) * weight


def rebalance_storage(shares: np.ndarray, use: np.ndarray, duals: np.ndarray,
                      capacity: np.ndarray, floor: np.ndarray | None = None,
                      step: float = 0.1) -> np.ndarray:
    """Move storage toward the blocks that value it most where it binds.

    At each location where some block's storage dual is positive: blocks with no dual give
    up their unused share; blocks whose dual is below the location's share-weighted mean
    give up ``step x (mean - dual) / mean`` of their share (never below ``floor``); the
    pool goes to the blocks above the mean in proportion to ``(dual - mean) x share``.
    """
    out = shares.copy()
    floor = np.zeros_like(shares) if floor is None else floor
    for loc in np.flatnonzero((duals > 1e-9).any(axis=0)):
        s, u, mu = shares[:, loc], use[:, loc], duals[:, loc]
        mean = float(np.average(mu, weights=np.maximum(s, 1e-12)))
        give = np.where(mu <= 1e-9, np.maximum(s - u, 0.0), 0.0)
        below = (mu > 1e-9) & (mu < mean)
        give[below] += np.minimum(step * (mean - mu[below]) / mean, step) * s[below]
        give = np.minimum(give, np.maximum(s - floor[:, loc], 0.0))
        weight = np.where(mu > mean, (mu - mean) * np.maximum(s, 1e-12), 0.0)
        if give.sum() <= 0 or weight.sum() <= 0:
            continue
        out[:, loc] = s - give + give.sum() * weight / weight.sum()
    return np.minimum(out, capacity[None, :])


def _log_slope(points: Sequence[tuple[float, float]]) -> float:
    """``d log(spend) / d log(price)`` through the extreme points (-0.5 when unknown),
    clipped to [-3, -0.05] (spend falls with the price)."""
    pts = sorted(p for p in points if p[0] > 0 and p[1] > 0)
    slope = -0.5
    if len(pts) >= 2 and pts[0][0] != pts[-1][0] and pts[0][1] != pts[-1][1]:
        (la, sa), (lb, sb) = pts[0], pts[-1]
        slope = (np.log(sb) - np.log(sa)) / (np.log(lb) - np.log(la))
    return float(np.clip(slope, -3.0, -0.05))


def _log_step(points: Sequence[tuple[float, float]], aim: float,
              slope: float | None = None, keep: float = 0.0) -> float:
    """The price at which spend should meet ``aim``: log-linear between the nearest
    (price, spend) points on each side of it, else along ``slope`` (default
    :func:`_log_slope` of the points) from the point nearest to it. Between points, the
    step stays at least ``keep`` of the bracket's width (in log price) from either end, so
    that a spend curve far from log-linear still has its bracket shrink."""
    pts = sorted(p for p in points if p[0] > 0)
    below = [p for p in pts if p[1] < aim]  # high prices
    above = [p for p in pts if p[1] >= aim]
    if below and above:
        (l0, s0), (l1, s1) = max(above), min(below)
        if s0 == s1:
            return float(np.sqrt(l0 * l1))
        w = float(np.clip((s0 - aim) / (s0 - s1), keep, 1.0 - keep))
        return float(np.exp(np.log(l0) + w * (np.log(l1) - np.log(l0))))
    lam, spend = min(pts, key=lambda p: abs(np.log(max(p[1], 1e-300) / aim)))
    slope = _log_slope(pts) if slope is None else slope
    return float(lam * (aim / max(spend, 1e-300)) ** (1.0 / slope))


def _n_probes(blocks: Sequence[Sequence[str]], n_workers: int,
              cover: int = PROBE_ITEMS) -> int:
    """Probe blocks: one or two per worker, enough to hold about ``cover`` items, at most
    half of the blocks (and at least one)."""
    per_block = max(1.0, float(np.mean([len(b) for b in blocks])))
    per_worker = int(np.clip(np.ceil(cover / (per_block * n_workers)), 1, 2))
    return max(1, min(per_worker * n_workers, len(blocks) // 2))


def _budget_duals(ev: dict) -> np.ndarray:
    """Each block's budget dual in round ``ev`` (NaN where it has none: MOQs)."""
    return np.array([np.nan if o.budget_dual is None else o.budget_dual
                     for o in ev["outcomes"]], dtype=float)


def _gather(futures: list) -> list:
    return [f.result() for f in futures]


def plan_decomposed(
    forecast: pd.DataFrame,
    supply: SupplyTables | Mapping[str, pd.DataFrame],
    config: PlanConfig | Mapping[str, Any] | None = None,
    price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    *,
    client: Any = None,
) -> PlanResult:
    """The network plan solved per block of items on Dask (module docstring).

    Args:
        forecast, supply, config, price_forecasts: As for
            :func:`~stockcast.optimization.plan.plan`.
        client: A ``distributed.Client``; ``None`` starts a ``LocalCluster`` of
            ``config.workers`` processes (one thread each) for this call.

    Returns:
        :class:`~stockcast.optimization.plan.PlanResult` whose tables are the blocks'
        tables concatenated, KPIs summed over blocks, ``stats`` with ``decomposed``,
        ``n_blocks``, ``rounds`` (coordination log), ``lagrangian_bound`` and timings, and
        ``pricing.demand`` a 16-atom summary of each node's demand
        (:meth:`BlockPlanner.result`).
    """
    t_start = time.perf_counter()
    cfg = PlanConfig.from_dict(config)
    tables = validate_supply(supply)
    forecast_array(forecast)  # validate once here, with the whole table's row numbers
    own = client is None
    cluster = None
    if own:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        return _coordinate(forecast, tables, cfg, price_forecasts, client, t_start)
    finally:
        if own:
            client.close()
            cluster.close()


def _coordinate(forecast: pd.DataFrame, tables: SupplyTables, cfg: PlanConfig,
                price_forecasts: Any, client: Any, t_start: float) -> PlanResult:
    workers = sorted(client.scheduler_info()["workers"])
    blocks = item_blocks(forecast, cfg.block_size, min_blocks=len(workers))
    futures = []
    for k, (fc, sup, prices) in enumerate(split_tables(forecast, tables, price_forecasts,
                                                        blocks)):
        futures.append(client.submit(BlockPlanner, fc, sup, cfg, prices, actor=True,
                                     workers=[workers[k % len(workers)]], pure=False))
    actors = [f.result() for f in futures]
    t_prepared = time.perf_counter()
    coord = _Coordinator(actors, cfg, tables.locations["capacity"].to_numpy(float),
                         n_pilot=_n_probes(blocks, len(workers)))
    coord.run()
    t_solved = time.perf_counter()

    parts: list[PlanResult] = _gather([a.result() for a in actors])
    result = _combine(parts, coord.outcomes, cfg, tables, coord.shares, coord.lam0)
    specs = resolve_auto(cfg.disruptions, result, tables.suppliers)
    if specs:
        per_block = _gather([a.replans(specs, p.decisions)
                             for a, p in zip(actors, parts, strict=True)])
        result.disruptions = [
            _combine_disruption(spec, [b[i] for b in per_block], parts)
            for i, spec in enumerate(specs)]
    end = time.perf_counter()
    result.stats.update({
        "decomposed": True, "n_blocks": len(actors), "n_workers": len(workers),
        "rounds": coord.log, "n_rounds": sum("mixed" not in r for r in coord.log), "budget_price": coord.price,
        "storage_binding_blocks": int(sum(
            o.loc_dual is not None and bool(np.any(o.loc_dual > 1e-9))
            for o in coord.outcomes)),
        # the solver's time in every round (a mixture of two rounds solves nothing)
        "solve_time_s": float(sum(e["solve_time_s"] for e in coord.evals)),
        "closed_form_budget_price": coord.lam0, "lagrangian_bound": coord.bound,
        "probes": (coord.pilot or {}).get("probes"), **coord.timing,
        "prepare_time_s": t_prepared - t_start, "coordinate_time_s": t_solved - t_prepared,
        "plan_time_s": (end if not specs else t_solved) - t_start,
        "total_time_s": end - t_start})
    return result


class _Coordinator:
    """The rounds of a decomposed plan (module docstring)."""

    def __init__(self, actors: list, cfg: PlanConfig, capacity: np.ndarray,
                 n_pilot: int = 1) -> None:
        self.actors, self.cfg, self.capacity = actors, cfg, capacity
        self.n_pilot = n_pilot
        self.pilot: dict[str, Any] | None = None
        self.lam_curve = 1e-12
        self.log: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []  # one per round: price, spend, objective
        self.outcomes: list[BlockOutcome] = []
        self.shares: np.ndarray | None = None
        self.lam0: float | None = None
        self.price: float | None = None
        self.bound: float | None = None
        self.floor: np.ndarray | None = None
        self.timing: dict[str, float] = {}

    def _round(self, price: float, budgets: list | None, storage: np.ndarray) -> dict:
        budgets = budgets or [None] * len(self.actors)
        t0 = time.perf_counter()
        outcomes = _gather([a.solve(self.lam0, b, storage[k], price)
                            for k, (a, b) in enumerate(zip(self.actors, budgets, strict=True))])
        spend = np.array([o.spend for o in outcomes])
        objective = float(sum(o.objective for o in outcomes))
        ev = {"round": len(self.evals), "price": price, "spend": float(spend.sum()),
              "objective": objective, "outcomes": outcomes, "block_spend": spend,
              "storage": storage, "budgets": budgets,
              "solve_time_s": float(sum(o.solve_time_s for o in outcomes)),
              "wall_s": time.perf_counter() - t0}
        if self.cfg.budget is not None and budgets[0] is None:
            # price-directive round: the Lagrangian dual value bounds the optimum from below
            ev["lagrangian"] = objective + price * (ev["spend"] - float(self.cfg.budget))
        return self._record(ev)

    def _record(self, ev: dict) -> dict:
        """Keep a round (``ev["round"]`` indexes every block's history) and its log line."""
        self.evals.append(ev)
        self.log.append({k: v for k, v in ev.items() if k not in (
            "outcomes", "block_spend", "storage", "budgets", "shares")})
        return ev

    def run(self) -> None:
        cfg, actors = self.cfg, self.actors
        t0 = time.perf_counter()
        curves = prices = None
        if cfg.budget is not None:
            top = max(_gather([a.max_budget_price() for a in actors]))
            prices = np.concatenate([[0.0], np.geomspace(top * 1e-6, top, 160)])
            # the closed form's budget price places the blocks' cut levels (as in one LP);
            # the closed form pooled per item (it moves surplus) models their spend
            curves = np.array(_gather([a.spend_curve(prices) for a in actors]))
            self.lam0, _ = budget_shares(curves, prices, float(cfg.budget))
            curves = np.array(_gather([a.pooled_spend_curve(prices) for a in actors]))
        # storage by the unconstrained closed-form positions (the most any price asks for)
        requests = _gather([a.storage_request(None) for a in actors])
        committed, held, wanted = (np.array([r[i] for r in requests]) for i in range(3))
        # every block may keep the stock it holds where the locations can hold it all (a
        # feasible start: nothing moves); else only what no lane can move
        fits = held.sum(axis=0) <= self.capacity * (1 + 1e-9)
        self.floor = np.where(fits, held, committed)
        storage = storage_shares(self.capacity, self.floor, wanted)
        self.timing["curves_s"] = time.perf_counter() - t0
        if cfg.budget is None:
            self._storage_rounds(storage)
            return
        self._budget_rounds(storage, curves, prices)

    def _storage_step(self, ev: dict, storage: np.ndarray) -> np.ndarray:
        """Storage for the next round: the same, or moved to where it binds."""
        duals = [o.loc_dual for o in ev["outcomes"]]
        if any(d is None for d in duals) or not np.any(np.array(duals) > 1e-9):
            return storage
        use = np.array([o.loc_use for o in ev["outcomes"]])
        moved = rebalance_storage(storage, use, np.array(duals), self.capacity, self.floor)
        return storage if np.allclose(moved, storage) else moved

    def _storage_rounds(self, storage: np.ndarray) -> None:
        for _ in range(max(1, self.cfg.coordination_rounds)):
            ev = self._round(0.0, None, storage)
            storage = self._storage_step(ev, storage)
            if storage is ev["storage"]:
                break
        best = min(range(len(self.evals)), key=lambda r: self.evals[r]["objective"])
        self._select(best, None)

    def _budget_rounds(self, storage: np.ndarray, curves: np.ndarray,
                       prices: np.ndarray) -> None:
        cfg = self.cfg
        budget = float(cfg.budget)
        if cfg.coordination_rounds == 1:
            # one round: shares from the pooled closed form, each block under its own
            # budget row (feasible)
            _, shares = budget_shares(curves, prices, budget)
            ev = self._round(0.0, list(shares), storage)
            ev["shares"] = shares
            self._log_duals(ev)
            self.price = self._dual_median(ev)
            self._select(0, shares)
            return
        # priced rounds: every block prices spend at one budget price, no budget row (the
        # Lagrangian relaxation: a lower bound, and each block's spend at that price); the
        # first price from probes, the next ones from the totals seen
        aim = budget * (1.0 - 0.5 * cfg.coordination_tol)
        t0 = time.perf_counter()
        price = self._calibrated_price(storage, curves, prices, budget)
        self.timing["probes_s"] = time.perf_counter() - t0
        priced: list[dict] = []
        for _ in range(max(1, cfg.coordination_rounds - 1)):
            ev = self._round(price, None, storage)
            priced.append(ev)
            storage = self._storage_step(ev, storage)
            self.bound = max(e["lagrangian"] for e in priced)
            fits = ev["spend"] <= budget * (1 + 1e-6)
            # what the unspent budget could still save, at most (the duality gap)
            slack = price * max(budget - ev["spend"], 0.0)
            close = slack <= cfg.coordination_tol * max(abs(ev["objective"]), 1e-9)
            if fits and (close or price == 0) and storage is ev["storage"]:
                # within the budget and using enough of it (or free: it does not bind)
                self.price = price
                self._select(ev["round"], self._fill(ev, budget))
                return
            if (len(priced) >= cfg.coordination_rounds - 1
                    or abs(ev["spend"] / budget - 1.0) <= RECOVERY_BAND):
                break
            price = self._next_price(priced, aim, curves, prices)
        near = min(priced, key=lambda e: abs(np.log(max(e["spend"], 1e-300) / budget)))
        under = [e for e in priced if e["spend"] < budget]
        over = [e for e in priced if e["spend"] >= budget]
        mixed = None
        if under and over:
            lo, hi = max(under, key=lambda e: e["spend"]), min(over, key=lambda e: e["spend"])
            w = (budget - lo["spend"]) / max(hi["spend"] - lo["spend"], 1e-300)
            if not any(o.mip for o in lo["outcomes"] + hi["outcomes"]):
                # the two priced rounds mixed with one weight: feasible, spends the budget,
                # no solve; kept when within coordination_tol of the Lagrangian bound
                mixed = self._mix_round(lo, hi, w)
                gap = mixed["objective"] - self.bound
                if gap <= cfg.coordination_tol * max(abs(mixed["objective"]), 1e-9):
                    self.price = mixed["price"]
                    self._select(mixed["round"], mixed["shares"])
                    return
        # recovery: each block's own budget row (feasible by construction): between the
        # priced rounds nearest the budget on each side, each block's spends interpolated
        # where the totals meet it; else the nearest round's spends scaled to it
        if under and over:
            shares = np.maximum((1 - w) * lo["block_spend"] + w * hi["block_spend"], 0.0)
            shares = shares * budget / shares.sum() if shares.sum() > 0 else self._fill(
                near, budget)
        else:
            shares = self._fill(near, budget)
        ev = self._round(0.0, list(shares), storage)
        ev["shares"] = shares
        self._log_duals(ev)
        self.price = near["price"]
        # correction: budget moves toward the blocks whose budget rows are worth more
        recovered = [ev]
        while sum("mixed" not in e for e in self.evals) < cfg.coordination_rounds:
            shares = self._corrected_shares(near, recovered, budget)
            if shares is None:
                break
            ev = self._round(0.0, list(shares), storage)
            ev["shares"] = shares
            self._log_duals(ev)
            recovered.append(ev)
        best = min(recovered + ([mixed] if mixed else []), key=lambda e: e["objective"])
        self._select(best["round"], best["shares"])

    def _mix_round(self, lo: dict, hi: dict, w: float) -> dict:
        """Every block's solves of priced rounds ``lo`` and ``hi`` mixed with weight ``w``
        (:meth:`BlockPlanner.mix`), recorded as a round (it solves nothing)."""
        t0 = time.perf_counter()
        price = float(np.exp((1 - w) * np.log(lo["price"]) + w * np.log(hi["price"]))
                      if lo["price"] > 0 else w * hi["price"])
        outcomes = _gather([a.mix(lo["round"], hi["round"], w, price) for a in self.actors])
        spend = np.array([o.spend for o in outcomes])
        storage = (1 - w) * np.asarray(lo["storage"]) + w * np.asarray(hi["storage"])
        ev = {"round": len(self.evals), "price": price, "spend": float(spend.sum()),
              "objective": float(sum(o.objective for o in outcomes)), "outcomes": outcomes,
              "block_spend": spend, "storage": storage, "budgets": list(spend),
              "shares": spend, "mixed": float(w), "solve_time_s": 0.0,
              "wall_s": time.perf_counter() - t0}
        return self._record(ev)

    def _corrected_shares(self, near: dict, recovered: list[dict],
                          budget: float) -> np.ndarray | None:
        """Block budgets that should equalize the blocks' budget duals, or ``None`` when
        they already agree within :data:`DUAL_TOL` (or a block has no dual: MOQs).

        Each block's spend is taken as linear in its budget price through its last two
        points (the last budget round's share and dual; the round before it, or ``near``,
        the priced round nearest the budget: its spend at that price), slopes that are not negative
        replaced by the median of the others' relative slopes; the common price meeting the
        budget sets the new shares (clipped at 0, rescaled to the budget)."""
        last = recovered[-1]
        duals = _budget_duals(last)
        if not np.isfinite(duals).all() or duals.max() <= 0:
            return None
        mean = float(np.average(duals, weights=np.maximum(last["shares"], 1e-12)))
        if (duals.max() - duals.min()) <= DUAL_TOL * mean:
            return None
        b = np.asarray(last["shares"], dtype=float)
        if len(recovered) >= 2:
            prev = recovered[-2]
            p_price = _budget_duals(prev)
            p_spend = np.asarray(prev["shares"], dtype=float)
        else:
            p_price = np.full(len(b), near["price"])
            p_spend = near["block_spend"]
        d_mu = duals - p_price
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (b - p_spend) / d_mu
        ok = np.isfinite(slope) & (slope < 0) & (np.abs(d_mu) > 1e-3 * mean) & (b > 0)
        if not ok.any():
            return None
        rel = float(np.median(slope[ok] / b[ok]))
        slope = np.where(ok, slope, rel * np.maximum(b, 1e-12))
        target = float(np.sum(slope * duals) / np.sum(slope))
        new = np.clip(b + slope * (target - duals), 0.25 * b, 4.0 * b + 1e-9 * budget)
        if new.sum() <= 0:
            return None
        return new * budget / new.sum()

    def _next_price(self, priced: list[dict], aim: float, curves: np.ndarray,
                    prices: np.ndarray) -> float:
        """The next budget price. After one priced round at a positive price: where the
        pooled closed-form spend curves of every block, each rescaled through its spend in
        that round, meet the aim. Else from the priced rounds' totals (:func:`_log_step`,
        :data:`BRACKET_KEEP` inside a bracket; the probes' points and slope when only the
        free plan was priced)."""
        pts = [(e["price"], e["spend"]) for e in priced if e["price"] > 0]
        if len(pts) == 1:
            ev = next(e for e in priced if e["price"] > 0)
            at = _curves_at(curves, prices, ev["price"])
            scale = np.where(at > 0, ev["block_spend"] / np.maximum(at, 1e-300), 1.0)
            total = np.minimum.accumulate((curves * scale[:, None]).sum(axis=0))
            lam = _price_for(total, prices, aim)
            if lam > 0:
                return float(np.clip(lam, pts[0][0] / 10.0, pts[0][0] * 10.0))
        probes = (self.pilot or {}).get("probes") or []
        if not pts:  # only the free plan was priced (and it overspends): the probes' way
            pts = [p for p in probes if p[0] > 0] or [(self.lam_curve, self.cfg.budget)]
        slope = _log_slope(probes) if len(pts) == 1 else None
        lam = _log_step(pts, aim, slope, keep=BRACKET_KEEP)
        near = min(pts, key=lambda p: abs(np.log(max(p[1], 1e-300) / aim)))[0]
        return float(np.clip(lam, near / 10.0, near * 10.0))

    def _calibrated_price(self, storage: np.ndarray, curves: np.ndarray, prices: np.ndarray,
                          budget: float, probes: int = PROBES) -> float:
        """The budget price at which the blocks' LP spend should add up to (just under) the
        budget, found by probing a few blocks (the probes are not rounds).

        The pooled closed-form curves give the first price; the probed blocks' LP spend,
        scaled up by the curves' ratio of all blocks to the probed ones, estimates the
        total; the next price rescales the curves to that estimate (one point), steps
        log-linearly (slope from the points, at most -0.05, steps at most 10x) or
        interpolates between estimates on both sides of the aim. Stops within
        :data:`PROBE_TOL` of the aim."""
        aim = budget * (1.0 - 0.5 * self.cfg.coordination_tol)
        lam, _ = budget_shares(curves, prices, aim)
        self.lam_curve = max(float(lam), 1e-12)
        if lam <= 0:
            return 0.0
        pilot = list(range(min(self.n_pilot, len(self.actors))))
        total = np.minimum.accumulate(curves.sum(axis=0))
        seen: list[tuple[float, float]] = []
        for i in range(probes):
            outcomes = _gather([self.actors[k].solve(self.lam0, None, storage[k], lam, False)
                                for k in pilot])
            lp = float(sum(o.spend for o in outcomes))
            model = float(sum(_interp(curves[k], prices, lam) for k in pilot))
            est = lp * _interp(total, prices, lam) / model if model > 0 else lp
            seen.append((lam, est))
            if (abs(est / aim - 1.0) <= PROBE_TOL or i == probes - 1
                    or (lam == 0 and est <= aim * (1.0 + FREE_TRY))):
                break
            if est < aim and not any(p[0] == 0 or p[1] >= aim for p in seen):
                lam = 0.0  # under the budget already: does it bind at all?
                continue
            if len(seen) == 1 and est > 0:
                nxt = _price_for(total * est / max(_interp(total, prices, lam), 1e-300),
                                 prices, aim)
            else:
                nxt = _log_step(seen, aim, keep=BRACKET_KEEP)
            ref = min((p for p in seen if p[0] > 0),
                      key=lambda p: abs(np.log(max(p[1], 1e-300) / aim)))[0]
            lam = float(np.clip(nxt, ref / 10.0, ref * 10.0))
        self.pilot = {"probes": seen}
        if any(p[0] == 0 and p[1] <= aim * (1.0 + FREE_TRY) for p in seen):
            return 0.0  # the budget may not bind (the probes are a sample): the free plan
        below = [p for p in seen if p[1] < aim]
        above = [p for p in seen if p[1] >= aim]
        if below and above:
            return _log_step(seen, aim)
        return min(seen, key=lambda p: abs(np.log(max(p[1], 1e-300) / aim)))[0]

    def _log_duals(self, ev: dict) -> None:
        duals = _budget_duals(ev)
        ok = bool(np.isfinite(duals).all())
        self.log[ev["round"]]["budget_dual_min"] = float(np.min(duals)) if ok else None
        self.log[ev["round"]]["budget_dual_max"] = float(np.max(duals)) if ok else None

    def _dual_median(self, ev: dict) -> float | None:
        duals = [o.budget_dual for o in ev["outcomes"]]
        return None if any(d is None for d in duals) else float(np.median(duals))

    def _fill(self, ev: dict, budget: float) -> np.ndarray:
        """Block budgets: each round's spend, scaled to the budget (up or down)."""
        spend = np.maximum(ev["block_spend"], 0.0)
        if spend.sum() <= 0:
            return np.full(len(spend), budget / len(spend))
        if spend.sum() > budget:
            return spend * budget / spend.sum()
        return spend + (budget - spend.sum()) * spend / spend.sum()

    def _select(self, index: int, shares: np.ndarray | None) -> None:
        ev = self.evals[index]
        budgets = [None] * len(self.actors) if shares is None else list(shares)
        _gather([a.select(index, b) for a, b in zip(self.actors, budgets, strict=True)])
        self.outcomes = ev["outcomes"]
        self.shares = shares
        self.selected = index


def _sum(parts: Sequence[dict[str, Any]], key: str) -> float:
    return float(sum(float(p.get(key) or 0.0) for p in parts))


def _combine(parts: list[PlanResult], outcomes: list[BlockOutcome], cfg: PlanConfig,
             tables: SupplyTables, shares: np.ndarray | None, lam: float | None) -> PlanResult:
    decisions = pd.concat([p.decisions for p in parts], ignore_index=True)
    nodes = pd.concat([p.nodes for p in parts], ignore_index=True)
    summaries = [p.summary for p in parts]
    summary = _combine_summary(summaries, cfg.budget, outcomes, tables)
    stats = {
        "solver": parts[0].stats.get("solver"),
        "status": "optimal" if all(o.status == "optimal" for o in outcomes) else "mixed",
        "objective": float(sum(o.objective for o in outcomes)),
        "solve_time_s": float(sum(o.solve_time_s for o in outcomes)),
        "setup_time_s": float(sum(o.setup_time_s for o in outcomes)),
        "n_variables": int(sum(p.stats.get("n_variables", 0) for p in parts)),
        "n_constraints": int(sum(p.stats.get("n_constraints", 0) for p in parts)),
        "mip": any(o.mip for o in outcomes),
        "demand_time_s": float(max(p.stats.get("demand_time_s", 0.0) for p in parts)),
        "n_scenarios": cfg.n_scenarios,
        "n_item_locations": int(summary["n_item_locations"]),
        "n_price_candidates": parts[0].stats.get("n_price_candidates"),
        "budget_shares": None if shares is None else [float(b) for b in shares],
    }
    pricing = _combine_pricing([p.pricing for p in parts])
    return PlanResult(decisions, nodes, stats, summary, [], pricing)


def _combine_summary(parts: list[dict[str, Any]], budget: float | None,
                     outcomes: list[BlockOutcome], tables: SupplyTables) -> dict[str, Any]:
    counts = ("n_item_locations", "n_orders", "n_transfers", "n_markdowns", "n_none",
              "n_excess")
    sums = ("order_units", "transfer_units", "purchase_spend", "transfer_spend",
            "total_expected_cost", "total_expected_profit", "expected_revenue",
            "expected_demand_units", "expected_shortage_units", "expected_leftover_units")
    out: dict[str, Any] = {k: int(_sum(parts, k)) for k in counts}
    out.update({k: _sum(parts, k) for k in sums})
    spend = out["purchase_spend"] + out["transfer_spend"]
    mean = out["expected_demand_units"]
    out["expected_fill_rate"] = 1 - out["expected_shortage_units"] / mean if mean > 0 else 1.0
    out["budget"] = budget
    out["budget_used_frac"] = spend / budget if budget else None
    duals = [o.budget_dual for o in outcomes if o.budget_dual is not None]
    out["budget_shadow_price"] = float(np.mean(duals)) if duals else None
    binding: list[str] = []
    if budget is not None and spend >= budget * (1 - 1e-5) - 1e-6:
        binding.append("budget")
    use = np.sum([o.loc_use for o in outcomes], axis=0)
    capacity = tables.locations["capacity"].to_numpy(float)
    ids = tables.locations["location_id"].to_numpy()
    binding += [f"location_capacity[{ids[i]}]"
                for i in np.flatnonzero(use >= capacity * (1 - 1e-5) - 1e-6)]
    for p in parts:
        binding += [b for b in p["binding_constraints"]
                    if b != "budget" and not b.startswith("location_capacity[")]
    out["binding_constraints"] = binding
    return out


def _combine_pricing(parts: list[PricingResult]) -> PricingResult:
    width = max(p.profit.shape[1] for p in parts)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)

    return PricingResult(
        np.concatenate([p.choice for p in parts]), np.concatenate([p.price for p in parts]),
        np.concatenate([pad(p.profit) for p in parts]),
        np.concatenate([pad(p.position) for p in parts]),
        EmpiricalDemand(np.concatenate([p.demand.samples for p in parts])),
        np.concatenate([p.excess for p in parts]),
        np.concatenate([p.horizon_quantile for p in parts]))


def _combine_disruption(spec: DisruptionSpec, parts: list[DisruptionResult | None],
                        base: list[PlanResult]) -> DisruptionResult:
    hit = [p for p in parts if p is not None]
    if not hit:
        raise ValueError(f"disruption: supplier {spec.supplier_id!r} supplies none of the "
                         "planned items")
    obj = float(sum(p.objective for p in hit))
    obj_base = float(sum(p.objective_base for p in hit))
    notes = [p.note for p in hit if p.note]
    summary = {k: float(sum(float(p.summary.get(k) or 0.0) for p in hit))
               for k in ("purchase_spend", "transfer_spend", "total_expected_cost",
                         "total_expected_profit")}
    decisions = pd.concat([p.decisions if p is not None else b.decisions
                           for p, b in zip(parts, base, strict=True)], ignore_index=True)
    note = ""
    if notes:
        note = notes[0] + (f" (and {len(notes) - 1} more blocks)" if len(notes) > 1 else "")
    return DisruptionResult(
        spec.label, obj - obj_base, obj_base, obj,
        pd.concat([p.changed_sourcing for p in hit], ignore_index=True), decisions, summary,
        {"solve_time_s": float(sum(p.stats.get("solve_time_s", 0.0) for p in hit)),
         "status": "optimal" if all(p.stats.get("status") == "optimal" for p in hit)
         else "mixed", "n_blocks": len(hit)}, note=note)
