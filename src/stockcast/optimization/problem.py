"""The network decisions as ONE CVXPY problem: orders, transfers, positions.

Over the graph of :mod:`~stockcast.optimization.network`:

**Decisions.** ``x`` (units ordered per supplier arc), ``t`` (units moved per item-lane);
post-decision inventory position per node

``y = on_hand + in_transit + sum(x into node) + sum(t into node) - sum(t out of node)``.

**Objective** (expected cost over the protection period; minimized)::

    sum landed_cost * x + sum (transfer_cost + pipeline holding) * t
      + sum_demand nodes [ b E(D - y)+ + o E(y - D)+ ]  +  sum_other nodes o y

with ``b = price + shortage_cost``, ``o = holding_cost - salvage_value`` (expected
purchase + holding + shortage - salvage; revenue is a constant). Using
``E(y - D)+ = y - E D + E(D - y)+`` this is ``(b + o) S + o y - o E D`` with
``S >= E(D - y)+`` the node's expected shortage, which is represented by its tangents
``S >= E D - C(u) - (1 - u) y`` at the node's *cut levels* ``u`` (``C(u) = int_0^u Q``;
the tangent touches at ``y = Q(u)``; levels from :mod:`~stockcast.optimization.cuts`).
This shortage form keeps the objective terms small (no large ``-b y`` cancelling a large
leftover term), which the interior-point solver needs. Between cut levels the cost is a
lower bound, so a position held back by a constraint other than the budget is accurate to
the cut spacing; reported KPIs are always exact expected values at the chosen positions.
The cut rows are constant; only their right-hand sides are parameters.

**Constraints** (each one vectorized; parameters in right-hand sides only):
position balance; cuts; transfers out of a node <= its on-hand + what its suppliers
deliver (in-transit stock cannot be moved); supplier capacity per supplier x item;
location capacity (sum of positions over items; ``Flags.location_capacity=False``
leaves it out, for a caller that checks storage after the solve); optional budget on
spend; optional minimum cycle service level per node (``y >= Q(alpha)``); optional network-wide safety
stock per item (``sum_nodes y >= sum mean + z sqrt(sum var)``, pooled over independent
nodes); optional minimum order quantities (binary ``z``: ``moq z <= x <= cap z``, a MIP
solved with HiGHS).

**Compiled problems.** A :class:`NetworkProblem` is built for one *structure* (graph, cut
levels, enabled constraints, cash costs, MOQs) with every number that changes between
solves as a ``cp.Parameter``, and is checked to be DPP when built
(:func:`~stockcast.optimization.solving.require_dpp`), so CVXPY compiles it once and a
re-solve only refreshes parameter values (solver settings: :data:`SOLVER_DEFAULTS`,
overridden by ``options``). A :class:`ProblemCache` (owned by a
:class:`~stockcast.optimization.plan.Planner`) keeps the compiled problems keyed by
structure: new forecasts, prices, stock, capacities, budgets and supplier outages re-solve
the same problem.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stockcast.errors import InfeasibleProblemError
from stockcast.optimization.distribution import NODE_KEYS, EmpiricalDemand
from stockcast.optimization.network import Network
from stockcast.optimization.newsvendor import epigraph_matrices
from stockcast.optimization.solving import SolverFailedError, require_dpp, run_solver

#: Solver settings used unless ``solver_options`` set them: Clarabel's iterative refinement
#: of each KKT solve costs about a quarter of its time on these LPs and changes the optimum
#: by about 1e-10 relative; a solve that does not end optimal without it is repeated with
#: the options as given.
SOLVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"iterative_refinement_enable": False},
}


@dataclass(frozen=True)
class Flags:
    """Which optional constraints the problem has."""

    budget: bool = False
    budget_transfers: bool = True
    service: bool = False
    safety_stock: bool = False
    moq: bool = False
    location_capacity: bool = True


@dataclass
class Values:
    """Parameter values of one solve (arrays in node/arc/lane order)."""

    base: np.ndarray
    on_hand: np.ndarray
    cuts: np.ndarray
    arc_cost: np.ndarray
    lane_cost: np.ndarray
    over: np.ndarray
    linear: np.ndarray
    group_cap: np.ndarray
    loc_cap: np.ndarray
    budget: float | None = None
    ymin: np.ndarray | None = None
    safety_stock: np.ndarray | None = None
    constant: float = 0.0


class NetworkProblem:
    """The vectorized CVXPY network problem for one structure (see module docstring).

    Args:
        net: The network (its graph, cash costs and MOQs are baked into the matrices).
        levels: Cut levels per demand node ``(N_demand, W)``.
        flags: Optional constraints.
        elastic: Add penalized slacks to capacity, budget, service and safety-stock rows
            (used to explain infeasibility).
    """

    def __init__(self, net: Network, levels: np.ndarray, flags: Flags, *,
                 elastic: bool = False) -> None:
        t0 = time.perf_counter()
        self.flags, self.elastic = flags, elastic
        self.cut_mask = np.isfinite(levels)
        n = net.n_nodes
        dem = net.demand_nodes
        arc_node = net.arcs["node"].to_numpy()
        a, n_lanes = len(net.arcs), len(net.lanes)
        lf, lt = net.lanes["from_node"].to_numpy(), net.lanes["to_node"].to_numpy()
        n_groups, n_locs, n_items = len(net.groups), len(net.locations), len(net.items)
        # zero-size pieces (no lanes, no DC nodes...) become constants: CVXPY needs size > 0
        self.x = cp.Variable(a, nonneg=True, name="order") if a else None
        self.t = cp.Variable(n_lanes, nonneg=True, name="transfer") if n_lanes else None
        self.y = cp.Variable(n, name="position")
        self.s = cp.Variable(len(dem), name="expected_shortage") if len(dem) else None
        b_x = sp.csr_matrix((np.ones(a), (arc_node, np.arange(a))), shape=(n, a))
        b_in = sp.csr_matrix((np.ones(n_lanes), (lt, np.arange(n_lanes))), shape=(n, n_lanes))
        b_out = sp.csr_matrix((np.ones(n_lanes), (lf, np.arange(n_lanes))), shape=(n, n_lanes))
        self.out_nodes = np.unique(lf)

        def param(size: int, name: str, nonneg: bool = False) -> cp.Parameter | None:
            return cp.Parameter(size, name=name, nonneg=nonneg) if size else None

        p = self.params = {
            "base": param(n, "base"),
            "on_hand": param(len(self.out_nodes), "on_hand", True),
            "cuts": param(int(np.isfinite(levels).sum()), "cut_intercepts"),
            "arc_cost": param(a, "arc_cost"),
            "lane_cost": param(n_lanes, "lane_cost"),
            "over": param(len(dem), "b_plus_o", True),
            "linear": param(n, "o"),
            "group_cap": param(n_groups, "supplier_capacity", True),
            "loc_cap": param(n_locs, "location_capacity", True),
        }
        g_x = sp.csr_matrix((np.ones(a), (net.arcs["group"].to_numpy(), np.arange(a))),
                            shape=(n_groups, a))
        l_y = sp.csr_matrix((np.ones(n), (net.nodes["loc"].to_numpy(), np.arange(n))),
                            shape=(n_locs, n))
        self.slacks: dict[str, cp.Variable] = {}

        def soft(name: str, size: int) -> cp.Variable | float:
            if not elastic:
                return 0.0
            self.slacks[name] = cp.Variable(size, nonneg=True, name=f"slack_{name}")
            return self.slacks[name]

        supplied = b_x @ self.x if a else 0.0
        net_in = (b_in - b_out) @ self.t if n_lanes else 0.0
        c = self.cons = {}
        c["balance"] = self.y == p["base"] + supplied + net_in
        if len(dem):
            e_s, e_y = epigraph_matrices(len(dem), 1.0 - levels, node_cols=dem, n_cols=n)
            c["cuts"] = e_s @ self.s + e_y @ self.y >= p["cuts"]
        if n_lanes:
            inflow = b_x[self.out_nodes] @ self.x if a else 0.0
            c["transfer_stock"] = b_out[self.out_nodes] @ self.t <= p["on_hand"] + inflow
        if a:
            c["supplier_capacity"] = g_x @ self.x <= p["group_cap"] + soft("supplier_capacity",
                                                                           n_groups)
        if flags.location_capacity:
            c["location_capacity"] = l_y @ self.y <= p["loc_cap"] + soft("location_capacity",
                                                                         n_locs)
        else:  # storage checked after the solve (a decomposed block's lazy rows)
            p["loc_cap"] = None
        if flags.budget:
            p["budget"] = cp.Parameter(nonneg=True, name="budget")
            spend = net.arcs["cash_cost"].to_numpy() @ self.x if a else cp.Constant(0.0)
            if flags.budget_transfers and n_lanes:
                spend = spend + net.lanes["transfer_cost"].to_numpy() @ self.t
            c["budget"] = spend <= p["budget"] + soft("budget", 1)
        if flags.service and len(dem):
            p["ymin"] = cp.Parameter(len(dem), nonneg=True, name="service_floor")
            c["min_service_level"] = self.y[dem] >= p["ymin"] - soft("min_service_level",
                                                                     len(dem))
        if flags.safety_stock:
            p["safety_stock"] = cp.Parameter(n_items, nonneg=True, name="network_safety_stock")
            i_y = sp.csr_matrix((np.ones(n), (net.nodes["item"].to_numpy(), np.arange(n))),
                                shape=(n_items, n))
            c["network_safety_stock"] = i_y @ self.y >= p["safety_stock"] - soft(
                "network_safety_stock", n_items)
        self.moq_arcs = np.array([], dtype=int)
        if flags.moq and a:
            moq = net.arcs["moq"].to_numpy()
            self.moq_arcs = np.flatnonzero(moq > 0)
            if len(self.moq_arcs):
                big = net.groups["capacity"].to_numpy()[net.arcs["group"].to_numpy()]
                self.z = cp.Variable(len(self.moq_arcs), boolean=True, name="order_placed")
                xm = self.x[self.moq_arcs]
                c["moq"] = xm >= cp.multiply(moq[self.moq_arcs], self.z)
                c["moq_link"] = xm <= cp.multiply(big[self.moq_arcs], self.z)
        terms = []
        if a:
            terms.append(p["arc_cost"] @ self.x)
        if n_lanes:
            terms.append(p["lane_cost"] @ self.t)
        if len(dem):
            terms.append(p["over"] @ self.s)
        terms.append(p["linear"] @ self.y)
        objective = sum(terms[1:], terms[0])
        if elastic:
            scale = 1.0 + float(np.max(net.arcs["cash_cost"].to_numpy(), initial=1.0)) + float(
                np.max((net.nodes["price"] + net.nodes["shortage_cost"]).to_numpy(), initial=1.0))
            for name, slack in self.slacks.items():
                objective = objective + (1e3 if name == "budget" else 1e3 * scale) * cp.sum(slack)
        self.problem = cp.Problem(cp.Minimize(objective), list(c.values()))
        require_dpp(self.problem, "network plan" + (" (elastic)" if elastic else ""))
        self.is_mip = bool(len(self.moq_arcs))
        self.build_time_s = time.perf_counter() - t0
        self.compiled = False

    def set_values(self, v: Values) -> None:
        """Assign parameter values."""
        values = {
            "base": v.base, "on_hand": np.maximum(v.on_hand[self.out_nodes], 0.0),
            "cuts": v.cuts[self.cut_mask], "arc_cost": v.arc_cost, "lane_cost": v.lane_cost,
            "over": v.over, "linear": v.linear, "group_cap": v.group_cap,
            "loc_cap": v.loc_cap, "budget": v.budget, "ymin": v.ymin,
            "safety_stock": v.safety_stock,
        }
        for name, param in self.params.items():
            if param is not None:
                param.value = values[name] if param.ndim else float(values[name])

    def value(self, var: cp.Variable | None, size: int) -> np.ndarray:
        """Solution of a variable (zeros for an absent zero-size variable)."""
        return np.zeros(size) if var is None else np.asarray(var.value, dtype=float)

    def solve(self, v: Values, solver: str, mip_solver: str,
              options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Set values, solve, and return solver statistics (status not yet checked)."""
        self.set_values(v)
        name = mip_solver if self.is_mip else solver
        first = not self.compiled
        t0 = time.perf_counter()
        if first:
            self.problem.get_problem_data(name)
            self.compiled = True
        compile_s = time.perf_counter() - t0
        own = dict(options or {})
        fast = {**SOLVER_DEFAULTS.get(name, {}), **own}
        try:
            stats = run_solver(self.problem, name, fast, what="network plan")
        except SolverFailedError:
            if fast == own:
                raise
            stats = None
        if fast != own and (stats is None or stats["status"] != cp.OPTIMAL):
            stats = run_solver(self.problem, name, own, what="network plan")  # as asked
        stats["setup_time_s"] = (self.build_time_s + compile_s) if first else stats["setup_time_s"]
        stats["compiled_now"] = first
        stats["mip"] = self.is_mip
        if stats["objective"] is not None:
            stats["objective"] += v.constant
        return stats


