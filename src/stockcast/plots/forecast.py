"""Figures of forecasts: fans, variable importance, attention, calibration, model comparison,
price response (the tasks log them to MLflow)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stockcast.schema import GROUP_IDS, quantile_column, quantile_levels  # noqa: E402


def fan_chart(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    series: list[tuple[str, str]],
    *,
    title: str = "Forecast fan",
    n_history: int = 24,
) -> plt.Figure:
    """History, median and nested central intervals for a few series (one panel each)."""
    n = len(series)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    levels = quantile_levels(forecast)
    pairs = [(lo, hi) for lo in levels for hi in levels if lo < 0.5 < hi and abs(lo + hi - 1) < 1e-6]
    for ax, (item, loc) in zip(axes.flat, series, strict=False):
        h = history[(history.item_id == item) & (history.location_id == loc)].sort_values("period")
        f = forecast[(forecast.item_id == item) & (forecast.location_id == loc)].sort_values("period")
        h = h.tail(n_history)
        ax.plot(h["period"], h["demand"], color="black", lw=1.2, label="actual")
        for lo, hi in sorted(pairs, key=lambda p: p[0]):
            ax.fill_between(
                f["period"],
                f[quantile_column(lo)],
                f[quantile_column(hi)],
                color="tab:blue",
                alpha=0.15,
                label=f"{round((hi - lo) * 100)}% interval",
            )
        if 0.5 in levels:
            ax.plot(f["period"], f[quantile_column(0.5)], color="tab:blue", lw=1.5, label="median")
        if "demand" in f and f["demand"].notna().any():
            ax.plot(f["period"], f["demand"], "o", color="black", ms=3)
        ax.set_title(f"{item} @ {loc}", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def importance_chart(importance: pd.DataFrame) -> plt.Figure:
    """Horizontal bars of variable importance, one panel per role."""
    roles = list(importance["role"].unique())
    fig, axes = plt.subplots(1, len(roles), figsize=(5 * len(roles), 0.35 * importance.groupby("role").size().max() + 1.5))
    axes = np.atleast_1d(axes)
    for ax, role in zip(axes, roles, strict=True):
        d = importance[importance.role == role].sort_values("importance")
        ax.barh(d["variable"], d["importance"] * 100, color="tab:green")
        ax.set_title(f"{role} variables")
        ax.set_xlabel("importance (%)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def permutation_chart(importance: pd.DataFrame, title: str = "Permutation importance") -> plt.Figure:
    """Horizontal bars of permutation importance (% rise of the pinball loss), with the
    spread over repeats as error bars; variables that could not be scored are left out."""
    d = importance.dropna(subset=["importance"]).sort_values("importance")
    colors = {"static": "tab:gray", "known": "tab:blue", "unknown": "tab:orange"}
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(d) + 1.5))
    ax.barh(
        d["variable"],
        d["importance"] * 100,
        xerr=d["importance_std"] * 100,
        color=[colors.get(r.split("+")[0], "tab:green") for r in d["role"]],
    )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("rise of the pinball loss when the variable is replaced (%)")
    ax.set_title(f"{title} (blue known, orange unknown, grey static)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def attention_chart(profile: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(profile["relative_period"], profile["attention"], color="tab:purple")
    ax.set_xlabel("periods before forecast origin")
    ax.set_ylabel("mean attention")
    ax.set_title("Attention over encoder time")
    fig.tight_layout()
    return fig


def calibration_chart(pit: np.ndarray, forecast: pd.DataFrame) -> plt.Figure:
    """PIT histogram and reliability diagram (observed vs nominal quantile level)."""
    levels = quantile_levels(forecast)
    t = forecast.dropna(subset=["demand"])
    observed = [float((t["demand"] <= t[quantile_column(q)]).mean()) for q in levels]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.hist(pit, bins=10, range=(0, 1), color="tab:orange", edgecolor="white", density=True)
    a.axhline(1.0, color="black", lw=1, ls="--")
    a.set_title("PIT histogram (flat = calibrated)")
    b.plot([0, 1], [0, 1], color="black", lw=1, ls="--")
    b.plot(levels, observed, "o-", color="tab:orange")
    b.set_xlabel("nominal quantile level")
    b.set_ylabel("observed frequency below")
    b.set_title("Reliability")
    fig.tight_layout()
    return fig


def pick_series(table: pd.DataFrame, score: str = "abs_err", n: int = 3, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Best, worst and random series by mean absolute error of the median."""
    t = table.dropna(subset=["demand"])
    med = quantile_column(0.5) if quantile_column(0.5) in t else None
    if med is None or t.empty:
        keys = table[GROUP_IDS].drop_duplicates().head(n)
        return {"random": [tuple(k) for k in keys.itertuples(index=False)]}
    err = (t[med] - t["demand"]).abs().groupby([t.item_id, t.location_id]).mean().sort_values()
    rng = np.random.default_rng(seed)
    keys = list(err.index)
    rand = [keys[i] for i in rng.choice(len(keys), size=min(n, len(keys)), replace=False)]
    return {"best": keys[:n], "worst": keys[-n:][::-1], "random": rand}


