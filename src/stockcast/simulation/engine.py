"""Periodic-review inventory simulation engine (vectorized over item-locations) and its KPIs.

Timing of one period ``t`` (all series at once):

1. receipts scheduled for ``t`` arrive (with ``unmet=backorder`` they first clear the backlog);
2. on a review period (``t % review_period == 0``) the policy sees :class:`SimView` (stock,
   pipeline, backlog and the demand of periods ``< t`` only) and returns a :class:`Decision`;
   an order placed at ``t`` with realised lead time ``L`` arrives at the start of ``t + L``
   (``L = 0``: at once, usable for the demand of ``t``); lateral transfers leave the source
   at once and arrive after their lane lead time; a markdown holds until the next review;
3. demand of ``t`` (actual demand × the markdown's demand factor) is served from stock;
   the rest is lost (``unmet=lost``) or backordered (``unmet=backorder``);
4. costs: holding on end-of-period stock, shortage on each unit of unmet demand (lost:
   goodwill ``shortage_cost`` + lost margin ``price - unit_cost``; backorder: ``shortage_cost``
   once per unit), ordering ``unit_cost × qty`` + ``fixed_order_cost`` per order line,
   transfer cost per unit moved, markdown cost = price reduction × units sold at it.

Total cost credits the stock left at the end (on hand + in transit) at unit cost, so a policy
is not rewarded for ending the window empty nor punished for stock that carries over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

UNMET_MODES = ("lost", "backorder")


@dataclass
class Economics:
    """Per-series economics (arrays of length ``n_series``)."""

    unit_cost: np.ndarray
    price: np.ndarray
    holding_cost: np.ndarray
    shortage_cost: np.ndarray
    fixed_order_cost: float = 0.0

    @classmethod
    def constant(cls, n: int, unit_cost: float = 1.0, price: float = 2.0, holding: float = 0.1,
                 shortage: float = 1.0, fixed_order_cost: float = 0.0) -> Economics:
        """Same economics for ``n`` series (tests, benchmarks)."""
        full = lambda v: np.full(n, float(v))  # noqa: E731
        return cls(full(unit_cost), full(price), full(holding), full(shortage), fixed_order_cost)


@dataclass
class SimView:
    """What a policy may see at review period ``t`` (nothing of period ``t`` or later)."""

    t: int
    on_hand: np.ndarray
    backlog: np.ndarray
    pipeline: np.ndarray
    history: np.ndarray

    @property
    def position(self) -> np.ndarray:
        """Inventory position: on hand + in transit - backlog."""
        return self.on_hand + self.pipeline - self.backlog


@dataclass
class Decision:
    """A policy's decision at one review.

    Attributes:
        order: Units ordered from the supplier per series (>= 0).
        price_factor: Selling price / list price until the next review (1 = list price).
        demand_factor: Multiplier on actual demand while the price factor holds.
        transfers: Lateral moves as rows ``(src, dst, qty, lead_time, unit_cost)``.
    """

    order: np.ndarray
    price_factor: np.ndarray | None = None
    demand_factor: np.ndarray | None = None
    transfers: np.ndarray | None = None


Policy = Callable[[SimView], Decision]


@dataclass
class SimTrace:
    """Per-series × per-period outcome arrays ``[n_series, n_periods]`` plus cost totals."""

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
    end_credit: np.ndarray
    review_period: int
    unit_cost: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def simulate(
    demand: np.ndarray,
    policy: Policy,
    lead_times: np.ndarray,
    econ: Economics,
    on_hand0: np.ndarray,
    unmet: str = "lost",
    review_period: int = 1,
) -> SimTrace:
    """Run one policy over the window.

    Args:
        demand: Actual demand ``[n_series, n_periods]`` (list price).
        policy: Callable ``SimView -> Decision`` called at each review.
        lead_times: Realised lead time (whole periods) of an order placed at ``t``,
            ``[n_series, n_periods]``.
        econ: Per-series economics.
        on_hand0: Starting stock per series.
        unmet: ``lost`` or ``backorder``.
        review_period: Periods between reviews (R).

    Returns:
        The :class:`SimTrace`.

    Raises:
        ValueError: Bad ``unmet``, review period or array shapes.
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
    out = {k: np.zeros((n, t_len)) for k in (
        "served", "unmet", "on_hand", "pipeline", "backlog", "orders", "holding", "shortage",
        "ordering", "transfer", "markdown", "demand")}
    on_hand = np.asarray(on_hand0, dtype=float).copy()
    backlog = np.zeros(n)
    arrivals = np.zeros((n, t_len + 1))  # column t_len collects everything arriving later
    margin = np.maximum(econ.price - econ.unit_cost, 0.0)
    short_unit = econ.shortage_cost + (margin if unmet == "lost" else 0.0)
    price_factor, demand_factor = np.ones(n), np.ones(n)
    rows = np.arange(n)
    for t in range(t_len):
        on_hand += arrivals[:, t]
        arrivals[:, t] = 0.0
        if t % review_period == 0:
            pipeline = arrivals.sum(axis=1)
            view = SimView(t, on_hand.copy(), backlog.copy(), pipeline, demand[:, :t].copy())
            dec = policy(view)
            q = np.maximum(np.nan_to_num(np.asarray(dec.order, dtype=float)), 0.0)
            due = np.minimum(t + lead_times[:, t], t_len)
            np.add.at(arrivals, (rows, due), q)
            on_hand += arrivals[:, t]
            arrivals[:, t] = 0.0
            out["orders"][:, t] = q
            out["ordering"][:, t] = econ.unit_cost * q + econ.fixed_order_cost * (q > 1e-9)
            if dec.transfers is not None and len(dec.transfers):
                for src, dst, qty, lead, cost in np.asarray(dec.transfers, dtype=float):
                    s, d = int(src), int(dst)
                    moved = min(max(qty, 0.0), on_hand[s])
                    on_hand[s] -= moved
                    arrivals[d, min(t + int(lead), t_len)] += moved
                    on_hand[d] += arrivals[d, t]
                    arrivals[d, t] = 0.0
                    out["transfer"][s, t] += moved * cost
            price_factor = np.ones(n) if dec.price_factor is None else np.asarray(dec.price_factor)
            demand_factor = (np.ones(n) if dec.demand_factor is None
                             else np.asarray(dec.demand_factor))
        if unmet == "backorder":
            clear = np.minimum(on_hand, backlog)
            on_hand -= clear
            backlog -= clear
        d = demand[:, t] * demand_factor
        served = np.minimum(on_hand, d)
        miss = d - served
        on_hand -= served
        if unmet == "backorder":
            backlog += miss
        out["demand"][:, t] = d
        out["served"][:, t] = served
        out["unmet"][:, t] = miss
        out["on_hand"][:, t] = on_hand
        out["backlog"][:, t] = backlog
        out["pipeline"][:, t] = arrivals[:, t + 1:].sum(axis=1)
        out["holding"][:, t] = econ.holding_cost * on_hand
        out["shortage"][:, t] = short_unit * miss
        out["markdown"][:, t] = (1.0 - price_factor) * econ.price * served
    end_credit = econ.unit_cost * (on_hand + arrivals[:, t_len])
    return SimTrace(**out, end_credit=end_credit, review_period=int(review_period),
                    unit_cost=np.asarray(econ.unit_cost, dtype=float))


