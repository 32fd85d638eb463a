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
            curves: pd.DataFrame, matched: pd.DataFrame | None = None,
            evaluated: pd.DataFrame | None = None) -> dict[str, plt.Figure]:
    """Inventory (per echelon) and stockouts over time, cost breakdown, service-vs-inventory
    trade-off curves with each policy's matched-service points (``evaluated``: the main
    runs' KPIs over the periods the curves cover, for the oracle's point; default
    ``table``)."""
    out = {}
    echelons = sorted({c.removeprefix("on_hand_") for df in per_period.values()
                       for c in df.columns if c.startswith("on_hand_")})
    rows = len(echelons) + 1 if len(echelons) > 1 else 2
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows), sharex=True)
    stock_axes = axes[:-1] if len(echelons) > 1 else axes[:1]
    for name, df in per_period.items():
        if len(echelons) > 1:
            for ax, e in zip(stock_axes, echelons, strict=True):
                ax.plot(df["period"], df[f"on_hand_{e}"], marker="o", label=name)
        else:
            stock_axes[0].plot(df["period"], df["on_hand"], marker="o", label=name)
        axes[-1].plot(df["period"], df["stockouts"], marker="o", label=name)
    for ax, e in zip(stock_axes, echelons if len(echelons) > 1 else ["all"], strict=True):
        ax.set_ylabel(f"stock: {e} (units)")
    axes[-1].set_ylabel("item-locations out of stock")
    stock_axes[0].legend(fontsize=8)
    stock_axes[0].set_title("Inventory (end of period) and stockouts over the test window")
    fig.autofmt_xdate()
    out["inventory_stockouts.png"] = fig
    fig, ax = plt.subplots(figsize=(9, 4))
    parts = table.set_index("policy")[[f"{k}_cost" for k in COST_PARTS]]
    parts.plot.bar(stacked=True, ax=ax)
    ax.set_ylabel("cost over the window")
    ax.set_title("Cost breakdown per policy (before end-stock credit)")
    out["cost_breakdown.png"] = fig
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = {}
    for name, c in curves.groupby("policy", sort=False):
        c = c.sort_values("knob")
        (line,) = ax.plot(c["fill_rate"], c["avg_inventory"], marker="o", label=name)
        colors[name] = line.get_color()
    points = table if evaluated is None else evaluated
    if "oracle" in set(points["policy"]):
        o = points.set_index("policy").loc["oracle"]
        ax.plot([o["fill_rate"]], [o["avg_inventory"]], marker="*", ms=14, ls="none",
                color="k", label="oracle")
    if matched is not None and len(matched):
        for target in matched["target_fill_rate"].unique():
            ax.axvline(target, color="grey", ls="--", lw=1)
        hit = matched[matched["reached"].astype(bool) & (matched["policy"] != "oracle")]
        ax.scatter(hit["target_fill_rate"], hit["avg_inventory"], marker="D", s=40,
                   c=[colors.get(p, "k") for p in hit["policy"]], zorder=5,
                   label="matched-service points")
    ax.set_xlabel("fill rate")
    ax.set_ylabel("average inventory (units, all echelons)")
    ax.set_title("Service vs inventory (tuning runs)")
    ax.legend(fontsize=8)
    out["service_inventory_tradeoff.png"] = fig
    return out


def _png64(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def html_report(path: Path, title: str, notes: list[str], tables: dict[str, pd.DataFrame],
                figs: dict[str, plt.Figure], *, headline: list[str] | None = None,
                lead_figure: str | None = None,
                details: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write one HTML file a planner can open anywhere (no external files).

    Order: the answer first (``headline``: one sentence per service target), the
    ``lead_figure`` (the service-inventory trade-off), the ``tables``, the other figures,
    then ``details`` (per echelon, per location, the full search) and the ``notes`` on the
    setting at the end.
    """
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:3px 6px;text-align:right}.answer li{font-size:16px;margin:.3em 0}"
             "details{margin-top:1em}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if headline:
        parts.append("<h2>The answer</h2><ul class='answer'>")
        parts += [f"<li>{html.escape(line.strip())}</li>" for line in headline]
        parts.append("</ul>")
    rest = dict(figs)
    if lead_figure is not None and lead_figure in rest:
        fig = rest.pop(lead_figure)
        parts.append(f"<img src='data:image/png;base64,{_png64(fig)}'/>")
    for name, df in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(df.to_html(index=False, float_format=lambda v: f"{v:,.3f}"))
    for name, fig in rest.items():
        parts.append(f"<h2>{html.escape(name)}</h2><img src='data:image/png;base64,"
                     f"{_png64(fig)}'/>")
    for name, df in (details or {}).items():
        parts.append(f"<details><summary><b>{html.escape(name)}</b></summary>")
        parts.append(df.to_html(index=False, float_format=lambda v: f"{v:,.3f}"))
        parts.append("</details>")
    parts.append("<h2>Setting</h2><ul>")
    parts += [f"<li>{html.escape(n)}</li>" for n in notes]
    parts.append("</ul></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
