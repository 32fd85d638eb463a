"""Cut levels of the expected-shortage tangents (where the LP is exact).

The network LP (:mod:`~stockcast.optimization.problem`) represents each demand node's
expected shortage ``E(D - y)+`` by tangents at a few quantile levels ``u`` (its *cut
levels*). Between cut levels the cost is a lower bound, so levels are placed where
positions will land: ``0`` and ``1``, a one-atom bracket ``((k-1)/n, k/n)`` around the
node's critical ratio (an unconstrained node lands exactly on the closed-form quantile),
levels below and above it (budget-starved or overstocked nodes are priced well), a bracket
at the ratio of stock pulled from a neighbour's surplus (:func:`transfer_ratio`) and, when
a budget binds, a bracket at the budget-adjusted ratio estimated from the closed form with
the budget's Lagrange multiplier (:func:`budget_adjusted_ratio`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stockcast.optimization.distribution import EmpiricalDemand
from stockcast.optimization.network import Network

#: Fractions of the critical ratio used as cut levels below it, and fractions of the gap
#: to 1 used above it (plus the bracket around the ratio itself and the levels 0 and 1).
CUTS_BELOW = (0.0, 0.35, 0.6, 0.8)
CUTS_ABOVE = (0.3, 0.6, 0.85, 1.0)


def cut_levels(cr: np.ndarray, n_atoms: int, extra: Sequence[np.ndarray | None] = (), *,
               exact: bool = False) -> np.ndarray:
    """Per-node cut levels ``(N, W)`` around each critical ratio (see module docstring).

    Args:
        cr: Critical ratio per demand node.
        n_atoms: Atoms of the demand distributions (the bracket is one atom wide).
        extra: Further ratios per node (NaN = none for that node): the budget-adjusted
            ratio (:func:`budget_adjusted_ratio`) and the transfer ratio
            (:func:`transfer_ratio`); each adds a one-atom bracket so a node held back by the
            budget, or topped up from a neighbour's surplus, lands exactly on an atom too.
        exact: Use every atom level ``0, 1/n, ..., 1`` (the full scenario LP: exact, but
            ``n + 1`` rows per node instead of about 10).
    """
    cr = np.clip(np.asarray(cr, dtype=float), 0.0, 1.0)
    if exact:
        return np.broadcast_to(np.arange(n_atoms + 1) / n_atoms, (len(cr), n_atoms + 1)).copy()

    def bracket(ratio: np.ndarray) -> np.ndarray:
        k = np.clip(np.ceil(np.nan_to_num(ratio) * n_atoms - 1e-9), 1, n_atoms)
        out = np.stack([(k - 1) / n_atoms, k / n_atoms], axis=1)
        out[np.isnan(ratio)] = np.nan  # no extra bracket for this node
        return out

    below = cr[:, None] * np.asarray(CUTS_BELOW)[None, :]
    above = cr[:, None] + (1.0 - cr[:, None]) * np.asarray(CUTS_ABOVE)[None, :]
    parts = [below, bracket(cr), above]
    for ratio in extra or ():
        if ratio is not None:
            parts.append(bracket(np.clip(np.asarray(ratio, dtype=float), 0.0, 1.0)))
    return np.concatenate(parts, axis=1)


def transfer_ratio(net: Network, price: np.ndarray, cr: np.ndarray, n_atoms: int) -> np.ndarray:
    """Critical ratio of stock pulled from a neighbour with surplus, per demand node.

    A unit moved in from a node with stock costs the lane's landed cost plus the sender's
    leftover value (``salvage - holding`` there); when that is cheaper than the reference
    path the node's answer sits at ``(b - c_transfer) / (b + o)`` instead. NaN where no
    stocked neighbour can send or the ratio is not above ``cr``.
    """
    nodes, lanes = net.nodes, net.lanes
    dem = net.demand_nodes
    out = np.full(len(dem), np.nan)
    if not len(lanes):
        return out
    src = lanes["from_node"].to_numpy()
    stocked = nodes["on_hand"].to_numpy()[src] > 0
    value = (nodes["salvage_value"] - nodes["holding_cost"]).to_numpy()[src]
    cost = np.full(net.n_nodes, np.inf)
    np.minimum.at(cost, lanes["to_node"].to_numpy()[stocked],
                  (lanes["landed_cost"].to_numpy() + value)[stocked])
    c_t = cost[dem]
    b = price + nodes["shortage_cost"].to_numpy()[dem]
    o = (nodes["holding_cost"] - nodes["salvage_value"]).to_numpy()[dem]
    with np.errstate(invalid="ignore"):
        ratio = np.clip((b - c_t) / (b + o), 0.0, 1.0)
    keep = np.isfinite(c_t) & (ratio > cr + 1.0 / n_atoms)
    out[keep] = ratio[keep]
    return out


def budget_ratio(lam: float, under: np.ndarray, over: np.ndarray, ref_cost: np.ndarray,
                 cash_cost: np.ndarray) -> np.ndarray:
    """Critical ratio per node when each unit of spend costs ``lam`` more:
    ``(b - c_i - lam * cash_i) / (b + o)``, clipped to [0, 1]."""
    return np.clip((under - ref_cost - lam * cash_cost) / over, 0.0, 1.0)


def closed_form_spend(demand: EmpiricalDemand, *, under: np.ndarray, over: np.ndarray,
                      ref_cost: np.ndarray, cash_cost: np.ndarray, stock: np.ndarray,
                      lam: float) -> float:
    """Cash spend ``sum cash_i (y_i - stock_i)+`` of the closed form at budget price ``lam``."""
    ratio = budget_ratio(lam, under, over, ref_cost, cash_cost)
    y = np.where(ratio > 0, demand.quantile(ratio), 0.0)
    return float(np.sum(cash_cost * np.maximum(y - stock, 0.0)))


def budget_multiplier(demand: EmpiricalDemand, *, under: np.ndarray, over: np.ndarray,
                      ref_cost: np.ndarray, cash_cost: np.ndarray, stock: np.ndarray,
                      budget: float, iterations: int = 60) -> float | None:
    """The closed form's Lagrange multiplier of a budget (bisection on its spend).

    Returns:
        The smallest price ``lam`` (to bisection accuracy) at which the closed-form spend
        meets ``budget``, or ``None`` when the closed form fits the budget.
    """
    terms = {"under": under, "over": over, "ref_cost": ref_cost, "cash_cost": cash_cost,
             "stock": stock}
    if closed_form_spend(demand, lam=0.0, **terms) <= budget:
        return None
    hi = float(np.max((under - ref_cost) / np.maximum(cash_cost, 1e-12), initial=0.0)) + 1.0
    lo = 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if closed_form_spend(demand, lam=mid, **terms) > budget:
            lo = mid
        else:
            hi = mid
    return hi


def budget_adjusted_ratio(demand: EmpiricalDemand, *, under: np.ndarray, over: np.ndarray,
                          ref_cost: np.ndarray, cash_cost: np.ndarray, stock: np.ndarray,
                          budget: float, iterations: int = 60) -> np.ndarray | None:
    """Critical ratios under the budget's Lagrange multiplier, from the closed form.

    With multiplier ``lam`` on spend, node ``i`` orders up to its quantile at
    ``(b - c_i - lam * cash_i) / (b + o)``; bisection finds the ``lam`` at which the
    closed-form spend ``sum cash_i (y_i - stock_i)+`` meets the budget
    (:func:`budget_multiplier`). Used only to place cut levels where budget-limited
    positions will land.

    Returns:
        The adjusted ratio per node, or ``None`` when the closed form fits the budget.
    """
    lam = budget_multiplier(demand, under=under, over=over, ref_cost=ref_cost,
                            cash_cost=cash_cost, stock=stock, budget=budget,
                            iterations=iterations)
    return None if lam is None else budget_ratio(lam, under, over, ref_cost, cash_cost)
