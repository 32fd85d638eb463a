"""The decisions table: one row per action, each row explaining itself.

Columns (:data:`DECISION_COLUMNS`):

``item_id``, ``location_id``
    The item-location the action is *for* (the destination of an order or transfer).
``action``
    ``order`` (from a supplier), ``transfer`` (from another location), ``markdown`` (sell
    below the list price) or ``none`` (keep the current position).
``source``
    ``supplier_id`` for orders, the sending ``location_id`` for transfers, empty otherwise.
``quantity``
    Units ordered/moved; for markdowns the expected units sold over the protection period
    at the new price; 0 for ``none``.
``price``
    Recommended selling price at the item-location (list price unless marked down).
``expected_profit``
    Expected profit of the item-location over the protection period under the whole plan:
    revenue + salvage - holding - goodwill shortage cost - landed cost of what it receives.
``expected_fill_rate``
    ``E min(D, y) / E D`` at the planned position ``y`` (empty for DCs without own demand).
``critical_ratio``
    ``(p - c + g) / (p - c + g + c - s + h)``; for orders ``c`` is the landed unit cost of
    this row's supplier, otherwise the landed cost of the item-location's reference path (a
    transferred unit's true cost includes its value at the sender). Empty at DCs.
``quantiles_used``
    Protection period (lead time + review period) and the demand quantiles behind the
    answer: the median, the quantile at the critical ratio (= order-up-to target) and the
    upper quantile.
``binding_constraints``
    Constraints at their limit that shaped this row (``budget``,
    ``location_capacity[LOC]``, ``supplier_capacity[SUP/ITEM]``, ``moq[SUP]``,
    ``transfer_stock[LOC]``, ``min_service_level``, ``network_safety_stock[ITEM]``), or empty.
``alternative``
    The option this row beat and its cost, e.g. ``transfer from S12 at 1.20/u vs order
    from SUP3 at 4.00/u``.

Extra columns: ``unit_cost`` (landed cost per unit of this row's source), ``position``
(planned inventory position), ``target`` (unconstrained order-up-to level) and ``reason``
(one sentence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stockcast.optimization.distribution import NODE_KEYS, EmpiricalDemand
from stockcast.optimization.network import Network
from stockcast.optimization.pricing import PricingResult
from stockcast.optimization.problem import NetworkSolution

DECISION_COLUMNS = [
    "item_id",
    "location_id",
    "action",
    "source",
    "quantity",
    "price",
    "expected_profit",
    "expected_fill_rate",
    "critical_ratio",
    "quantiles_used",
    "binding_constraints",
    "alternative",
    "unit_cost",
    "position",
    "target",
    "reason",
]
ACTIONS = ("order", "transfer", "markdown", "none")


@dataclass
class NodeContext:
    """Per-demand-node quantities the report needs (arrays in demand-node order)."""

    demand: EmpiricalDemand
    price: np.ndarray
    list_price: np.ndarray
    critical_ratio: np.ndarray
    target: np.ndarray
    review_period: float
    pricing: PricingResult
    report_levels: tuple[float, ...]
    excess_quantile: float


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"


def node_report(net: Network, sol: NetworkSolution, ctx: NodeContext) -> pd.DataFrame:
    """One row per node: position, target, price, expected profit/fill, binding, evidence."""
    nodes = net.nodes
    n = net.n_nodes
    dem = net.demand_nodes
    y = np.where(np.abs(sol.position) < 1e-7, 0.0, sol.position)
    rep = nodes[["item_id", "location_id", "echelon", "demand", "on_hand", "in_transit",
                 "ref_source", "ref_cost", "ref_lead_mean", "ref_lead_std"]].copy()
    rep["position"] = y
    arc_node = net.arcs["node"].to_numpy()
    inflow_cost = np.bincount(arc_node, weights=sol.order * net.arcs["landed_cost"].to_numpy(),
                              minlength=n)
    inflow_cost += np.bincount(net.lanes["to_node"].to_numpy(),
                               weights=sol.transfer * net.lanes["landed_cost"].to_numpy(),
                               minlength=n)
    rep["ordered"] = np.bincount(arc_node, weights=sol.order, minlength=n)
    rep["transferred_in"] = np.bincount(net.lanes["to_node"].to_numpy(), weights=sol.transfer,
                                        minlength=n)
    rep["transferred_out"] = np.bincount(net.lanes["from_node"].to_numpy(), weights=sol.transfer,
                                         minlength=n)
    price = nodes["price"].to_numpy(float).copy()
    price[dem] = ctx.price
    rep["list_price"] = nodes["price"].to_numpy(float)
    rep["price"] = price
    o = (nodes["holding_cost"] - nodes["salvage_value"]).to_numpy()
    g = nodes["shortage_cost"].to_numpy()
    profit = -o * y - inflow_cost
    fill = np.full(n, np.nan)
    short = np.zeros(n)
    left = np.where(nodes["demand"], 0.0, y)
    mean = np.zeros(n)
    target = np.full(n, np.nan)
    cr = np.full(n, np.nan)
    d = ctx.demand
    yd = y[dem]
    s_d = d.expected_shortage(yd)
    l_d = yd - d.mean + s_d
    profit[dem] = ctx.price * (d.mean - s_d) - o[dem] * l_d - g[dem] * s_d - inflow_cost[dem]
    fill[dem] = d.fill_rate(yd)
    short[dem], left[dem], mean[dem] = s_d, l_d, d.mean
    target[dem], cr[dem] = ctx.target, ctx.critical_ratio
    rep["expected_demand"] = mean
    rep["expected_shortage"] = short
    rep["expected_leftover"] = left
    rep["expected_profit"] = profit
    rep["expected_fill_rate"] = fill
    rep["target"] = target
    rep["critical_ratio"] = cr
    rep["inflow_cost"] = inflow_cost
    excess = np.zeros(n, bool)
    excess[dem] = ctx.pricing.excess
    rep["excess"] = excess
    hq = np.full(n, np.nan)
    hq[dem] = ctx.pricing.horizon_quantile
    rep["horizon_quantile"] = hq

    # evidence strings ------------------------------------------------------------------
    q_used = np.array(["no own demand (stock for downstream locations)"] * n, dtype=object)
    lead, spread = rep["ref_lead_mean"].to_numpy()[dem], rep["ref_lead_std"].to_numpy()[dem]
    cols = {lv: d.interpolated(lv) for lv in ctx.report_levels}
    parts = [f"P={lv_ + ctx.review_period:.3g} (L={lv_:.3g}±{sd:.2g} + R={ctx.review_period:g})"
             for lv_, sd in zip(lead, spread, strict=True)]
    # (columns formatted first, from Python floats: the same text, far fewer lookups)
    labels = [f"q{lv:g}=" for lv in ctx.report_levels]
    texts = [[_fmt(v) for v in cols[lv].tolist()] for lv in ctx.report_levels]
    at_cr = [f"q@CR{c:.3f}={_fmt(t)}" for c, t in zip(
        np.asarray(ctx.critical_ratio, dtype=float).tolist(),
        np.asarray(ctx.target, dtype=float).tolist(), strict=True)]
    where = 1 if len(labels) > 1 else len(labels)
    for i, k in enumerate(np.asarray(dem).tolist()):
        qs = [lab + txt[i] for lab, txt in zip(labels, texts, strict=True)]
        qs.insert(where, at_cr[i])
        q_used[k] = f"{parts[i]}: " + ", ".join(qs)
    rep["quantiles_used"] = q_used

    # node-level binding constraints -------------------------------------------------------
    b = sol.binding
    tags: list[list[str]] = [[] for _ in range(n)]
    loc_ids = net.locations["location_id"].to_numpy()
    if "location_capacity" in b:
        for k in np.flatnonzero(b["location_capacity"][nodes["loc"].to_numpy()]):
            tags[k].append(f"location_capacity[{loc_ids[nodes['loc'].iat[k]]}]")
    shortfall = np.zeros(n, bool)
    shortfall[dem] = ctx.target - yd > 1e-6 * np.maximum(1.0, ctx.target)
    if b.get("budget"):
        for k in np.flatnonzero(shortfall):
            tags[k].append("budget")
    if "min_service_level" in b:
        for i in np.flatnonzero(b["min_service_level"]):
            if not shortfall[dem[i]]:
                tags[dem[i]].append("min_service_level")
    if "network_safety_stock" in b:
        hit = b["network_safety_stock"][nodes["item"].to_numpy()]
        for k in np.flatnonzero(hit & nodes["demand"].to_numpy()):
            tags[k].append(f"network_safety_stock[{nodes['item_id'].iat[k]}]")
    if "supplier_capacity" in b and shortfall.any():
        grp = net.groups
        ref_group = pd.Series(np.arange(len(grp)), index=pd.MultiIndex.from_frame(
            grp[["supplier_id", "item_id"]]))
        ref_sup = nodes["ref_source"].str.split(" via ").str[0]
        g_idx = ref_group.reindex(pd.MultiIndex.from_arrays([ref_sup, nodes["item_id"]])
                                  ).to_numpy()
        for k in np.flatnonzero(shortfall & ~np.isnan(g_idx)):
            if b["supplier_capacity"][int(g_idx[k])]:
                tags[k].append(f"supplier_capacity[{ref_sup.iat[k]}/{nodes['item_id'].iat[k]}]")
    rep["binding_constraints"] = ["; ".join(t) for t in tags]
    rep["shortfall"] = shortfall
    return rep


def _options(net: Network) -> pd.DataFrame:
    """Every way to bring stock to a node, with its landed unit cost."""
    arcs, lanes = net.arcs, net.lanes
    arcs = arcs[net.groups["capacity"].to_numpy()[arcs["group"].to_numpy()] > 0]  # not down
    direct = pd.DataFrame({"node": arcs["node"], "kind": "order",
                           "source": arcs["supplier_id"], "cost": arcs["landed_cost"],
                           "group": arcs["group"], "from_node": -1})
    lateral = pd.DataFrame({"node": lanes["to_node"], "kind": "transfer",
                            "source": lanes["from_id"], "cost": lanes["landed_cost"],
                            "group": -1, "from_node": lanes["from_node"]})
    return pd.concat([direct, lateral], ignore_index=True).sort_values(["node", "cost"],
                                                                       kind="stable")


def _describe(kind: str, source: str, cost: float) -> str:
    verb = "order from" if kind == "order" else "transfer from"
    return f"{verb} {source} at {cost:.4g}/u"


def build_decisions(net: Network, sol: NetworkSolution, report: pd.DataFrame,
                    *, tol: float = 1e-6, explain: bool = True) -> pd.DataFrame:
    """The decisions table (see module docstring) from a solved network and its node report.

    Args:
        net: The network.
        sol: Its solution.
        report: :func:`node_report` output.
        tol: Quantities at or below this are not actions.
        explain: Write the ``alternative`` and ``reason`` texts (``False``: empty strings).
    """
    nodes = net.nodes
    rows = []
    arcs = net.arcs.assign(quantity=sol.order)
    arcs = arcs[arcs["quantity"] > tol]
    if len(arcs):
        rows.append(pd.DataFrame({
            "node": arcs["node"].to_numpy(), "action": "order",
            "source": arcs["supplier_id"].to_numpy(), "quantity": arcs["quantity"].to_numpy(),
            "unit_cost": arcs["landed_cost"].to_numpy(),
            "cash_cost": arcs["cash_cost"].to_numpy(), "premium": arcs["premium"].to_numpy(),
            "arc": arcs.index.to_numpy(), "lane": -1,
        }))
    lanes = net.lanes.assign(quantity=sol.transfer)
    lanes = lanes[lanes["quantity"] > tol]
    if len(lanes):
        rows.append(pd.DataFrame({
            "node": lanes["to_node"].to_numpy(), "action": "transfer",
            "source": lanes["from_id"].to_numpy(), "quantity": lanes["quantity"].to_numpy(),
            "unit_cost": lanes["landed_cost"].to_numpy(),
            "cash_cost": lanes["transfer_cost"].to_numpy(), "premium": 0.0,
            "arc": -1, "lane": lanes.index.to_numpy(),
        }))
    dem = net.demand_nodes
    md = report.iloc[dem]
    md = md[md["price"] < md["list_price"] * (1 - 1e-9)]
    if len(md):
        sold = md["expected_demand"] - md["expected_shortage"]
        rows.append(pd.DataFrame({
            "node": md.index.to_numpy(), "action": "markdown", "source": "",
            "quantity": sold.to_numpy(), "unit_cost": md["ref_cost"].to_numpy(),
            "cash_cost": np.nan, "premium": np.nan, "arc": -1, "lane": -1,
        }))
    acted = set(np.concatenate([r["node"].to_numpy() for r in rows])) if rows else set()
    idle = [k for k in dem if k not in acted]
    if idle:
        rows.append(pd.DataFrame({
            "node": idle, "action": "none", "source": "", "quantity": 0.0,
            "unit_cost": report["ref_cost"].to_numpy()[idle], "cash_cost": np.nan,
            "premium": np.nan, "arc": -1, "lane": -1,
        }))
    if not rows:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    dec = pd.concat(rows, ignore_index=True)
    rep = report.iloc[dec["node"].to_numpy()].reset_index(drop=True)
    for c in ("item_id", "location_id", "price", "expected_profit", "expected_fill_rate",
              "quantiles_used", "position", "target"):
        dec[c] = rep[c].to_numpy()
    # critical ratio with this row's landed cost
    nd = nodes.iloc[dec["node"].to_numpy()].reset_index(drop=True)
    b = dec["price"].to_numpy() + nd["shortage_cost"].to_numpy()
    o = (nd["holding_cost"] - nd["salvage_value"]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cr = np.clip((b - dec["unit_cost"].to_numpy()) / (b + o), 0, 1)
    is_order = (dec["action"] == "order").to_numpy()
    dec["critical_ratio"] = np.where(is_order & nd["demand"].to_numpy(), cr,
                                     rep["critical_ratio"].to_numpy())

    # binding constraints: node-level plus row-level
    binding = rep["binding_constraints"].to_numpy().astype(object)
    extra = [[] for _ in range(len(dec))]
    sb = sol.binding
    if sb.get("budget"):
        for i in np.flatnonzero(dec["action"].isin(["order", "transfer"]).to_numpy()):
            extra[i].append("budget")
    grp_sup = net.groups["supplier_id"].to_numpy()
    grp_item = net.groups["item_id"].to_numpy()
    arc_group = net.arcs["group"].to_numpy()
    arc_sup = net.arcs["supplier_id"].to_numpy()
    arc_rows = dec["arc"].to_numpy()
    sup_bind = sb.get("supplier_capacity")
    moq_bind = sb.get("moq")
    for i in np.flatnonzero(arc_rows >= 0):
        a = int(arc_rows[i])
        gi = int(arc_group[a])
        if sup_bind is not None and sup_bind[gi]:
            extra[i].append(f"supplier_capacity[{grp_sup[gi]}/{grp_item[gi]}]")
        if moq_bind is not None and moq_bind[a]:
            extra[i].append(f"moq[{arc_sup[a]}]")
    lane_rows = dec["lane"].to_numpy()
    lane_from = net.lanes["from_node"].to_numpy()
    lane_from_id = net.lanes["from_id"].to_numpy()
    for i in np.flatnonzero(lane_rows >= 0):
        lane = int(lane_rows[i])
        if sb["transfer_stock"][lane_from[lane]]:
            extra[i].append(f"transfer_stock[{lane_from_id[lane]}]")
    merged = [
        "; ".join(dict.fromkeys(t for t in [*more, *(node.split("; ") if node else [])] if t))
        if more else node for more, node in zip(extra, binding.tolist(), strict=True)]
    dec["binding_constraints"] = merged

    if explain:
        dec["alternative"], dec["reason"] = _explain(net, sol, dec, report)
    else:
        dec["alternative"] = dec["reason"] = ""
    dec = dec.sort_values(["item_id", "location_id", "action", "source"], kind="stable")
    return dec[DECISION_COLUMNS].reset_index(drop=True)


def _explain(net: Network, sol: NetworkSolution, dec: pd.DataFrame,
             report: pd.DataFrame) -> tuple[list, list]:
    """``alternative`` and ``reason`` strings per decision row."""
    opts = _options(net).rename(columns={"source": "alt_source", "cost": "alt_cost"})
    key = dec[["node", "action", "source"]].reset_index().rename(columns={"index": "row"})
    cand = key.merge(opts, on="node", how="inner")
    same = (cand["kind"] == cand["action"]) & (cand["alt_source"] == cand["source"])
    best = cand[~same].sort_values(["row", "alt_cost"], kind="stable").drop_duplicates("row")
    n_rows = len(dec)
    has_alt = np.zeros(n_rows, bool)
    alt_kind = np.empty(n_rows, dtype=object)
    alt_src = np.empty(n_rows, dtype=object)
    alt_cost = np.full(n_rows, np.nan)
    r_idx = best["row"].to_numpy()
    has_alt[r_idx] = True
    alt_kind[r_idx] = best["kind"].to_numpy()
    alt_src[r_idx] = best["alt_source"].to_numpy()
    alt_cost[r_idx] = best["alt_cost"].to_numpy()
    # why a cheaper alternative was not used: its source is at a limit
    limit = np.full(n_rows, "", dtype=object)
    sb = sol.binding
    from_node = best["from_node"].to_numpy()
    group = best["group"].to_numpy()
    from_ids = net.nodes["location_id"].to_numpy()
    for row, f, gi in zip(r_idx, from_node, group, strict=True):
        if f >= 0 and sb["transfer_stock"][f]:
            limit[row] = f"its stock is used up: transfer_stock[{from_ids[f]}]"
        elif f >= 0:
            limit[row] = f"{from_ids[f]} keeps its stock"
        elif gi >= 0 and "supplier_capacity" in sb and sb["supplier_capacity"][gi]:
            limit[row] = (f"supplier_capacity[{net.groups['supplier_id'].iat[gi]}/"
                          f"{net.groups['item_id'].iat[gi]}]")
    node = dec["node"].to_numpy()
    # per-row values as Python lists (the loop below formats every row: list lookups and
    # Python floats are much cheaper than NumPy scalars, and format the same)
    pos = report["position"].to_numpy()[node].tolist()
    tgt = report["target"].to_numpy()[node].tolist()
    cr = report["critical_ratio"].to_numpy()[node].tolist()
    is_dem = report["demand"].to_numpy()[node].tolist()
    has_source = net.nodes["has_source"].to_numpy()[node].tolist()
    node_binding = report["binding_constraints"].to_numpy()[node].tolist()
    excess = report["excess"].to_numpy()[node].tolist()
    stock = (report["on_hand"] + report["in_transit"]).to_numpy()[node].tolist()
    hq = report["horizon_quantile"].to_numpy()[node].tolist()
    list_price = report["list_price"].to_numpy()[node].tolist()
    premium, cash = dec["premium"].to_numpy().tolist(), dec["cash_cost"].to_numpy().tolist()
    has_alt, alt_kind, alt_src = has_alt.tolist(), alt_kind.tolist(), alt_src.tolist()
    alt_cost, limit = alt_cost.tolist(), limit.tolist()
    alternatives, reasons = [], []
    for i, (action, source, qty, unit, loc, price) in enumerate(zip(
            dec["action"].tolist(), dec["source"].tolist(), dec["quantity"].tolist(),
            dec["unit_cost"].tolist(), dec["location_id"].tolist(), dec["price"].tolist(),
            strict=True)):
        alt_text = (_describe(alt_kind[i], alt_src[i], alt_cost[i]) if has_alt[i]
                    else "no other source")
        if action in ("order", "transfer"):
            here = _describe(action, source, unit)
            if action == "order" and premium[i] > 1e-12:
                here += (f" (cash {cash[i]:.4g} + lead-time/reliability risk "
                         f"{premium[i]:.3g})")
            if has_alt[i] and alt_cost[i] < unit - 1e-9 and limit[i]:
                alt_text += f" (cheaper, but {limit[i]})"
            alternatives.append(f"{here} vs {alt_text}")
            if is_dem[i] and pos[i] > tgt[i] + 1e-6 * max(1.0, abs(tgt[i])):
                reasons.append(f"{action} {_fmt(qty)} to reach position {_fmt(pos[i])}, above "
                               f"the order-up-to target {_fmt(tgt[i])} (critical ratio "
                               f"{cr[i]:.3f} at the reference cost): this source is cheaper")
            elif is_dem[i]:
                reasons.append(f"{action} {_fmt(qty)} to reach position {_fmt(pos[i])} "
                               f"(order-up-to target {_fmt(tgt[i])} at critical ratio "
                               f"{cr[i]:.3f})")
            else:
                reasons.append(f"{action} {_fmt(qty)} into {loc} to supply downstream "
                               "locations")
        elif action == "markdown":
            alternatives.append(f"price {price:.4g} vs list {list_price[i]:.4g}")
            why = (f"excess stock: on-hand + in-transit {_fmt(stock[i])} > horizon demand "
                   f"quantile {_fmt(hq[i])}") if excess[i] else (
                "higher expected profit than the list price")
            reasons.append(f"mark down to {price:.4g} ({1 - price / list_price[i]:.0%} off): "
                           f"{why}")
        else:
            short = tgt[i] > pos[i] + 1e-6 * max(1.0, tgt[i])
            if short and not has_source[i]:
                alternatives.append("no supplier or lane can reach this item-location")
                reasons.append("no source: position stays below the target")
            elif short:
                limits = node_binding[i] or "cheaper uses elsewhere"
                alternatives.append(f"{alt_text} not taken ({limits})")
                reasons.append(f"position {_fmt(pos[i])} below target {_fmt(tgt[i])}: "
                               f"limited by {limits}")
            else:
                alternatives.append(f"{alt_text} not needed")
                reasons.append(f"position {_fmt(pos[i])} covers the order-up-to target "
                               f"{_fmt(tgt[i])}")
    return alternatives, reasons


def add_markdown_evidence(dec: pd.DataFrame, report: pd.DataFrame, pricing: PricingResult,
                          keys: pd.DataFrame) -> pd.DataFrame:
    """Fill markdown rows' ``alternative`` with the profit comparison of the price grid."""
    if not (dec["action"] == "markdown").any():
        return dec
    node_of = pd.Series(np.arange(len(keys)), index=pd.MultiIndex.from_frame(keys[NODE_KEYS]))
    md = dec["action"] == "markdown"
    idx = node_of.reindex(pd.MultiIndex.from_frame(dec.loc[md, NODE_KEYS])).to_numpy(int)
    texts = []
    for i in idx:
        chosen = pricing.choice[i]
        texts.append(
            f"price {pricing.price[i]:.4g} expected profit {pricing.profit[i, chosen]:.4g} vs "
            f"list {report['list_price'].iat[i]:.4g}: {pricing.profit[i, 0]:.4g} (newsvendor, "
            "before network constraints)")
    dec.loc[md, "alternative"] = texts
    return dec