def comparison_chart(summary: pd.DataFrame, highlight: str = "tft") -> plt.Figure:
    """Bar charts of MAE, pinball loss and 80% coverage per model (``highlight`` in red)."""
    cols = [c for c in ("mae", "pinball", "coverage_80") if c in summary]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.5 * len(cols), 3.2))
    for ax, c in zip(np.atleast_1d(axes), cols, strict=True):
        d = summary.sort_values(c)
        ax.barh(d["model"], d[c], color=["tab:red" if m == highlight else "tab:gray" for m in d["model"]])
        ax.set_title(c)
        if c == "coverage_80":
            ax.axvline(0.8, color="black", ls="--", lw=1)
    fig.tight_layout()
    return fig


def price_response_chart(pdp: pd.DataFrame) -> plt.Figure:
    """Mean forecast quantiles against the planned price (partial dependence)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    x = pdp["price_factor"]
    for lo, hi in ((0.1, 0.9), (0.25, 0.75)):
        a, b = quantile_column(lo), quantile_column(hi)
        if a in pdp and b in pdp:
            ax.fill_between(x, pdp[a], pdp[b], alpha=0.2, color="tab:blue")
    ax.plot(x, pdp[quantile_column(0.5)], "o-", color="tab:blue")
    ax.set_xlabel("price / list price")
    ax.set_ylabel("mean forecast demand per series-period")
    ax.set_title("TFT demand response to price (partial dependence)")
    fig.tight_layout()
    return fig


def drift_demo_chart(scores: pd.DataFrame, timeline: pd.DataFrame, shock_idx: int | None, dates) -> plt.Figure:
    """Served vs never-retrained vs true pinball per period; monitor flags and retrains."""
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    x = pd.to_datetime(scores["period"])
    for col, color, label in (("served", "tab:red", "served (continuous learning)"), ("static", "tab:gray", "first model, never retrained"), ("truth", "tab:green", "true quantiles")):
        c = f"{col}_pinball_scaled"
        if c in scores:
            axes[0].plot(x, scores[c], "o-", color=color, label=label, ms=3)
    axes[0].set_ylabel("pinball / mean demand")
    axes[0].legend(fontsize=8)
    tx = pd.to_datetime(timeline["period"])
    axes[1].plot(tx, timeline["pinball_ratio"], "o-", color="tab:blue", ms=3, label="monitor pinball ratio")
    drift = timeline["status"] == "drift"
    axes[1].scatter(tx[drift], timeline.loc[drift, "pinball_ratio"], color="tab:red", zorder=3, label="drift flagged")
    for _, r in timeline[timeline["action"] != ""].iterrows():
        axes[1].axvline(pd.Timestamp(r["period"]), color="tab:purple", ls=":", lw=1)
        axes[1].annotate(r["action"], (pd.Timestamp(r["period"]), axes[1].get_ylim()[1] * 0.9), fontsize=6, rotation=90, va="top")
    axes[1].set_ylabel("monitor: pinball ratio")
    axes[1].legend(fontsize=8)
    if shock_idx is not None and shock_idx < len(dates):
        for ax in axes:
            ax.axvline(pd.Timestamp(dates[shock_idx]), color="black", ls="--", lw=1)
    fig.suptitle("Drift demo: regime change (dashed), monitor flags, retrains (dotted)")
    fig.tight_layout()
    return fig
