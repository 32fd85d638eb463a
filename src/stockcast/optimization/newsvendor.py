"""Newsvendor: closed-form critical-ratio answer and the exact scenario LP in CVXPY.

Economics of one item-location over its protection period (all per unit):
price ``p``, unit (purchase) cost ``c``, holding ``h``, goodwill shortage cost ``g``,
salvage value ``s`` of a unit left at the end. With position ``y`` (stock on hand + in
transit + order) and demand ``D``, expected profit is

``p E min(D, y) + (s - h) E(y - D)+ - g E(D - y)+ - c q``

and maximizing it is minimizing the expected cost

``c q + b E(D - y)+ + o E(y - D)+``,  ``b = p + g`` (lost revenue + goodwill),
``o = h - s`` (holding net of salvage).

The derivative ``c - b + (b + o) F(y)`` vanishes at the textbook **critical ratio**

``CR = (p - c + g) / (p - c + g + c - s + h) = (b - c) / (b + o)``,

so the order-up-to level is the demand quantile at ``CR`` (smallest ``y`` with
``F(y) >= CR`` for a discrete distribution). ``s = c`` (stock carries over at cost) gives
the base-stock fractile ``(p - c + g) / (p - c + g + h)``.

**Scenario LP.** With ``n`` equally likely scenarios sorted ``d_1 <= ... <= d_n``, the
expected shortage ``E(D - y)+`` is the maximum of its ``n + 1`` tangents
``E D - C_m - (1 - m/n) y`` with ``C_m = (d_1 + ... + d_m) / n`` (``m = 0..n``), and
``E(y - D)+ = y - E D + E(D - y)+``. Introducing ``S >= E(D - y)+`` gives the LP

``min  c q + (b + o) S + o y - o E D``
``s.t. S >= E D - C_m - (1 - m/n) y  (m = 0..n),  y = on_hand + q,  q >= 0``
``     [, sum c q <= budget]``

which equals the classic scenario formulation (``u_k >= d_k - y``, ``u_k >= 0``) with one
epigraph variable per item instead of ``n``. All data enter as ``cp.Parameter`` values in
the right-hand side and the objective (the constraint matrix is constant), so one
compiled problem per shape ``(n_items, n_scenarios, budget?)`` is re-solved cheaply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from stockcast.errors import InfeasibleProblemError
from stockcast.optimization.distribution import EmpiricalDemand, QuantileFunction
from stockcast.optimization.solving import require_dpp, run_solver


def critical_ratio(
    price: np.ndarray | float,
    unit_cost: np.ndarray | float,
    holding: np.ndarray | float,
    shortage: np.ndarray | float,
    salvage: np.ndarray | float,
) -> np.ndarray:
    """Textbook critical ratio ``(p - c + g) / (p - c + g + c - s + h)``, clipped to [0, 1].

    Ratios below 0 (buying a unit costs more than the lost sale) mean "order nothing".

    Raises:
        InfeasibleProblemError: When ``p + g + h - s <= 0`` (leftover stock earns more than a
            sale: the expected cost is unbounded below); names the offending rows.
    """
    p, c, h, g, s = (np.asarray(v, dtype=float) for v in (price, unit_cost, holding, shortage,
                                                          salvage))
    under = p - c + g
    denom = under + c - s + h
    bad = ~(denom > 0)
    if np.any(bad):
        rows = np.flatnonzero(np.broadcast_to(bad, np.broadcast(p, c, h, g, s).shape))[:10]
        raise InfeasibleProblemError(
            f"unbounded newsvendor: price + shortage + holding - salvage <= 0 at rows "
            f"{rows.tolist()} (salvage pays more than selling)"
        )
    return np.clip(under / denom, 0.0, 1.0)


def newsvendor_quantity(demand: EmpiricalDemand | QuantileFunction, cr: np.ndarray | float,
                        ) -> np.ndarray:
    """Closed-form order-up-to level: the demand quantile at the critical ratio.

    Args:
        demand: Discrete scenarios (:class:`EmpiricalDemand`: smallest atom with
            ``F >= CR``) or a continuous :class:`QuantileFunction` (``Q(CR)``).
        cr: Critical ratio per node (or one for all).

    Returns:
        Order-up-to level per node (0 where ``CR <= 0``: a unit costs more than a lost sale).
    """
    cr = np.asarray(cr, dtype=float)
    if isinstance(demand, QuantileFunction):
        target = demand.ppf_rows(np.clip(cr, 1e-12, 1 - 1e-12))
    else:
        target = demand.quantile(cr)
    return np.where(cr > 0, target, 0.0)


@dataclass
class NewsvendorOutcome:
    """Expected results of positions ``y`` (per node)."""

    position: np.ndarray
    order: np.ndarray
    expected_sales: np.ndarray
    expected_shortage: np.ndarray
    expected_leftover: np.ndarray
    fill_rate: np.ndarray
    expected_cost: np.ndarray
    expected_profit: np.ndarray


def evaluate_position(
    demand: EmpiricalDemand,
    y: np.ndarray,
    *,
    price: np.ndarray,
    unit_cost: np.ndarray,
    holding: np.ndarray,
    shortage: np.ndarray,
    salvage: np.ndarray,
    on_hand: np.ndarray | float = 0.0,
) -> NewsvendorOutcome:
    """Expected sales, shortage, leftover, fill rate, cost and profit of positions ``y``.

    ``order = max(y - on_hand, 0)`` is bought at ``unit_cost``; stock already held is sunk.
    """
    y = np.asarray(y, dtype=float)
    order = np.maximum(y - np.asarray(on_hand, dtype=float), 0.0)
    short = demand.expected_shortage(y)
    mean = demand.mean
    left = y - mean + short
    sales = mean - short
    cost = unit_cost * order + (price + shortage) * short + (holding - salvage) * left
    profit = price * mean - cost
    return NewsvendorOutcome(y, order, sales, short, left, demand.fill_rate(y), cost, profit)


def closed_form(
    demand: EmpiricalDemand,
    *,
    price: np.ndarray,
    unit_cost: np.ndarray,
    holding: np.ndarray,
    shortage: np.ndarray,
    salvage: np.ndarray,
    on_hand: np.ndarray | float = 0.0,
) -> NewsvendorOutcome:
    """Vectorized unconstrained newsvendor: order up to the quantile at the critical ratio.

    Stock already above the target is kept (no negative orders).
    """
    cr = critical_ratio(price, unit_cost, holding, shortage, salvage)
    target = newsvendor_quantity(demand, cr)
    y = np.maximum(target, np.asarray(on_hand, dtype=float))
    return evaluate_position(demand, y, price=price, unit_cost=unit_cost, holding=holding,
                             shortage=shortage, salvage=salvage, on_hand=on_hand)


def epigraph_matrices(n_nodes: int, levels: np.ndarray, node_cols: np.ndarray | None = None,
                      n_cols: int | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Constant matrices of the cuts ``r_i >= u_{i,m} y_i - C_{i,m}``.

    Args:
        n_nodes: Number of epigraph variables ``r``.
        levels: Cut levels, ``(W,)`` shared or ``(n_nodes, W)`` per node; NaN = no cut
            (nodes may have different numbers of cuts).
        node_cols: Column of ``y`` belonging to each ``r`` (default ``0..n_nodes-1``).
        n_cols: Number of ``y`` columns (default ``n_nodes``).

    Returns:
        ``(E_r, E_y)`` with ``E_r @ r - E_y @ y >= -C`` the cut rows, ``C`` the intercepts
        of the finite levels in row-major order.
    """
    levels = np.broadcast_to(np.asarray(levels, dtype=float), (n_nodes, np.shape(levels)[-1]))
    valid = np.isfinite(levels).ravel()
    node = np.repeat(np.arange(n_nodes), levels.shape[1])[valid]
    n_rows = int(valid.sum())
    rows = np.arange(n_rows)
    cols = node if node_cols is None else np.asarray(node_cols)[node]
    e_r = sp.csr_matrix((np.ones(n_rows), (rows, node)), shape=(n_rows, n_nodes))
    e_y = sp.csr_matrix((levels.ravel()[valid], (rows, cols)),
                        shape=(n_rows, n_cols if n_cols is not None else n_nodes))
    return e_r, e_y