def summarize(net: Network, sol: NetworkSolution, report: pd.DataFrame,
              decisions: pd.DataFrame, *, budget: float | None) -> dict[str, Any]:
    """Plan KPIs: costs, profit, fill rate, counts, spend and binding constraints."""
    dem = report[report["demand"]]
    mean = dem["expected_demand"].sum()
    binding = []
    b = sol.binding
    if b.get("budget"):
        binding.append("budget")
    loc_ids = net.locations["location_id"].to_numpy()
    binding += [f"location_capacity[{loc_ids[i]}]" for i in
                np.flatnonzero(b.get("location_capacity", []))]
    grp = net.groups
    binding += [f"supplier_capacity[{grp['supplier_id'].iat[i]}/{grp['item_id'].iat[i]}]"
                for i in np.flatnonzero(b.get("supplier_capacity", []))]
    if "network_safety_stock" in b:
        binding += [f"network_safety_stock[{net.items[i]}]"
                    for i in np.flatnonzero(b["network_safety_stock"])]
    if "min_service_level" in b and np.any(b["min_service_level"]):
        binding.append(f"min_service_level ({int(np.sum(b['min_service_level']))} "
                       "item-locations)")
    if "moq" in b and np.any(b["moq"]):
        binding.append(f"moq ({int(np.sum(b['moq']))} orders)")
    spend = float(net.arcs["cash_cost"].to_numpy() @ sol.order)
    transfer_spend = float(net.lanes["transfer_cost"].to_numpy() @ sol.transfer)
    counts = decisions["action"].value_counts()
    out = {
        "n_item_locations": int(len(dem)),
        "n_orders": int(counts.get("order", 0)),
        "n_transfers": int(counts.get("transfer", 0)),
        "n_markdowns": int(counts.get("markdown", 0)),
        "n_none": int(counts.get("none", 0)),
        "order_units": float(sol.order.sum()),
        "transfer_units": float(sol.transfer.sum()),
        "purchase_spend": spend,
        "transfer_spend": transfer_spend,
        "budget": budget,
        "budget_used_frac": (spend + transfer_spend) / budget if budget else None,
        "budget_shadow_price": sol.duals.get("budget"),
        "total_expected_cost": sol.stats["objective"],
        "total_expected_profit": float(report["expected_profit"].sum()),
        "expected_revenue": float((dem["price"] * (dem["expected_demand"]
                                                   - dem["expected_shortage"])).sum()),
        "expected_demand_units": float(mean),
        "expected_shortage_units": float(dem["expected_shortage"].sum()),
        "expected_leftover_units": float(dem["expected_leftover"].sum()),
        "expected_fill_rate": float(1 - dem["expected_shortage"].sum() / mean) if mean > 0
        else 1.0,
        "n_excess": int(dem["excess"].sum()),
        "binding_constraints": binding,
    }
    return out


def compare_plans(before: pd.DataFrame, after: pd.DataFrame, *, tol: float = 1e-6
                  ) -> pd.DataFrame:
    """Orders and transfers whose quantity changed between two decision tables.

    Returns:
        ``item_id, location_id, action, source, quantity_before, quantity_after, change``.
    """
    keys = ["item_id", "location_id", "action", "source"]

    def moves(d: pd.DataFrame) -> pd.DataFrame:
        d = d[d["action"].isin(["order", "transfer"])]
        return d.groupby(keys, as_index=False)["quantity"].sum()

    m = moves(before).merge(moves(after), on=keys, how="outer", suffixes=("_before", "_after"))
    m = m.fillna({"quantity_before": 0.0, "quantity_after": 0.0})
    m["change"] = m["quantity_after"] - m["quantity_before"]
    m = m[m["change"].abs() > tol * np.maximum(1.0, m["quantity_before"].abs())]
    return m.sort_values(keys).reset_index(drop=True)
