"""Backtest figures and a self-contained HTML report (tables + base64-embedded PNGs)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from stockcast.simulation.engine import COST_PARTS  # noqa: E402


def figures(per_period: dict[str, pd.DataFrame], table: pd.DataFrame,
            curves: pd.DataFrame, target_fill: float | None) -> dict[str, plt.Figure]:
    """Inventory/stockouts over time, cost breakdown, service-vs-inventory trade-off."""
    out = {}
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, df in per_period.items():
        a1.plot(df["period"], df["on_hand"], marker="o", label=name)
        a2.plot(df["period"], df["stockouts"], marker="o", label=name)
    a1.set_ylabel("end-of-period stock (units)")
    a2.set_ylabel("item-locations out of stock")
    a1.legend(fontsize=8)
    a1.set_title("Inventory and stockouts over the test window")
    fig.autofmt_xdate()
    out["inventory_stockouts.png"] = fig
    fig, ax = plt.subplots(figsize=(9, 4))
    parts = table.set_index("policy")[[f"{k}_cost" for k in COST_PARTS]]
    parts.plot.bar(stacked=True, ax=ax)
    ax.set_ylabel("cost over the window")
    ax.set_title("Cost breakdown per policy (before end-stock credit)")
    out["cost_breakdown.png"] = fig
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, c in curves.groupby("policy"):
        c = c.sort_values("fill_rate")
        ax.plot(c["fill_rate"], c["avg_inventory"], marker="o", label=name)
    if target_fill is not None:
        ax.axvline(target_fill, color="grey", ls="--", label=f"target fill {target_fill:.3f}")
    ax.set_xlabel("fill rate")
    ax.set_ylabel("average inventory (units)")
    ax.set_title("Service vs inventory (tuning grid)")
    ax.legend(fontsize=8)
    out["service_inventory_tradeoff.png"] = fig
    return out


def _png64(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def html_report(path: Path, title: str, notes: list[str], tables: dict[str, pd.DataFrame],
                figs: dict[str, plt.Figure]) -> Path:
    """Write one HTML file a planner can open anywhere (no external files)."""
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "</style></head><body>", f"<h1>{html.escape(title)}</h1><ul>"]
    parts += [f"<li>{html.escape(n)}</li>" for n in notes]
    parts.append("</ul>")
    for name, df in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(df.to_html(index=False, float_format=lambda v: f"{v:,.3f}"))
    for name, fig in figs.items():
        parts.append(f"<h2>{html.escape(name)}</h2><img src='data:image/png;base64,"
                     f"{_png64(fig)}'/>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