def structure_key(net: Network, levels: np.ndarray, flags: Flags) -> str:
    """Hash of everything baked into the problem matrices (the rest are parameters)."""
    h = hashlib.sha1()
    for arr in (net.arcs["node"], net.arcs["group"], net.arcs["cash_cost"], net.arcs["moq"],
                net.lanes["from_node"], net.lanes["to_node"], net.lanes["transfer_cost"],
                net.nodes["loc"], net.nodes["item"], net.nodes["demand"],
                net.groups["capacity"] if flags.moq else pd.Series([], dtype=float)):
        h.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
        h.update(b"|")
    h.update(np.round(np.nan_to_num(np.asarray(levels, dtype=float), nan=-1.0), 12).tobytes())
    h.update(repr((flags, net.n_nodes, len(net.locations), len(net.items),
                   len(net.groups))).encode())
    return h.hexdigest()


class ProblemCache:
    """Compiled :class:`NetworkProblem` objects keyed by :func:`structure_key`.

    Owned by whoever plans repeatedly (a :class:`~stockcast.optimization.plan.Planner`);
    the least recently used problem is dropped beyond ``size``.

    Args:
        size: Number of problems kept (each holds its compiled matrices).
    """

    def __init__(self, size: int = 4) -> None:
        if size < 1:
            raise ValueError("ProblemCache size must be >= 1")
        self.size = size
        self._problems: OrderedDict[str, NetworkProblem] = OrderedDict()
        self.built = 0

    def __len__(self) -> int:
        return len(self._problems)

    def get(self, net: Network, levels: np.ndarray, flags: Flags) -> NetworkProblem:
        """The problem for this structure (built, DPP-checked, on first use)."""
        key = structure_key(net, levels, flags)
        if key not in self._problems:
            self._problems[key] = NetworkProblem(net, levels, flags)
            self.built += 1
            while len(self._problems) > self.size:
                self._problems.popitem(last=False)
        self._problems.move_to_end(key)
        return self._problems[key]

    def clear(self) -> None:
        """Drop every compiled problem."""
        self._problems.clear()