COST_PARTS = ("holding", "shortage", "ordering", "transfer", "markdown")


def kpis(trace: SimTrace, mask: np.ndarray | None = None) -> dict[str, float]:
    """KPIs of a trace (optionally a subset of series).

    Definitions: ``fill_rate`` = served at once / demand; ``cycle_service_level`` = share of
    (series, review cycle) pairs without unmet demand; ``stockout_frequency`` = share of
    series-periods with unmet demand; ``avg_inventory`` = mean over periods of total
    end-of-period stock (``_value`` at unit cost); ``inventory_turnover`` = cost of goods
    sold over the window / average inventory value; ``working_capital`` = mean over periods
    of (stock + in transit) at unit cost; ``lost_sales`` = unmet units (backordered units
    under ``unmet=backorder``); ``total_cost`` = the cost parts - end-stock credit.
    """
    sel = slice(None) if mask is None else np.asarray(mask)
    g = {k: getattr(trace, k)[sel] for k in (
        "demand", "served", "unmet", "on_hand", "pipeline", *COST_PARTS)}
    uc = trace.unit_cost[sel][:, None]
    n, t_len = g["demand"].shape
    r = trace.review_period
    cycles = [g["unmet"][:, s:s + r].sum(axis=1) > 1e-9 for s in range(0, t_len, r)]
    stock_val = (g["on_hand"] * uc).sum(axis=0).mean() if n else 0.0
    out = {
        "total_cost": 0.0,
        **{f"{k}_cost": float(g[k].sum()) for k in COST_PARTS},
        "end_stock_credit": float(trace.end_credit[sel].sum()),
        "fill_rate": float(g["served"].sum() / max(g["demand"].sum(), 1e-12)),
        "cycle_service_level": float(1.0 - np.mean(cycles)) if cycles and n else np.nan,
        "stockout_frequency": float((g["unmet"] > 1e-9).mean()) if n else np.nan,
        "avg_inventory": float(g["on_hand"].sum(axis=0).mean()) if n else 0.0,
        "avg_inventory_value": float(stock_val),
        "inventory_turnover": float((g["served"] * uc).sum() / stock_val) if stock_val > 0
        else np.nan,
        "working_capital": float(((g["on_hand"] + g["pipeline"]) * uc).sum(axis=0).mean())
        if n else 0.0,
        "lost_sales": float(g["unmet"].sum()),
        "demand": float(g["demand"].sum()),
    }
    out["total_cost"] = sum(out[f"{k}_cost"] for k in COST_PARTS) - out["end_stock_credit"]
    return out


def trace_frame(trace: SimTrace, periods: list | np.ndarray) -> pd.DataFrame:
    """Per-period totals over all series (inventory, pipeline, stockouts, demand, unmet)."""
    return pd.DataFrame({
        "period": list(periods),
        "on_hand": trace.on_hand.sum(axis=0),
        "pipeline": trace.pipeline.sum(axis=0),
        "demand": trace.demand.sum(axis=0),
        "unmet": trace.unmet.sum(axis=0),
        "stockouts": (trace.unmet > 1e-9).sum(axis=0),
        "orders": trace.orders.sum(axis=0),
    })