@dataclass
class NewsvendorSolution:
    """Result of :meth:`ScenarioNewsvendor.solve`."""

    order: np.ndarray
    position: np.ndarray
    expected_cost: float
    budget_binding: bool
    stats: dict[str, Any] = field(default_factory=dict)


class ScenarioNewsvendor:
    """Exact scenario LP for many independent newsvendors (optionally sharing a budget).

    Built once per ``(n_items, n_scenarios, budget)``; :meth:`solve` sets parameters and
    re-solves (CVXPY reuses the compiled problem: ``is_dcp(dpp=True)`` holds).

    Args:
        n_items: Number of item-locations.
        n_scenarios: Scenarios per item-location.
        budget: Add the constraint ``sum(unit_cost * order) <= budget``.
        solver: CVXPY solver (an LP solver: ``CLARABEL``, ``HIGHS``).
        solver_options: Passed to ``Problem.solve``.
    """

    def __init__(self, n_items: int, n_scenarios: int, *, budget: bool = False,
                 solver: str = "CLARABEL", solver_options: dict[str, Any] | None = None) -> None:
        t0 = time.perf_counter()
        self.n, self.s = n_items, n_scenarios
        self.levels = np.arange(n_scenarios + 1) / n_scenarios
        self.solver, self.solver_options = solver, dict(solver_options or {})
        n = n_items
        self.q = cp.Variable(n, nonneg=True, name="order")
        self.short = cp.Variable(n, name="expected_shortage")
        self.cuts = cp.Parameter(n * (n_scenarios + 1), name="cut_intercepts")
        self.cost = cp.Parameter(n, nonneg=True, name="unit_cost")
        self.net_holding = cp.Parameter(n, name="o")  # h - s
        self.over = cp.Parameter(n, nonneg=True, name="b_plus_o")  # p + g + h - s
        e_s, e_y = epigraph_matrices(n, 1.0 - self.levels)
        cons = [e_s @ self.short + e_y @ self.q >= self.cuts]
        self.budget = None
        if budget:
            self.budget = cp.Parameter(nonneg=True, name="budget")
            self.budget_con = self.cost @ self.q <= self.budget
            cons.append(self.budget_con)
        objective = self.cost @ self.q + self.net_holding @ self.q + self.over @ self.short
        self.problem = cp.Problem(cp.Minimize(objective), cons)
        require_dpp(self.problem, "newsvendor LP")
        self.build_time_s = time.perf_counter() - t0

    def solve(
        self,
        scenarios: np.ndarray | EmpiricalDemand,
        *,
        price: np.ndarray,
        unit_cost: np.ndarray,
        holding: np.ndarray,
        shortage: np.ndarray,
        salvage: np.ndarray,
        on_hand: np.ndarray | float = 0.0,
        budget: float | None = None,
    ) -> NewsvendorSolution:
        """Set parameters and solve.

        Args:
            scenarios: ``(n_items, n_scenarios)`` equally likely demands (any order) or an
                :class:`EmpiricalDemand` with ``n_scenarios`` atoms.
            price, unit_cost, holding, shortage, salvage: Economics per item (see module).
            on_hand: Stock already held (sunk) per item.
            budget: Spend cap (required iff built with ``budget=True``).

        Raises:
            InfeasibleProblemError: If the solver reports infeasible/unbounded.
            SolverFailedError: On solver failure.
        """
        demand = scenarios if isinstance(scenarios, EmpiricalDemand) else EmpiricalDemand(
            np.sort(np.asarray(scenarios, dtype=float), axis=1))
        if demand.samples.shape != (self.n, self.s):
            raise ValueError(f"scenarios shape {demand.samples.shape} != {(self.n, self.s)}")
        n = self.n

        def vec(v: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()

        p, c, h, g, s, base = (vec(v) for v in (price, unit_cost, holding, shortage, salvage,
                                               on_hand))
        critical_ratio(p, c, h, g, s)  # raises on unbounded economics
        levels = np.broadcast_to(self.levels, (n, self.s + 1))
        cuts = (demand.mean[:, None] - demand.partial_expectation(levels)
                - (1.0 - levels) * base[:, None])
        self.cuts.value = cuts.ravel()
        self.cost.value = c
        self.net_holding.value = h - s
        self.over.value = p + g + h - s
        if self.budget is not None:
            if budget is None:
                raise ValueError("this newsvendor was built with a budget: pass budget=")
            self.budget.value = float(budget)
        stats = run_solver(self.problem, self.solver, self.solver_options, what="newsvendor LP")
        if stats["status"] != cp.OPTIMAL:
            raise InfeasibleProblemError(f"newsvendor LP is {stats['status']}")
        q = np.maximum(np.asarray(self.q.value, dtype=float), 0.0)
        y = base + q
        const = float(np.sum((h - s) * (base - demand.mean)))
        binding = False
        if self.budget is not None:
            binding = float(c @ q) >= float(budget) * (1 - 1e-6) - 1e-6
        stats["objective"] = float(self.problem.value) + const
        return NewsvendorSolution(q, y, stats["objective"], binding, stats)
