"""Multi-location network plan as ONE CVXPY problem: orders, transfers, positions.

**Graph (per item).** A *node* is an item at a location: every item-location of the
forecast (demand nodes) plus the item's DC rows in ``economics`` (stock-holding nodes
without own demand). *Supplier arcs* go from a supplier to every node of its item
(``ships_to = all``) or to the item's node at one DC. *Lanes* carry every item between
two locations that both hold it (DC->store, store->store laterals, store->DC).

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
the tangent touches at ``y = Q(u)``). This shortage form keeps the objective terms small
(no large ``-b y`` cancelling a large leftover term), which the interior-point solver
needs. Cut levels: ``0`` and ``1``, a one-atom bracket ``((k-1)/n, k/n)`` around the
node's critical ratio (so an unconstrained node lands exactly on the closed-form quantile),
levels below and above it (so budget-starved or overstocked nodes are priced well), a
bracket at the ratio of stock pulled from a neighbour's surplus (:func:`transfer_ratio`)
and, when a budget binds, a bracket at the budget-adjusted ratio estimated from the closed
form with the budget's Lagrange multiplier (:func:`budget_adjusted_ratio`). Between cut
levels the cost is a lower bound, so a position held back by a constraint other than the
budget is accurate to the cut spacing; reported KPIs are always exact expected values at
the chosen positions. The cut rows are constant; only their right-hand sides are
parameters.

**Landed cost of a supplier arc** (how lead time and reliability change the choice)::

    unit_cost
      + holding_cost * lead_time_mean                    (pipeline stock, if enabled)
      + holding_cost * spread_weight * lead_time_std     (buffer for lead-time spread)
      + (1 - reliability) * late_loss_share * (1 - CR0) * (price + shortage_cost)

the last term being the expected lost margin and goodwill of a late unit (``1 - CR0`` is
the chance the marginal unit would have sold, ``CR0`` the node's list-price critical
ratio). A lane's landed cost is its transfer cost plus pipeline holding over its lead
time. Spend (budget) counts cash only: supplier unit cost (and transfer cost).

**Protection period.** Each demand node's demand distribution covers its *reference
path*: the cheapest landed way to replenish it (a direct supplier arc, or a supplier into
a DC plus the DC->node lane); its lead time (mean, spread) plus the review period
(:func:`~stockcast.optimization.distribution.protection_samples`).

**Constraints** (each one vectorized; parameters in right-hand sides only):
position balance; cuts; transfers out of a node <= its on-hand + what its suppliers
deliver (in-transit stock cannot be moved); supplier capacity per supplier x item;
location capacity (sum of positions over items); optional budget on spend; optional
minimum cycle service level per node (``y >= Q(alpha)``); optional network-wide safety
stock per item (``sum_nodes y >= sum mean + z sqrt(sum var)``, pooled over independent
nodes); optional minimum order quantities (binary ``z``: ``moq z <= x <= cap z``, a MIP
solved with HiGHS).

The CVXPY problem is built once per *structure* (graph, cut levels, enabled constraints,
cash costs, MOQs) and cached; new forecasts, prices, stock, capacities, budgets and
supplier outages only change parameter values and re-solve.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stockcast.data.supply import SHIPS_TO_ALL, SupplyTables
from stockcast.data.validation import raise_if
from stockcast.errors import InfeasibleProblemError, Issue
from stockcast.optimization.distribution import NODE_KEYS, EmpiricalDemand
from stockcast.optimization.newsvendor import critical_ratio, epigraph_matrices
from stockcast.optimization.solving import run_solver

#: Fractions of the critical ratio used as cut levels below it, and fractions of the gap
#: to 1 used above it (plus the bracket around the ratio itself and the levels 0 and 1).
CUTS_BELOW = (0.0, 0.35, 0.6, 0.8)
CUTS_ABOVE = (0.3, 0.6, 0.85, 1.0)


@dataclass
class CostModel:
    """How lead time and reliability enter the landed cost (see module docstring).

    Args:
        pipeline_holding: Charge holding cost over the mean lead time.
        lead_time_spread_weight: Periods of holding charged per period of lead-time std.
        late_loss_share: Share of a late unit's expected margin + goodwill that is lost.
    """

    pipeline_holding: bool = True
    lead_time_spread_weight: float = 1.0
    late_loss_share: float = 1.0


@dataclass
class Network:
    """Nodes, supplier arcs, item-lanes and capacity groups of one planning problem.

    Attributes:
        nodes: One row per node (index = node id): ``item_id``, ``location_id``,
            ``echelon``, ``demand`` (has a forecast), economics columns, ``loc``/``item``
            (integer codes), ``cr0`` (list-price critical ratio) and the reference path
            (``ref_cost`` landed, ``ref_cash``, ``ref_lead_mean``, ``ref_lead_std``,
            ``ref_source``, ``has_source``).
        arcs: One row per supplier arc: ``supplier_id``, ``item_id``, ``node``, ``group``,
            ``cash_cost``, ``landed_cost``, ``premium``, lead time, reliability, ``moq``.
        lanes: One row per item-lane: ``item_id``, ``from_node``, ``to_node``, ``from_id``,
            ``to_id``, ``transfer_cost``, ``lead_time``, ``landed_cost``.
        groups: Supplier x item capacity groups: ``supplier_id``, ``item_id``,
            ``capacity``, ``min_order_qty``, ``row`` (row in the suppliers table).
        locations: ``location_id``, ``echelon``, ``capacity`` (index = ``loc`` code).
        items: Item ids (index = ``item`` code).
    """

    nodes: pd.DataFrame
    arcs: pd.DataFrame
    lanes: pd.DataFrame
    groups: pd.DataFrame
    locations: pd.DataFrame
    items: pd.Index

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def demand_nodes(self) -> np.ndarray:
        """Node ids with a forecast, in forecast order."""
        return np.flatnonzero(self.nodes["demand"].to_numpy())

    @property
    def other_nodes(self) -> np.ndarray:
        """Node ids without own demand (DC stock)."""
        return np.flatnonzero(~self.nodes["demand"].to_numpy())


def build_network(
    demand_keys: pd.DataFrame,
    supply: SupplyTables,
    costs: CostModel | None = None,
    *,
    table: str = "forecast",
) -> Network:
    """Assemble the planning graph for the forecast's item-locations.

    Args:
        demand_keys: ``item_id``, ``location_id`` of every forecast node (unique, in the
            order of the demand arrays).
        supply: *Validated* supply tables (:func:`~stockcast.data.supply.validate_supply`).
        costs: Landed-cost model.
        table: Name of the forecast table in error messages.

    Raises:
        DataValidationError: Forecast item-locations without economics rows; suppliers
            shipping a forecast item to a DC that has no economics row for it.
    """
    costs = costs or CostModel()
    econ = supply.economics
    locs = supply.locations.reset_index(drop=True)
    loc_code = pd.Series(np.arange(len(locs)), index=locs["location_id"])
    echelon = locs.set_index("location_id")["echelon"]

    keys = demand_keys[NODE_KEYS].reset_index(drop=True)
    dem = keys.merge(econ, on=NODE_KEYS, how="left", indicator=True)
    missing = dem["_merge"] == "left_only"
    if missing.any():
        examples = ", ".join(
            f"{i}@{loc}" for i, loc in dem.loc[missing, NODE_KEYS].head(5).itertuples(index=False)
        )
        raise_if([Issue(table, "location_id", "economics_row",
                        f"{int(missing.sum())} forecast item-location(s) have no economics row, "
                        f"e.g. {examples}", [int(i) for i in np.flatnonzero(missing)])])
    dem = dem.drop(columns="_merge").assign(demand=True)
    items = pd.Index(pd.unique(keys["item_id"]))
    dc_rows = econ[econ["item_id"].isin(items) & (econ["location_id"].map(echelon) == "dc")]
    dc_rows = dc_rows.merge(keys, on=NODE_KEYS, how="left", indicator=True)
    dc_rows = dc_rows[dc_rows["_merge"] == "left_only"].drop(columns="_merge").assign(demand=False)
    nodes = pd.concat([dem, dc_rows], ignore_index=True)
    nodes["echelon"] = nodes["location_id"].map(echelon)
    nodes["loc"] = nodes["location_id"].map(loc_code).astype(int)
    nodes["item"] = pd.Index(items).get_indexer(nodes["item_id"])
    nodes["cr0"] = critical_ratio(nodes["price"], nodes["unit_cost"], nodes["holding_cost"],
                                  nodes["shortage_cost"], nodes["salvage_value"])
    node_id = pd.Series(np.arange(len(nodes)), index=pd.MultiIndex.from_frame(nodes[NODE_KEYS]))

    # supplier x item groups and arcs --------------------------------------------------------
    sup = supply.suppliers
    groups = sup[sup["item_id"].isin(items)].copy()
    groups["row"] = groups.index.astype(int)
    groups = groups.reset_index(drop=True)
    groups["group"] = np.arange(len(groups))
    to_all = groups[groups["ships_to"] == SHIPS_TO_ALL].merge(
        nodes[["item_id", "location_id"]].assign(node=np.arange(len(nodes))), on="item_id")
    to_dc = groups[groups["ships_to"] != SHIPS_TO_ALL].copy()
    idx = pd.MultiIndex.from_arrays([to_dc["item_id"], to_dc["ships_to"]])
    to_dc["node"] = node_id.reindex(idx).to_numpy()
    lost = to_dc["node"].isna()
    if lost.any():
        raise_if([Issue("suppliers", "ships_to", "economics_row_at_dc",
                        "supplier ships a forecast item to a DC without an economics row for "
                        "that item (add the DC row: on_hand, costs)",
                        sorted(int(r) for r in to_dc.loc[lost, "row"]))])
    to_dc["location_id"] = to_dc["ships_to"]
    arcs = pd.concat([to_all, to_dc], ignore_index=True)
    arcs["node"] = arcs["node"].astype(int)
    arcs = arcs.rename(columns={"unit_cost": "cash_cost", "min_order_qty": "moq"})
    arcs = arcs[["supplier_id", "item_id", "location_id", "node", "group", "cash_cost",
                 "lead_time_mean", "lead_time_std", "reliability", "moq"]]
    arcs = arcs.sort_values(["node", "group"], kind="stable").reset_index(drop=True)

    # item-lanes ---------------------------------------------------------------------------
    ln = supply.lanes
    node_loc = nodes[["item_id", "location_id"]].assign(node=np.arange(len(nodes)))
    lanes = ln.merge(node_loc.rename(columns={"location_id": "from_id", "node": "from_node"}),
                     on="from_id")
    lanes = lanes.merge(node_loc.rename(columns={"location_id": "to_id", "node": "to_node"}),
                        on=["item_id", "to_id"])
    supplied = np.zeros(len(nodes), bool)
    supplied[arcs["node"].to_numpy()] = True
    can_ship = (nodes["on_hand"].to_numpy() > 0) | supplied
    lanes = lanes[can_ship[lanes["from_node"].to_numpy()]]
    lanes = lanes.sort_values(["from_node", "to_node"], kind="stable").reset_index(drop=True)
    lanes = lanes[["item_id", "from_id", "to_id", "from_node", "to_node", "transfer_cost",
                   "lead_time"]]
    locations = locs[["location_id", "echelon", "capacity"]].copy()
    net = Network(nodes, arcs, lanes, groups, locations, items)
    return price_network(net, costs)


def price_network(net: Network, costs: CostModel) -> Network:
    """(Re)compute landed costs and reference paths (after lead times changed)."""
    nodes, arcs, lanes = net.nodes.copy(), net.arcs.copy(), net.lanes.copy()
    n_of = arcs["node"].to_numpy()
    h = nodes["holding_cost"].to_numpy()[n_of]
    margin = (nodes["price"] + nodes["shortage_cost"]).to_numpy()[n_of]
    cr0 = nodes["cr0"].to_numpy()[n_of]
    pipeline = h * arcs["lead_time_mean"].to_numpy() if costs.pipeline_holding else 0.0
    spread = h * costs.lead_time_spread_weight * arcs["lead_time_std"].to_numpy()
    late = (1.0 - arcs["reliability"].to_numpy()) * costs.late_loss_share * (1.0 - cr0) * margin
    arcs["premium"] = pipeline + spread + late
    arcs["landed_cost"] = arcs["cash_cost"] + arcs["premium"]
    h_to = nodes["holding_cost"].to_numpy()[lanes["to_node"].to_numpy()]
    lane_pipe = h_to * lanes["lead_time"].to_numpy() if costs.pipeline_holding else 0.0
    lanes["landed_cost"] = lanes["transfer_cost"] + lane_pipe
    net = replace(net, nodes=nodes, arcs=arcs, lanes=lanes)
    net.nodes = _reference_paths(net)
    return net


def _reference_paths(net: Network, available: np.ndarray | None = None) -> pd.DataFrame:
    """Cheapest landed replenishment path per node: direct arc or supplier -> DC -> node."""
    nodes, arcs, lanes = net.nodes.copy(), net.arcs, net.lanes
    cap = net.groups["capacity"].to_numpy()
    usable = cap[arcs["group"].to_numpy()] > 0 if available is None else available
    a = arcs[usable]
    n = len(nodes)
    cost = np.full(n, np.inf)
    cash = np.full(n, np.nan)
    lead, std = np.zeros(n), np.zeros(n)
    source = np.array(["none"] * n, dtype=object)
    if len(a):
        best = a.loc[a.groupby("node")["landed_cost"].idxmin()]
        b_node = best["node"].to_numpy()
        cost[b_node] = best["landed_cost"].to_numpy()
        cash[b_node] = best["cash_cost"].to_numpy()
        lead[b_node] = best["lead_time_mean"].to_numpy()
        std[b_node] = best["lead_time_std"].to_numpy()
        source[b_node] = best["supplier_id"].to_numpy()
        is_dc = (nodes["echelon"] == "dc").to_numpy()
        via = lanes[is_dc[lanes["from_node"].to_numpy()]]
        via = via[np.isfinite(cost[via["from_node"].to_numpy()])]
        if len(via):
            f = via["from_node"].to_numpy()
            v_cost = cost[f] + via["landed_cost"].to_numpy()
            v_cash = cash[f] + via["transfer_cost"].to_numpy()
            labels = [f"{s} via {d}" for s, d in zip(source[f], via["from_id"], strict=True)]
            v = pd.DataFrame({"node": via["to_node"].to_numpy(), "cost": v_cost,
                              "lead": lead[f] + via["lead_time"].to_numpy(), "std": std[f],
                              "source": labels, "cash": v_cash})
            v = v.loc[v.groupby("node")["cost"].idxmin()]
            t = v["node"].to_numpy()
            better = v["cost"].to_numpy() < cost[t] - 1e-12
            t = t[better]
            cost[t] = v["cost"].to_numpy()[better]
            cash[t] = v["cash"].to_numpy()[better]
            lead[t] = v["lead"].to_numpy()[better]
            std[t] = v["std"].to_numpy()[better]
            source[t] = v["source"].to_numpy()[better]
    nodes["has_source"] = np.isfinite(cost)
    nodes["ref_cost"] = np.where(np.isfinite(cost), cost, nodes["unit_cost"].to_numpy())
    nodes["ref_cash"] = np.where(np.isfinite(cost), cash, nodes["unit_cost"].to_numpy())
    nodes["ref_lead_mean"] = lead
    nodes["ref_lead_std"] = std
    nodes["ref_source"] = source
    return nodes


def keep_lanes(net: Network, keep: np.ndarray) -> Network:
    """The network with only the item-lanes where ``keep`` is true."""
    return replace(net, lanes=net.lanes[np.asarray(keep, bool)].reset_index(drop=True))


def surplus_lanes(net: Network, target: np.ndarray) -> np.ndarray:
    """Lanes worth offering: from DCs, or from item-locations holding more than their target.

    Args:
        net: The network.
        target: Unconstrained order-up-to level per demand node.

    Returns:
        Boolean mask over ``net.lanes``.
    """
    surplus = np.ones(net.n_nodes, bool)
    dem = net.demand_nodes
    stock = (net.nodes["on_hand"] + net.nodes["in_transit"]).to_numpy()
    surplus[dem] = stock[dem] > target * (1 + 1e-9)
    return surplus[net.lanes["from_node"].to_numpy()]


@dataclass
class DisruptionSpec:
    """A supply disruption to re-plan under.

    Args:
        supplier_id: The supplier affected.
        down: The supplier delivers nothing (capacity 0).
        lead_time_factor: Multiplies its lead-time mean and spread (>= 0).
        capacity_factor: Multiplies its capacity (0..1).
        items: Restrict to these items (default: all of the supplier's items).
        name: Label in reports (default derived from the fields).
    """

    supplier_id: str
    down: bool = False
    lead_time_factor: float = 1.0
    capacity_factor: float = 1.0
    items: tuple[str, ...] | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [self.supplier_id]
        if self.down:
            parts.append("down")
        if self.lead_time_factor != 1.0:
            parts.append(f"lead_time x{self.lead_time_factor:g}")
        if self.capacity_factor != 1.0:
            parts.append(f"capacity x{self.capacity_factor:g}")
        return " ".join(parts)


def disrupt(net: Network, spec: DisruptionSpec, costs: CostModel) -> Network:
    """The network under a disruption (landed costs and reference paths recomputed).

    Raises:
        ValueError: Unknown supplier or factors out of range.
    """
    if spec.lead_time_factor < 0 or not 0 <= spec.capacity_factor <= 1:
        raise ValueError("disruption: lead_time_factor must be >= 0, capacity_factor in [0, 1]")
    hit = net.groups["supplier_id"] == spec.supplier_id
    if spec.items is not None:
        hit &= net.groups["item_id"].isin([str(i) for i in spec.items])
    if not hit.any():
        raise ValueError(f"disruption: supplier {spec.supplier_id!r} supplies none of the "
                         "planned items")
    groups = net.groups.copy()
    factor = 0.0 if spec.down else spec.capacity_factor
    groups.loc[hit, "capacity"] = groups.loc[hit, "capacity"] * factor
    arcs = net.arcs.copy()
    a_hit = hit.to_numpy()[arcs["group"].to_numpy()]
    for c in ("lead_time_mean", "lead_time_std"):
        arcs.loc[a_hit, c] = arcs.loc[a_hit, c] * spec.lead_time_factor
    return price_network(replace(net, groups=groups, arcs=arcs), costs)


# --------------------------------------------------------------------------------------
# the CVXPY problem
# --------------------------------------------------------------------------------------


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


def budget_adjusted_ratio(demand: EmpiricalDemand, *, under: np.ndarray, over: np.ndarray,
                          ref_cost: np.ndarray, cash_cost: np.ndarray, stock: np.ndarray,
                          budget: float, iterations: int = 60) -> np.ndarray | None:
    """Critical ratios under the budget's Lagrange multiplier, from the closed form.

    With multiplier ``lam`` on spend, node ``i`` orders up to its quantile at
    ``(b - c_i - lam * cash_i) / (b + o)``; bisection finds the ``lam`` at which the
    closed-form spend ``sum cash_i (y_i - stock_i)+`` meets the budget. Used only to place
    cut levels where budget-limited positions will land.

    Returns:
        The adjusted ratio per node, or ``None`` when the closed form fits the budget.
    """
    def spend(lam: float) -> tuple[float, np.ndarray]:
        ratio = np.clip((under - ref_cost - lam * cash_cost) / over, 0.0, 1.0)
        y = np.where(ratio > 0, demand.quantile(ratio), 0.0)
        return float(np.sum(cash_cost * np.maximum(y - stock, 0.0))), ratio

    total, _ = spend(0.0)
    if total <= budget:
        return None
    hi = float(np.max((under - ref_cost) / np.maximum(cash_cost, 1e-12), initial=0.0)) + 1.0
    lo = 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if spend(mid)[0] > budget:
            lo = mid
        else:
            hi = mid
    return spend(hi)[1]


@dataclass(frozen=True)
class Flags:
    """Which optional constraints the problem has."""

    budget: bool = False
    budget_transfers: bool = True
    service: bool = False
    safety_stock: bool = False
    moq: bool = False


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
        c["location_capacity"] = l_y @ self.y <= p["loc_cap"] + soft("location_capacity", n_locs)
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
        if not self.problem.is_dcp(dpp=True):  # pragma: no cover - by construction
            raise RuntimeError("network problem is not DPP")
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
        stats = run_solver(self.problem, name, options, what="network plan")
        stats["setup_time_s"] = (self.build_time_s + compile_s) if first else stats["setup_time_s"]
        stats["compiled_now"] = first
        stats["mip"] = self.is_mip
        if stats["objective"] is not None:
            stats["objective"] += v.constant
        return stats


_CACHE: OrderedDict[str, NetworkProblem] = OrderedDict()
CACHE_SIZE = 4


def structure_key(net: Network, levels: np.ndarray, flags: Flags) -> str:
    """Hash of everything baked into the problem matrices."""
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


def network_problem(net: Network, levels: np.ndarray, flags: Flags) -> NetworkProblem:
    """Cached :class:`NetworkProblem` for this structure (built on first use)."""
    key = structure_key(net, levels, flags)
    if key not in _CACHE:
        _CACHE[key] = NetworkProblem(net, levels, flags)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


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
    """Check inputs, solve the (cached) network problem and read the solution.

    Raises:
        InfeasibleProblemError: Naming the constraint(s) and items/locations at fault.
        SolverFailedError: When the solver fails or is inaccurate.
    """
    precheck(net, flags, values)
    prob = problem or network_problem(net, levels, flags)
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
