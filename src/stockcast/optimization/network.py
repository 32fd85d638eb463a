"""The planning network: nodes, supplier arcs, item-lanes, landed costs, disruptions.

**Graph (per item).** A *node* is an item at a location: every item-location of the
forecast (demand nodes) plus the item's DC rows in ``economics`` (stock-holding nodes
without own demand). *Supplier arcs* go from a supplier to every node of its item
(``ships_to = all``) or to the item's node at one DC. *Lanes* carry every item between
two locations that both hold it (DC->store, store->store laterals, store->DC).

**Landed cost of a supplier arc** (how lead time and reliability change the choice)::

    unit_cost
      + holding_cost * lead_time_mean                    (pipeline stock, if enabled)
      + holding_cost * spread_weight * lead_time_std     (buffer for lead-time spread)
      + (1 - reliability) * late_loss_share * (1 - CR0) * (price + shortage_cost)

the last term being the expected lost margin and goodwill of a late unit (``1 - CR0`` is
the chance the marginal unit would have sold, ``CR0`` the node's list-price critical
ratio). A lane's landed cost is its transfer cost plus pipeline holding over its lead
time. Spend (budget) counts cash only: supplier unit cost (and transfer cost).

**Reference path.** Each node's cheapest landed way to be replenished: a direct supplier
arc, or a supplier into a DC plus the DC->node lane. Its lead time (mean, spread) plus the
review period is the node's protection period
(:func:`~stockcast.optimization.distribution.protection_samples`).

**Disruptions** (:class:`DisruptionSpec`, :func:`disrupt`) change supplier capacities and
lead times; landed costs and reference paths are recomputed.

The decisions and the CVXPY problem over this graph are in
:mod:`~stockcast.optimization.problem`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from stockcast.data.supply import SHIPS_TO_ALL, SupplyTables
from stockcast.data.validation import raise_if
from stockcast.errors import Issue
from stockcast.optimization.distribution import NODE_KEYS
from stockcast.optimization.newsvendor import critical_ratio
from stockcast.schema import table_sha256


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
    return _graph(demand_keys, supply, table).network(supply.economics, costs or CostModel())


@dataclass
class _Graph:
    """The stock-free part of a planning graph: nodes (``econ_row``: their row in
    ``economics``), arcs, every item-lane and the groups; :meth:`network` adds a stock."""

    net: Network
    econ_row: np.ndarray
    supplied: np.ndarray
    priced: OrderedDict = field(default_factory=OrderedDict)

    def network(self, econ: pd.DataFrame, costs: CostModel, keep: int = 0) -> Network:
        """The network at the stock of ``econ`` (rows as when the graph was built): lanes
        leave only nodes that hold stock or are supplied, landed costs and reference paths
        priced; ``keep`` priced networks are remembered by their set of lanes."""
        on_hand = econ["on_hand"].to_numpy(float)[self.econ_row]
        in_transit = econ["in_transit"].to_numpy(float)[self.econ_row]
        lanes = self.net.lanes
        mask = ((on_hand > 0) | self.supplied)[lanes["from_node"].to_numpy()]
        key = (np.packbits(mask).tobytes(), repr(costs))
        net = self.priced.get(key)
        if net is None:
            net = price_network(replace(self.net, lanes=lanes[mask].reset_index(drop=True)),
                                costs)
            if keep:
                self.priced[key] = net
                while len(self.priced) > keep:
                    self.priced.popitem(last=False)
        elif keep:
            self.priced.move_to_end(key)
        nodes = net.nodes.copy()
        nodes["on_hand"] = on_hand
        nodes["in_transit"] = in_transit
        return replace(net, nodes=nodes)


def _graph(demand_keys: pd.DataFrame, supply: SupplyTables, table: str) -> _Graph:
    econ = supply.economics.assign(_row=np.arange(len(supply.economics)))
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
    econ_row = nodes.pop("_row").to_numpy(int)
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

    # item-lanes (all of them: which may carry stock depends on the stock) ------------------
    ln = supply.lanes
    node_loc = nodes[["item_id", "location_id"]].assign(node=np.arange(len(nodes)))
    lanes = ln.merge(node_loc.rename(columns={"location_id": "from_id", "node": "from_node"}),
                     on="from_id")
    lanes = lanes.merge(node_loc.rename(columns={"location_id": "to_id", "node": "to_node"}),
                        on=["item_id", "to_id"])
    supplied = np.zeros(len(nodes), bool)
    supplied[arcs["node"].to_numpy()] = True
    lanes = lanes.sort_values(["from_node", "to_node"], kind="stable").reset_index(drop=True)
    lanes = lanes[["item_id", "from_id", "to_id", "from_node", "to_node", "transfer_cost",
                   "lead_time"]]
    locations = locs[["location_id", "echelon", "capacity"]].copy()
    return _Graph(Network(nodes, arcs, lanes, groups, locations, items), econ_row, supplied)


#: Economics columns a re-plan may change without rebuilding the graph.
STOCK_COLUMNS = ("on_hand", "in_transit")


class NetworkCache:
    """Planning graphs of recent plans, reused when only the stock changed.

    Owned by whoever plans the same network repeatedly (a
    :class:`~stockcast.optimization.plan.Planner`: a backtest re-plans the same tables at
    every review with the simulated stock). A graph is keyed by a hash of the demand keys
    and of every supply table except the stock columns (:data:`STOCK_COLUMNS`); its priced
    networks by the lanes the stock opens. The result equals :func:`build_network`'s.

    Args:
        size: Graphs kept (least recently used dropped beyond it); each keeps up to
            ``priced`` priced networks.
    """

    def __init__(self, size: int = 4, priced: int = 4) -> None:
        if size < 1 or priced < 1:
            raise ValueError("NetworkCache sizes must be >= 1")
        self.size, self.keep = size, priced
        self._graphs: OrderedDict[str, _Graph] = OrderedDict()
        self.built = 0

    def __len__(self) -> int:
        return len(self._graphs)

    def build(self, demand_keys: pd.DataFrame, supply: SupplyTables,
              costs: CostModel | None = None, *, table: str = "forecast") -> Network:
        """:func:`build_network` through the cache."""
        key = _graph_key(demand_keys, supply, table)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = _graph(demand_keys, supply, table)
            self.built += 1
            while len(self._graphs) > self.size:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        return graph.network(supply.economics, costs or CostModel(), keep=self.keep)


def _graph_key(demand_keys: pd.DataFrame, supply: SupplyTables, table: str) -> str:
    frames = (demand_keys[NODE_KEYS],
              supply.economics.drop(columns=list(STOCK_COLUMNS), errors="ignore"),
              supply.suppliers, supply.lanes, supply.locations)
    return hashlib.sha1("|".join([table, *map(table_sha256, frames)]).encode()).hexdigest()


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