@dataclass
class NetworkSolution:
    """Optimal orders, transfers and positions, with what limited them."""

    order: np.ndarray
    transfer: np.ndarray
    position: np.ndarray
    stats: dict[str, Any]
    binding: dict[str, np.ndarray | bool] = field(default_factory=dict)
    duals: dict[str, Any] = field(default_factory=dict)


def _near(a: np.ndarray, b: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    return np.asarray(a) >= np.asarray(b) - rel * np.maximum(1.0, np.abs(b))


def solve_network(net: Network, levels: np.ndarray, flags: Flags, values: Values, *,
                  solver: str = "CLARABEL", mip_solver: str = "HIGHS",
                  options: dict[str, Any] | None = None,
                  problem: NetworkProblem | None = None) -> NetworkSolution:
    """Check inputs, solve the network problem and read the solution.

    Args:
        problem: The compiled problem for this structure (from a :class:`ProblemCache`);
            ``None`` builds a new one.

    Raises:
        InfeasibleProblemError: Naming the constraint(s) and items/locations at fault.
        SolverFailedError: When the solver fails or is inaccurate.
    """
    precheck(net, flags, values)
    prob = problem or NetworkProblem(net, levels, flags)
    stats = prob.solve(values, solver, mip_solver, options)
    if stats["status"] != cp.OPTIMAL:
        explain_infeasible(net, levels, flags, values, stats["status"], solver, mip_solver,
                           options)
    tol = 1e-7
    x = prob.value(prob.x, len(net.arcs))
    t = prob.value(prob.t, len(net.lanes))
    x, t = np.where(x > tol, x, 0.0), np.where(t > tol, t, 0.0)
    y = prob.value(prob.y, net.n_nodes)
    a_node = net.arcs["node"].to_numpy()
    group_use = np.bincount(net.arcs["group"].to_numpy(), weights=x, minlength=len(net.groups))
    loc_use = np.bincount(net.nodes["loc"].to_numpy(), weights=y, minlength=len(net.locations))
    out = np.bincount(net.lanes["from_node"].to_numpy(), weights=t, minlength=net.n_nodes)
    supplied = np.bincount(a_node, weights=x, minlength=net.n_nodes)
    binding: dict[str, Any] = {
        "supplier_capacity": _near(group_use, values.group_cap) & (values.group_cap >= 0),
        "location_capacity": _near(loc_use, values.loc_cap),
        "transfer_stock": (out > tol) & _near(out, np.maximum(values.on_hand, 0) + supplied),
    }
    duals: dict[str, Any] = {}
    if flags.budget:
        spend = net.arcs["cash_cost"].to_numpy() @ x
        if flags.budget_transfers:
            spend += net.lanes["transfer_cost"].to_numpy() @ t
        binding["budget"] = bool(_near(np.array([spend]), np.array([values.budget]))[0])
        binding["spend"] = float(spend)
        if not prob.is_mip and prob.cons["budget"].dual_value is not None:
            duals["budget"] = float(np.asarray(prob.cons["budget"].dual_value).ravel()[0])
    if flags.service:
        binding["min_service_level"] = y[net.demand_nodes] <= values.ymin * (1 + 1e-6) + 1e-6
    if flags.safety_stock:
        item_pos = np.bincount(net.nodes["item"].to_numpy(), weights=y, minlength=len(net.items))
        binding["network_safety_stock"] = item_pos <= values.safety_stock * (1 + 1e-6) + 1e-6
    if len(prob.moq_arcs):
        moq = net.arcs["moq"].to_numpy()
        at = np.zeros(len(x), bool)
        m = prob.moq_arcs
        at[m] = (x[m] > tol) & (np.abs(x[m] - moq[m]) <= 1e-6 * np.maximum(1, moq[m]))
        binding["moq"] = at
    if not prob.is_mip:
        for name in ("location_capacity", "supplier_capacity"):
            if name not in prob.cons:
                continue
            dv = prob.cons[name].dual_value
            duals[name] = None if dv is None else np.asarray(dv, dtype=float)
    return NetworkSolution(x, t, y, stats, binding, duals)


def precheck(net: Network, flags: Flags, v: Values) -> None:
    """Fast checks that name the constraint and items before any solve.

    Raises:
        InfeasibleProblemError: Committed stock above location capacity; a budget that
            cannot cover the orders required by service/safety-stock floors; required
            stock without any supplier.
    """
    nodes = net.nodes
    movable = np.zeros(net.n_nodes, bool)
    movable[net.lanes["from_node"].to_numpy()] = True
    committed = nodes["in_transit"].to_numpy() + np.where(movable, 0.0, nodes["on_hand"].to_numpy())
    per_loc = np.bincount(nodes["loc"].to_numpy(), weights=committed, minlength=len(net.locations))
    over = per_loc > v.loc_cap * (1 + 1e-9) + 1e-9
    messages = []
    for loc in np.flatnonzero(over):
        at = nodes[(nodes["loc"] == loc) & (committed > 0)]
        items = ", ".join(at.sort_values("on_hand", ascending=False)["item_id"].astype(str)[:10])
        messages.append(
            f"location capacity at {net.locations['location_id'].iloc[loc]}: committed stock "
            f"(in-transit + on-hand that no lane can move) {per_loc[loc]:.6g} exceeds capacity "
            f"{v.loc_cap[loc]:.6g}; items: {items}"
        )
    if messages:
        raise InfeasibleProblemError("infeasible: " + "; ".join(messages))
    if not (flags.service or flags.safety_stock):
        return
    need = np.zeros(len(net.items))
    base = v.base
    item = nodes["item"].to_numpy()
    if flags.service:
        dem = net.demand_nodes
        floor = np.zeros(net.n_nodes)
        floor[dem] = v.ymin
        need = np.maximum(need, np.bincount(item, weights=floor, minlength=len(net.items))
                          - np.bincount(item, weights=base, minlength=len(net.items)))
    if flags.safety_stock:
        need = np.maximum(need, v.safety_stock - np.bincount(item, weights=base,
                                                             minlength=len(net.items)))
    need = np.maximum(need, 0.0)
    g = net.groups
    cap = np.bincount(g["item_id"].map(pd.Series(np.arange(len(net.items)), index=net.items))
                      .to_numpy(int), weights=v.group_cap, minlength=len(net.items))
    what = "min_service_level" if flags.service else "network_safety_stock"
    short = np.flatnonzero(need > cap * (1 + 1e-9) + 1e-9)
    if len(short):
        items = ", ".join(f"{net.items[i]} (needs {need[i]:.6g}, supplier capacity {cap[i]:.6g})"
                          for i in short[:10])
        raise InfeasibleProblemError(
            f"infeasible: {what} requires more than the supplier capacity for items: {items}")
    if flags.budget:
        live = g[v.group_cap > 0]
        cheapest = live.groupby("item_id")["unit_cost"].min().reindex(net.items).to_numpy()
        min_moq = live.groupby("item_id")["min_order_qty"].min().reindex(net.items).to_numpy()
        units = np.where(need > 0, np.maximum(need, np.nan_to_num(min_moq) if flags.moq else 0),
                         0.0)
        cost = units * np.nan_to_num(cheapest, nan=0.0)
        if cost.sum() > v.budget * (1 + 1e-9) + 1e-9:
            worst = np.argsort(-cost)[: min(10, int((cost > 0).sum()))]
            items = ", ".join(f"{net.items[i]} ({cost[i]:.6g})" for i in worst)
            raise InfeasibleProblemError(
                f"infeasible: budget {v.budget:.6g} cannot cover the minimum orders needed for "
                f"{what} (at least {cost.sum():.6g}); items: {items}")


def explain_infeasible(net: Network, levels: np.ndarray, flags: Flags, values: Values,
                       status: str, solver: str, mip_solver: str,
                       options: dict[str, Any] | None) -> None:
    """Re-solve with penalized slacks and raise an error naming the violated constraints.

    Raises:
        InfeasibleProblemError: Always.
    """
    if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
        cheap = net.arcs[net.arcs["landed_cost"] < (
            net.nodes["salvage_value"] - net.nodes["holding_cost"]).to_numpy()[net.arcs["node"]]]
        items = ", ".join(sorted(set(cheap["item_id"].astype(str)))[:10]) or "unknown"
        raise InfeasibleProblemError(
            f"network plan is unbounded (buying to salvage pays); check salvage_value vs supplier "
            f"unit_cost for items: {items}")
    elastic = NetworkProblem(net, levels, flags, elastic=True)
    stats = elastic.solve(values, solver, mip_solver, options)
    if stats["status"] != cp.OPTIMAL:
        raise InfeasibleProblemError(
            f"network plan is {status}; the elastic diagnosis is {stats['status']} too "
            "(transfer/MOQ structure cannot be satisfied)")
    nodes, msgs = net.nodes, []
    y = np.asarray(elastic.y.value, dtype=float)
    for name, var in elastic.slacks.items():
        s = np.asarray(var.value, dtype=float).ravel()
        hit = np.flatnonzero(s > 1e-6 * max(1.0, float(np.max(np.abs(y), initial=1.0))))
        if not len(hit):
            continue
        if name == "location_capacity":
            for loc in hit[:10]:
                at = nodes[nodes["loc"] == loc]
                items = ", ".join(at["item_id"].astype(str)[y[at.index] > 0][:10])
                msgs.append(f"location_capacity at {net.locations['location_id'].iloc[loc]} "
                            f"(over by {s[loc]:.6g}); items: {items}")
        elif name == "supplier_capacity":
            for g in hit[:10]:
                row = net.groups.iloc[g]
                msgs.append(f"supplier_capacity of {row['supplier_id']} for item "
                            f"{row['item_id']} (short by {s[g]:.6g})")
        elif name == "budget":
            msgs.append(f"budget {values.budget:.6g} (short by {s[0]:.6g})")
        elif name == "min_service_level":
            dem = net.demand_nodes[hit]
            pairs = ", ".join(f"{i}@{loc}" for i, loc in
                              nodes.loc[dem, NODE_KEYS].head(10).itertuples(index=False))
            msgs.append(f"min_service_level floor not reachable for item-locations: {pairs}")
        elif name == "network_safety_stock":
            items = ", ".join(str(net.items[i]) for i in hit[:10])
            msgs.append(f"network_safety_stock not reachable for items: {items}")
    detail = "; ".join(msgs) or "no single constraint group explains it"
    raise InfeasibleProblemError(f"network plan is {status}: {detail}")


def node_values(
    net: Network,
    demand: EmpiricalDemand,
    levels: np.ndarray,
    price: np.ndarray,
    flags: Flags,
    *,
    budget: float | None = None,
    min_service_level: float | None = None,
    network_z: float | None = None,
) -> Values:
    """Parameter values from the network, demand distributions and chosen prices.

    Args:
        net: The network.
        demand: Protection-period demand of the demand nodes (same order).
        levels: Cut levels per demand node.
        price: Selling price per demand node (list or chosen markdown price).
        flags: Enabled constraints.
        budget: Spend cap.
        min_service_level: Cycle service floor ``alpha``.
        network_z: Safety factor of the network safety stock.
    """
    nodes = net.nodes
    dem = net.demand_nodes
    b = price + nodes["shortage_cost"].to_numpy()[dem]
    o_all = (nodes["holding_cost"] - nodes["salvage_value"]).to_numpy()
    base = (nodes["on_hand"] + nodes["in_transit"]).to_numpy(float)
    ymin = ss = None
    if flags.service:
        ymin = demand.quantile(float(min_service_level))
    if flags.safety_stock:
        item = nodes["item"].to_numpy()[dem]
        mu = np.bincount(item, weights=demand.mean, minlength=len(net.items))
        var = np.bincount(item, weights=demand.std ** 2, minlength=len(net.items))
        ss = mu + float(network_z) * np.sqrt(var)
    # Huge right-hand sides (a capacity or budget "large enough to ignore") make the
    # interior-point solver misreport unboundedness; clip them to bounds no plan can reach.
    group_cap = net.groups["capacity"].to_numpy(float)
    bound = float(base.sum() + group_cap.sum()) + 1.0
    max_cash = np.zeros(len(net.groups))
    np.maximum.at(max_cash, net.arcs["group"].to_numpy(), net.arcs["cash_cost"].to_numpy(float))
    lane_cash = float(net.lanes["transfer_cost"].max()) if len(net.lanes) else 0.0
    spend_bound = float(group_cap @ max_cash) + bound * lane_cash * max(
        1, len(net.locations) - 1) + 1.0
    return Values(
        base=base,
        on_hand=nodes["on_hand"].to_numpy(float),
        cuts=demand.mean[:, None] - demand.partial_expectation(np.nan_to_num(levels)),
        arc_cost=net.arcs["landed_cost"].to_numpy(float),
        lane_cost=net.lanes["landed_cost"].to_numpy(float),
        over=b + o_all[dem],
        linear=o_all,
        group_cap=net.groups["capacity"].to_numpy(float),
        loc_cap=np.minimum(net.locations["capacity"].to_numpy(float), bound),
        budget=None if budget is None else min(float(budget), spend_bound),
        ymin=ymin,
        safety_stock=ss,
        constant=-float(np.sum(o_all[dem] * demand.mean)),
    )
