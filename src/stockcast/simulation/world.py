"""The simulated world of a backtest: series, demand, economics, routes and lead times.

:func:`build_window` aligns everything :func:`~stockcast.simulation.engine.simulate` needs
on one set of series x the periods of a window (:class:`Window`); :func:`build_world` does
it for a dataset (reading the generator's truth where there is one). The rules of the
simulated network (deliberate):

* series = the store item-locations (customer demand) + the DC item-nodes of their items
  (stock, no customer demand), in the optimizer's node order;
* routes (:class:`Routes`): each store is replenished on the cheapest landed path of the
  optimizer's network (its supplier directly, or a supplier's DC then the DC -> store
  lane); a DC from its cheapest supplier. Safety-stock policies and the oracle follow these
  routes (DCs run echelon base stock for the stores they feed); the optimizer policies
  execute their plan (any supplier, DC -> store and lateral transfers);
* suppliers ship at most their ``capacity`` per review (``Window.capacity``: orders beyond
  it are cut pro rata for every policy alike, except the oracle, which as a bound also
  ignores capacity); storage capacities of locations are not simulated;
* DC first: a store that orders from its supplier first gets its parent DC's stock when
  that DC feeds no store (initial DC stock would otherwise sit idle for the rule-based
  policies); the optimizer policies apply the same rule to their plan's store orders;
* realised lead time of an order placed at ``t`` with supplier ``s``: synthetic = the
  generator's ``truth_lead_times`` of ``s`` at ``t`` (rounded, incl. delays and
  disruptions); otherwise ``round(lead_time_mean) + round(|Z|·lead_time_std)`` with one
  seeded ``Z`` per series and period (shared by the suppliers); planned = the rounded
  mean; lanes take their stated lead time;
* markdown rule: demand at a marked-down price = actual demand x ``(price/list)^elasticity``
  with the world's elasticity (:func:`world_elasticity`): synthetic = the generator's true
  per-item elasticity, otherwise an assumed value;
* forecasts are made at every review origin (:meth:`Window.review_origins`: the last
  observed period before each review) for ``Window.plan_horizon`` steps (``ceil(max
  planned store lead) + R``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.data.supply import SupplyTables, validate_supply
from stockcast.optimization.network import CostModel, build_network
from stockcast.schema import GROUP_IDS, TIME_IDX
from stockcast.simulation.engine import Decision, Economics, SimView, SupplierCapacity


@dataclass
class Routes:
    """How each series is replenished (arrays of length ``n_series``).

    Attributes:
        lead: Planned lead time of the series' own replenishment (supplier lead time, or
            the DC -> store lane lead time for DC-fed stores).
        source: Index of the DC series that feeds the series, ``-1`` = its own supplier.
        lane_cost: Transfer cost per unit on the DC -> store lane (0 where ``source < 0``).
        is_dc: The series is a DC item-node (no customer demand).
        can_order: The series has a supplier (route orders of others are dropped).
        parent: For a store ordering from its supplier: its parent DC's series when that DC
            feeds no store (its stock is handed out first, "DC first"), else ``-1``.
        parent_lead: Lane lead time parent DC -> store.
        parent_cost: Lane transfer cost per unit parent DC -> store.
    """

    lead: np.ndarray
    source: np.ndarray
    lane_cost: np.ndarray
    is_dc: np.ndarray
    can_order: np.ndarray
    parent: np.ndarray | None = None
    parent_lead: np.ndarray | None = None
    parent_cost: np.ndarray | None = None

    @classmethod
    def direct(cls, lead: np.ndarray) -> Routes:
        """Every series is a store ordering from its own supplier (single echelon)."""
        lead = np.asarray(lead, dtype=int)
        n = len(lead)
        return cls(lead, np.full(n, -1), np.zeros(n), np.zeros(n, bool), np.ones(n, bool))

    def __post_init__(self) -> None:
        n = len(self.lead)
        self.lead = np.asarray(self.lead, dtype=int)
        self.source = np.asarray(self.source, dtype=int)
        self.lane_cost = np.asarray(self.lane_cost, dtype=float)
        self.is_dc = np.asarray(self.is_dc, dtype=bool)
        self.can_order = np.asarray(self.can_order, dtype=bool)
        self.parent = np.full(n, -1) if self.parent is None else np.asarray(self.parent, int)
        self.parent_lead = (np.zeros(n, int) if self.parent_lead is None
                            else np.asarray(self.parent_lead, int))
        self.parent_cost = (np.zeros(n) if self.parent_cost is None
                            else np.asarray(self.parent_cost, float))
        self.fed = np.flatnonzero(self.source >= 0)
        self.drawing = np.flatnonzero(self.parent >= 0)
        if (self.parent[self.drawing] == self.source[self.drawing]).any() or np.isin(
                self.parent[self.drawing], self.source[self.fed]).any():
            raise ValueError("Routes: a DC that feeds stores cannot also hand out stock first")

    @property
    def n(self) -> int:
        return len(self.lead)

    def child_sum(self, values: np.ndarray) -> np.ndarray:
        """Per series, the sum of ``values`` over the stores it feeds (0 for others)."""
        return np.bincount(self.source[self.fed], weights=np.asarray(values)[self.fed],
                           minlength=self.n)

    def echelon_lead(self) -> np.ndarray:
        """Per DC: its supplier lead + the longest lane lead time to the stores it feeds."""
        lane = np.zeros(self.n, dtype=int)
        np.maximum.at(lane, self.source[self.fed], self.lead[self.fed])
        return np.where(self.is_dc, self.lead + lane, self.lead)

    def echelon_position(self, view: SimView) -> np.ndarray:
        """Own position, plus the positions of the stores fed (for DCs)."""
        pos = view.position
        return pos + self.child_sum(pos)

    def decision(self, request: np.ndarray, view: SimView | None = None,
                 urgent: np.ndarray | None = None) -> Decision:
        """Route each series' replenishment request.

        DC-fed stores are shipped their request from their DC; a store whose parent DC
        hands out stock first gets what that DC holds (pro rata when several stores ask
        for more than it has) and orders the rest from its supplier; others order from
        their supplier. ``urgent`` is the part of ``request`` only a DC shipment arrives in
        time for (the oracle's): it is not re-ordered from the supplier when the DC falls
        short.
        """
        request = np.maximum(np.nan_to_num(np.asarray(request, dtype=float)), 0.0)
        urgent = np.zeros(self.n) if urgent is None else np.minimum(
            np.maximum(np.nan_to_num(urgent), 0.0), request)
        ship = (self.dc_first(request, view.on_hand) if view is not None
                else np.zeros(self.n))
        order = np.maximum(request - urgent - np.maximum(ship - urgent, 0.0), 0.0)
        order = np.where((self.source < 0) & self.can_order, order, 0.0)
        rows = []
        f = self.fed[request[self.fed] > 1e-9]
        if len(f):
            rows.append(np.column_stack([self.source[f], f, request[f], self.lead[f],
                                         self.lane_cost[f]]))
        shipped = self.shipments(ship)
        if shipped is not None:
            rows.append(shipped)
        return Decision(order, transfers=np.vstack(rows) if rows else None)

    def dc_first(self, request: np.ndarray, have: np.ndarray) -> np.ndarray:
        """Units each store gets from its parent DC's stock ``have`` (pro rata when the
        stores ask that DC for more than it has)."""
        ship = np.zeros(self.n)
        d = self.drawing[np.asarray(request)[self.drawing] > 1e-9]
        if len(d):
            dc = self.parent[d]
            asked = np.bincount(dc, weights=request[d], minlength=self.n)
            have = np.maximum(np.asarray(have, dtype=float), 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(asked > have, have / asked, 1.0)
            ship[d] = request[d] * np.nan_to_num(ratio[dc])
        return ship

    def shipments(self, ship: np.ndarray) -> np.ndarray | None:
        """Transfer rows parent DC -> store for the ``ship`` units (``None`` if none)."""
        g = np.flatnonzero(ship > 1e-9)
        if not len(g):
            return None
        return np.column_stack([self.parent[g], g, ship[g], self.parent_lead[g],
                                self.parent_cost[g]])



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
        review: Review period R (periods between decisions).
        unmet: ``lost`` or ``backorder``: what unmet demand becomes.
        season: Season length of the data (periods per cycle), for seasonal policies;
            ``None`` = unknown.
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
    review: int = 1
    unmet: str = "lost"
    season: int | None = None

    @property
    def echelon(self) -> np.ndarray:
        return self.keys["echelon"].to_numpy()

    def review_origins(self) -> list[int]:
        """Forecast origin (``time_idx`` of the last observed period) of every review."""
        return [self.t0 + t - 1 for t in range(0, len(self.periods), max(int(self.review), 1))]

    @property
    def stores(self) -> pd.DataFrame:
        """Store series keys (the forecast nodes)."""
        return self.keys.loc[self.keys["echelon"] != "dc", GROUP_IDS].reset_index(drop=True)


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
                 review: int = 1, cost_model: CostModel | None = None, *,
                 unmet: str = "lost", season: int | None = None) -> Window:
    """Align demand, history, economics, routes and lead times of the window ``t0..t1``.

    Args:
        panel: Canonical panel (the stores' demand; history before ``t0`` included).
        t0: ``time_idx`` of the first simulated period.
        t1: ``time_idx`` of the last simulated period.
        supply: The four supply tables (full network).
        truth_lead: The generator's realised lead times per supplier and period
            (``truth_lead_times``), or ``None`` (lead times drawn from the suppliers table).
        fixed_order_cost: Cost per order line.
        seed: Seed of the drawn lead times.
        review: Review period R.
        cost_model: The optimizer's landed-cost model (routes = cheapest landed paths).
        unmet: ``lost`` or ``backorder``.
        season: Season length of the data (for seasonal policies).

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
                  names, max(horizon, 1), tables, capacity=capacity, review=int(review),
                  unmet=str(unmet), season=season)


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




def generator_truth(spec: DatasetSpec) -> Path | None:
    """Folder of the dataset generator's truth tables (generated first if needed), or
    ``None`` for a dataset without a generator."""
    if spec.generator is None:
        return None
    from stockcast.data.io import generated_dir, materialize

    materialize(spec)
    return generated_dir(spec)


def build_world(panel: pd.DataFrame, spec: DatasetSpec, supply: SupplyTables, t0: int, t1: int,
                *, review: int = 1, unmet: str = "lost", fixed_order_cost: float = 0.0,
                seed: int = 0, cost_model: CostModel | None = None,
                price_elasticity: float | None = None, season: int | None = None) -> Window:
    """:func:`build_window` for a dataset: realised lead times and the markdown response
    from the generator's truth where the dataset has one (:func:`world_elasticity`), else
    drawn lead times and ``price_elasticity``."""
    truth_dir = generator_truth(spec)
    truth_lead = (pd.read_parquet(truth_dir / "truth_lead_times.parquet")
                  if truth_dir is not None else None)
    win = build_window(panel, t0, t1, supply, truth_lead, fixed_order_cost, seed, review,
                       cost_model, unmet=unmet, season=season)
    win.elasticity = world_elasticity(win, price_elasticity, truth_dir)
    return win
