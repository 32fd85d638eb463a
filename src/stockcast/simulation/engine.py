"""Periodic-review inventory simulation engine (vectorized over series) and its KPIs.

A *series* is one stocking point of one item: a store item-location (it meets customer
demand) or a DC item-node (no customer demand; it ships to stores). Timing of one period
``t`` (all series at once):

1. receipts scheduled for ``t`` arrive (with ``unmet=backorder`` they first clear the backlog);
2. on a review period (``t % review_period == 0``) the policy sees :class:`SimView` (stock,
   pipeline and its due dates, backlog, and the demand of periods ``< t`` only) and
   returns a :class:`Decision`:

   * supplier orders: ``order`` (per series, on the series' own route: it arrives after the
     realised lead time ``lead_times[i, t]``) and order ``lines`` from a named supplier
     (realised lead time ``supplier_leads[s, i, t]``); an order with lead time ``L``
     arrives at the start of ``t + L`` (``L = 0``: at once, usable for the demand of ``t``);
     orders beyond a supplier's capacity per review (shared by everyone ordering the item
     from it) are cut pro rata, for every policy alike;
   * ``transfers`` between series (DC -> store replenishment, store <-> store lateral
     moves): they leave the source at once and arrive after their lane lead time; when the
     requests on a source exceed its stock, every request on it is cut pro rata (the
     shortfall is not carried over: the receiver asks again at its next review);
   * a markdown (price factor; demand responds with the world's ``elasticity``) that holds
     until the next review;
3. customer demand of ``t`` (actual demand x the markdown's demand factor) is served from
   stock; the rest is lost (``unmet=lost``) or backordered (``unmet=backorder``);
4. costs: holding on end-of-period stock, shortage on each unit of unmet demand (lost:
   goodwill ``shortage_cost`` + the lost revenue ``price``; backorder: ``shortage_cost``
   once per unit), ordering = supplier price x qty + ``fixed_order_cost`` per order line,
   transfer cost per unit moved (charged to the receiving series), markdown cost = price
   reduction x units sold at it - list price x the extra demand the markdown created.

Total cost charges the starting stock and credits the stock left at the end (on hand + in
transit) at unit cost, so a policy is neither rewarded for ending the window empty nor
punished for stock that carries over. With these definitions (purchases are charged when
ordered, so a lost sale costs its revenue, not only its margin) total cost = list-price
value of the actual demand - profit (under lost sales): the difference between two
policies' total costs is exactly the difference of their profits, markdowns included.
*Controllable cost* = total cost - unit cost x actual demand: 0 for a perfect policy (every
unit of demand served at list price from stock bought at unit cost, nothing held), so it
measures each policy's distance to that ideal, and its differences are profit differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

UNMET_MODES = ("lost", "backorder")


@dataclass
class Economics:
    """Per-series economics (arrays of length ``n_series``).

    Attributes:
        unit_cost: Value of a unit in stock (inventory value, end-of-window credit, margin).
        price: List selling price.
        holding_cost: Per unit per period on end-of-period stock.
        shortage_cost: Goodwill per unit of unmet demand.
        fixed_order_cost: Per order line (on top of price x quantity).
        order_cost: Price paid per unit of a route order (``order``); default ``unit_cost``.
    """

    unit_cost: np.ndarray
    price: np.ndarray
    holding_cost: np.ndarray
    shortage_cost: np.ndarray
    fixed_order_cost: float = 0.0
    order_cost: np.ndarray | None = None

    @classmethod
    def constant(cls, n: int, unit_cost: float = 1.0, price: float = 2.0, holding: float = 0.1,
                 shortage: float = 1.0, fixed_order_cost: float = 0.0) -> Economics:
        """Same economics for ``n`` series (tests, benchmarks)."""
        full = lambda v: np.full(n, float(v))  # noqa: E731
        return cls(full(unit_cost), full(price), full(holding), full(shortage), fixed_order_cost)

    @property
    def route_cost(self) -> np.ndarray:
        """Unit price of a route order."""
        return self.unit_cost if self.order_cost is None else self.order_cost


@dataclass
class SimView:
    """What a policy may see at review period ``t`` (nothing of period ``t`` or later).

    Attributes:
        t: Period index in the window.
        on_hand: Stock per series (after this period's receipts).
        backlog: Backordered units per series.
        pipeline: Units in transit to each series.
        history: Customer demand of periods ``< t`` ``[n, t]``.
        schedule: Receipts due per series at ``t + 1 .. T - 1`` and after the window (last
            column) ``[n, T - t]`` (the due dates of open orders and transfers).
    """

    t: int
    on_hand: np.ndarray
    backlog: np.ndarray
    pipeline: np.ndarray
    history: np.ndarray
    schedule: np.ndarray | None = None

    @property
    def position(self) -> np.ndarray:
        """Inventory position: on hand + in transit - backlog."""
        return self.on_hand + self.pipeline - self.backlog


@dataclass
class Decision:
    """A policy's decision at one review.

    Attributes:
        order: Units ordered per series on its own route (>= 0).
        price_factor: Selling price / list price until the next review (1 = list price).
        demand_factor: Multiplier on actual demand while the price factor holds.
        transfers: Moves between series as rows ``(src, dst, qty, lead_time, unit_cost)``.
        lines: Orders from a named supplier as rows ``(series, qty, supplier, unit_price)``
            (``supplier`` indexes the first axis of ``simulate``'s ``supplier_leads``).
    """

    order: np.ndarray
    price_factor: np.ndarray | None = None
    demand_factor: np.ndarray | None = None
    transfers: np.ndarray | None = None
    lines: np.ndarray | None = None


Policy = Callable[[SimView], Decision]


@dataclass
class SupplierCapacity:
    """What suppliers can ship per review: orders beyond it are cut pro rata (and not paid).

    Attributes:
        item: Item code per series.
        route_supplier: Supplier index of each series' route orders (``-1``: none).
        capacity: Units per review per supplier and item ``[n_suppliers, n_items]``
            (``inf`` = no limit).
    """

    item: np.ndarray
    route_supplier: np.ndarray
    capacity: np.ndarray

    def cut(self, route_qty: np.ndarray, lines: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """Route quantities and order lines scaled down to the capacity they share."""
        cap = self.capacity
        asked = np.zeros_like(cap, dtype=float)
        r = self.route_supplier >= 0
        np.add.at(asked, (self.route_supplier[r], self.item[r]), route_qty[r])
        if lines is not None:
            li = lines[:, 0].astype(int)
            np.add.at(asked, (lines[:, 2].astype(int), self.item[li]), lines[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(asked > cap, cap / asked, 1.0)
        route_qty = route_qty.copy()
        route_qty[r] *= ratio[self.route_supplier[r], self.item[r]]
        if lines is not None:
            lines = lines.copy()
            lines[:, 1] *= ratio[lines[:, 2].astype(int), self.item[lines[:, 0].astype(int)]]
        return route_qty, lines


@dataclass
class SimTrace:
    """Per-series x per-period outcome arrays ``[n_series, n_periods]`` plus cost totals.

    ``demand`` is the demand the series faced (after markdowns), ``base_demand`` the actual
    demand at list price; ``requested_out``/``shipped_out`` are transfer units asked of /
    shipped by each series (a DC's internal demand and service); ``start_stock`` the stock
    (on hand + in transit) the window started with.
    """

    demand: np.ndarray
    served: np.ndarray
    unmet: np.ndarray
    on_hand: np.ndarray
    pipeline: np.ndarray
    backlog: np.ndarray
    orders: np.ndarray
    holding: np.ndarray
    shortage: np.ndarray
    ordering: np.ndarray
    transfer: np.ndarray
    markdown: np.ndarray
    requested_out: np.ndarray
    shipped_out: np.ndarray
    base_demand: np.ndarray
    capacity_cut: np.ndarray
    end_credit: np.ndarray
    start_stock: np.ndarray
    review_period: int
    unit_cost: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def execute_transfers(on_hand: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units each transfer row actually moves (pro-rata cut when a source is short).

    Args:
        on_hand: Stock per series before the moves.
        rows: ``(src, dst, qty, ...)`` rows.

    Returns:
        ``(moved per row, requested per series)``.
    """
    n = len(on_hand)
    src = rows[:, 0].astype(int)
    qty = np.maximum(np.nan_to_num(rows[:, 2]), 0.0)
    asked = np.bincount(src, weights=qty, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(asked > on_hand, np.maximum(on_hand, 0.0) / asked, 1.0)
    return qty * np.nan_to_num(ratio[src]), asked


def simulate(
    demand: np.ndarray,
    policy: Policy,
    lead_times: np.ndarray,
    econ: Economics,
    on_hand0: np.ndarray,
    unmet: str = "lost",
    review_period: int = 1,
    supplier_leads: np.ndarray | None = None,
    elasticity: np.ndarray | float | None = None,
    capacity: SupplierCapacity | None = None,
) -> SimTrace:
    """Run one policy over the window.

    Args:
        demand: Actual customer demand ``[n_series, n_periods]`` at list price (0 rows for
            DC series).
        policy: Callable ``SimView -> Decision`` called at each review.
        lead_times: Realised lead time (whole periods) of a route order placed at ``t``,
            ``[n_series, n_periods]``.
        econ: Per-series economics.
        on_hand0: Starting stock per series.
        unmet: ``lost`` or ``backorder``.
        review_period: Periods between reviews (R).
        supplier_leads: Realised lead time of an order line from supplier ``s`` for series
            ``i`` placed at ``t``, ``[n_suppliers, n_series, n_periods]`` (needed only when
            the policy returns ``lines``).
        elasticity: The world's price elasticity of demand (per series or one number):
            a decision's ``price_factor`` multiplies demand by ``price_factor^elasticity``
            unless the decision sets ``demand_factor`` itself; ``None``: prices do not move
            demand.
        capacity: Supplier capacity per review (:class:`SupplierCapacity`), the same limit
            for every policy; ``None``: unlimited. What is cut is recorded as
            ``capacity_cut``.

    Returns:
        The :class:`SimTrace`.

    Raises:
        ValueError: Bad ``unmet``, review period or array shapes; order lines without
            ``supplier_leads``.
    """
    if unmet not in UNMET_MODES:
        raise ValueError(f"unmet must be one of {UNMET_MODES}, got {unmet!r}")
    if int(review_period) < 1:
        raise ValueError(f"review_period must be >= 1, got {review_period}")
    demand = np.asarray(demand, dtype=float)
    n, t_len = demand.shape
    lead_times = np.asarray(lead_times).astype(int)
    if lead_times.shape != demand.shape:
        raise ValueError(f"lead_times shape {lead_times.shape} != demand shape {demand.shape}")
    if supplier_leads is not None and supplier_leads.shape[1:] != demand.shape:
        raise ValueError(f"supplier_leads shape {supplier_leads.shape} != (S, *{demand.shape})")
    out = {k: np.zeros((n, t_len)) for k in (
        "served", "unmet", "on_hand", "pipeline", "backlog", "orders", "holding", "shortage",
        "ordering", "transfer", "markdown", "demand", "requested_out", "shipped_out",
        "base_demand", "capacity_cut")}
    on_hand = np.asarray(on_hand0, dtype=float).copy()
    backlog = np.zeros(n)
    arrivals = np.zeros((n, t_len + 1))  # column t_len collects everything arriving later
    short_unit = econ.shortage_cost + (econ.price if unmet == "lost" else 0.0)
    price_factor, demand_factor = np.ones(n), np.ones(n)
    rows = np.arange(n)

    def receive_now(t: int) -> None:
        nonlocal on_hand
        on_hand += arrivals[:, t]
        arrivals[:, t] = 0.0

    for t in range(t_len):
        receive_now(t)
        if t % review_period == 0:
            view = SimView(t, on_hand.copy(), backlog.copy(), arrivals[:, t + 1:].sum(axis=1),
                           demand[:, :t].copy(), arrivals[:, t + 1:].copy())
            dec = policy(view)
            q = np.maximum(np.nan_to_num(np.asarray(dec.order, dtype=float)), 0.0)
            lines = None
            if dec.lines is not None and len(dec.lines):
                lines = np.asarray(dec.lines, dtype=float).copy()
                lines[:, 1] = np.maximum(np.nan_to_num(lines[:, 1]), 0.0)
            if capacity is not None:
                wanted = q.copy()
                if lines is not None:
                    np.add.at(wanted, lines[:, 0].astype(int), lines[:, 1])
                q, lines = capacity.cut(q, lines)
                got = q.copy()
                if lines is not None:
                    np.add.at(got, lines[:, 0].astype(int), lines[:, 1])
                out["capacity_cut"][:, t] = wanted - got
            np.add.at(arrivals, (rows, np.minimum(t + lead_times[:, t], t_len)), q)
            out["orders"][:, t] += q
            out["ordering"][:, t] += econ.route_cost * q + econ.fixed_order_cost * (q > 1e-9)
            if lines is not None:
                if supplier_leads is None:
                    raise ValueError("the policy ordered from named suppliers: pass "
                                     "supplier_leads to simulate()")
                ln = lines
                i, s = ln[:, 0].astype(int), ln[:, 2].astype(int)
                lq = ln[:, 1]
                np.add.at(arrivals, (i, np.minimum(t + supplier_leads[s, i, t], t_len)), lq)
                np.add.at(out["orders"][:, t], i, lq)
                np.add.at(out["ordering"][:, t], i,
                          ln[:, 3] * lq + econ.fixed_order_cost * (lq > 1e-9))
            receive_now(t)
            if dec.transfers is not None and len(dec.transfers):
                tr = np.asarray(dec.transfers, dtype=float)
                moved, asked = execute_transfers(on_hand, tr)
                src, dst = tr[:, 0].astype(int), tr[:, 1].astype(int)
                np.subtract.at(on_hand, src, moved)
                due = np.minimum(t + np.maximum(tr[:, 3], 0).astype(int), t_len)
                np.add.at(arrivals, (dst, due), moved)
                np.add.at(out["transfer"][:, t], dst, moved * tr[:, 4])
                out["requested_out"][:, t] += asked
                np.add.at(out["shipped_out"][:, t], src, moved)
                receive_now(t)
            price_factor = np.ones(n) if dec.price_factor is None else np.asarray(dec.price_factor)
            if dec.demand_factor is not None:
                demand_factor = np.asarray(dec.demand_factor, dtype=float)
            elif elasticity is not None:
                demand_factor = price_factor ** np.asarray(elasticity, dtype=float)
            else:
                demand_factor = np.ones(n)
        if unmet == "backorder":
            clear = np.minimum(on_hand, backlog)
            on_hand -= clear
            backlog -= clear
        d = demand[:, t] * demand_factor
        induced = d - demand[:, t]
        served = np.minimum(on_hand, d)
        miss = d - served
        on_hand -= served
        if unmet == "backorder":
            backlog += miss
        out["demand"][:, t] = d
        out["base_demand"][:, t] = demand[:, t]
        out["served"][:, t] = served
        out["unmet"][:, t] = miss
        out["on_hand"][:, t] = on_hand
        out["backlog"][:, t] = backlog
        out["pipeline"][:, t] = arrivals[:, t + 1:].sum(axis=1)
        out["holding"][:, t] = econ.holding_cost * on_hand
        out["shortage"][:, t] = short_unit * miss
        out["markdown"][:, t] = ((1.0 - price_factor) * econ.price * served
                                 - econ.price * induced)
    end_credit = econ.unit_cost * (on_hand + arrivals[:, t_len])
    return SimTrace(**out, end_credit=end_credit,
                    start_stock=np.asarray(on_hand0, dtype=float).copy(),
                    review_period=int(review_period),
                    unit_cost=np.asarray(econ.unit_cost, dtype=float))


COST_PARTS = ("holding", "shortage", "ordering", "transfer", "markdown")
#: KPI columns in the order tables show them.
KPI_COLUMNS = ("total_cost", "controllable_cost", *(f"{k}_cost" for k in COST_PARTS),
               "end_stock_credit", "start_stock_value", "fill_rate",
               "cycle_service_level", "stockout_frequency", "avg_inventory",
               "avg_inventory_value", "inventory_turnover", "working_capital", "lost_sales",
               "demand", "internal_fill_rate", "capacity_cut")


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 1e-12 else float("nan")


def kpis(trace: SimTrace, mask: np.ndarray | None = None, start: int = 0) -> dict[str, float]:
    """KPIs of a trace (optionally a subset of series, e.g. one location or echelon, and
    only the periods from ``start`` on, e.g. after a warm-up).

    Definitions: ``fill_rate`` = customer demand served at once / customer demand;
    ``cycle_service_level`` = share of (series with demand, review cycle) pairs without
    unmet demand; ``stockout_frequency`` = share of (series with demand) x periods with
    unmet demand; ``avg_inventory`` = mean over periods of total end-of-period stock
    (``_value`` at unit cost); ``inventory_turnover`` = cost of goods sold over the window /
    average inventory value; ``working_capital`` = mean over periods of (stock + in
    transit) at unit cost; ``lost_sales`` = unmet units (backordered units under
    ``unmet=backorder``); ``capacity_cut`` = units ordered beyond supplier capacity (not
    delivered); ``start_stock_value`` = stock on hand and in transit at unit cost
    when period ``start`` begins; ``internal_fill_rate`` = transfer units shipped /
    requested from these series (a DC's service to its stores); ``total_cost`` = the cost
    parts - end-stock credit + start stock value; ``controllable_cost`` = total cost - unit
    cost x actual (list-price) demand (see the module docstring). Customer-service KPIs are ``NaN`` for a subset without customer
    demand (DCs).
    """
    sel = slice(None) if mask is None else np.asarray(mask)
    start = int(start)
    if not 0 <= start < trace.demand.shape[1]:
        raise ValueError(f"kpis: start {start} outside the window of {trace.demand.shape[1]} "
                         "periods")
    g = {k: getattr(trace, k)[sel][:, start:] for k in (
        "demand", "served", "unmet", "on_hand", "pipeline", "requested_out", "shipped_out",
        "orders", "base_demand", *COST_PARTS)}
    uc = trace.unit_cost[sel][:, None]
    stock0 = (trace.on_hand[sel][:, start - 1] + trace.pipeline[sel][:, start - 1]
              if start > 0 else trace.start_stock[sel])
    start_value = float((uc[:, 0] * stock0).sum())
    n, t_len = g["demand"].shape
    r = trace.review_period
    sells = g["demand"].sum(axis=1) > 1e-12  # series with customer demand
    cycles = [g["unmet"][sells, s:s + r].sum(axis=1) > 1e-9 for s in range(0, t_len, r)]
    stock_val = float((g["on_hand"] * uc).sum(axis=0).mean()) if n else 0.0
    out = {
        "total_cost": 0.0,
        "controllable_cost": 0.0,
        **{f"{k}_cost": float(g[k].sum()) for k in COST_PARTS},
        "end_stock_credit": float(trace.end_credit[sel].sum()),
        "start_stock_value": start_value,
        "fill_rate": _ratio(g["served"].sum(), g["demand"].sum()),
        "cycle_service_level": float(1.0 - np.mean(cycles)) if sells.any() else np.nan,
        "stockout_frequency": float((g["unmet"][sells] > 1e-9).mean()) if sells.any()
        else np.nan,
        "avg_inventory": float(g["on_hand"].sum(axis=0).mean()) if n else 0.0,
        "avg_inventory_value": stock_val,
        "inventory_turnover": _ratio((g["served"] * uc).sum(), stock_val),
        "working_capital": float(((g["on_hand"] + g["pipeline"]) * uc).sum(axis=0).mean())
        if n else 0.0,
        "lost_sales": float(g["unmet"].sum()),
        "demand": float(g["demand"].sum()),
        "internal_fill_rate": _ratio(g["shipped_out"].sum(), g["requested_out"].sum()),
        "capacity_cut": float(trace.capacity_cut[sel][:, start:].sum()),
    }
    out["total_cost"] = (sum(out[f"{k}_cost"] for k in COST_PARTS) - out["end_stock_credit"]
                         + start_value)
    out["controllable_cost"] = out["total_cost"] - float((g["base_demand"] * uc).sum())
    return out


#: Per-series values :func:`per_series` returns (their sums over series are the KPIs).
SERIES_VALUES = ("avg_inventory", "controllable_cost", "served", "demand")


def per_series(trace: SimTrace, start: int = 0) -> dict[str, np.ndarray]:
    """Per-series parts of the network KPIs over the periods from ``start``: average
    end-of-period stock, controllable cost (costs where they fall, as in :func:`kpis`),
    units served and customer demand. Summed over series they give :func:`kpis`'
    ``avg_inventory``, ``controllable_cost`` and the fill rate's numerator and denominator
    (what a bootstrap over item-locations resamples)."""
    start = int(start)
    sl = slice(start, None)
    uc = trace.unit_cost
    stock0 = (trace.on_hand[:, start - 1] + trace.pipeline[:, start - 1] if start > 0
              else trace.start_stock)
    parts = sum(getattr(trace, k)[:, sl].sum(axis=1) for k in COST_PARTS)
    total = parts - trace.end_credit + uc * stock0
    return {"avg_inventory": trace.on_hand[:, sl].mean(axis=1),
            "controllable_cost": total - uc * trace.base_demand[:, sl].sum(axis=1),
            "served": trace.served[:, sl].sum(axis=1),
            "demand": trace.demand[:, sl].sum(axis=1)}


def trace_frame(trace: SimTrace, periods: list | np.ndarray,
                echelon: np.ndarray | None = None) -> pd.DataFrame:
    """Per-period totals over all series (inventory, pipeline, stockouts, demand, unmet);
    with ``echelon`` also the end-of-period stock of each echelon (``on_hand_<echelon>``)."""
    out = pd.DataFrame({
        "period": list(periods),
        "on_hand": trace.on_hand.sum(axis=0),
        "pipeline": trace.pipeline.sum(axis=0),
        "demand": trace.demand.sum(axis=0),
        "unmet": trace.unmet.sum(axis=0),
        "stockouts": (trace.unmet > 1e-9).sum(axis=0),
        "orders": trace.orders.sum(axis=0),
    })
    if echelon is not None:
        for e in pd.unique(np.asarray(echelon)):
            out[f"on_hand_{e}"] = trace.on_hand[np.asarray(echelon) == e].sum(axis=0)
    return out
