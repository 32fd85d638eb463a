"""Forecast accuracy metrics: the one naming scheme used everywhere.

Every metric is logged as ``{split}_{name}`` (``test_mae``, ``val_pinball``,
``test_coverage_80``...). :func:`forecast_metrics` is the only place that computes them,
for the TFT, the baselines and the monitor alike.

Inputs are forecast tables (:mod:`stockcast.schema`): one row per item × location × period with
quantile columns ``q<level>`` plus the realised ``demand``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.schema import point_column, quantile_column, quantile_levels

#: Central intervals reported as coverage/width, by nominal coverage in percent.
INTERVALS = (50, 80, 96)


def pinball_loss(y: np.ndarray, q: np.ndarray, level: float) -> np.ndarray:
    """Elementwise pinball (quantile) loss of forecast ``q`` at ``level`` for actual ``y``."""
    diff = y - q
    return np.maximum(level * diff, (level - 1.0) * diff)


def mase_scale(history: pd.DataFrame, season: int = 1) -> pd.Series:
    """Per-series in-sample MAE of the (seasonal) naive forecast, the MASE denominator.

    Args:
        history: Canonical panel rows before the forecast origin (``item_id``,
            ``location_id``, ``time_idx``, ``demand``).
        season: Lag of the naive forecast (1 = last value).
    """
    h = history.sort_values(["item_id", "location_id", "time_idx"])
    diff = h.groupby(["item_id", "location_id"], sort=False)["demand"].diff(season).abs()
    scale = diff.groupby([h["item_id"], h["location_id"]]).mean()
    scale.name = "mase_scale"
    return scale


def forecast_metrics(
    table: pd.DataFrame,
    *,
    prefix: str = "test",
    scale: pd.Series | None = None,
) -> dict[str, float]:
    """All accuracy metrics of a forecast table that carries actual ``demand``.

    Args:
        table: Forecast table with ``demand`` (actuals) and ``q<level>`` columns.
        prefix: Split name put in front of every metric (``test``, ``val``...).
        scale: Per-series MASE denominators (see :func:`mase_scale`); MASE is skipped
            without it.

    Returns:
        ``{prefix}_{name}`` -> value for mae, rmse, wape, smape, bias, pinball,
        bias_scaled and pinball_scaled (divided by the mean actual), mase,
        coverage_XX and width_XX for each central interval whose quantiles are present.
    """
    t = table.dropna(subset=["demand"])
    if t.empty:
        raise ValueError("forecast table has no rows with actual demand to score")
    y = t["demand"].to_numpy(float)
    yhat = t[point_column(t)].to_numpy(float)
    err = yhat - y
    abs_err = np.abs(err)
    denom = np.abs(y) + np.abs(yhat)
    smape = np.where(denom > 0, 2.0 * abs_err / np.where(denom > 0, denom, 1.0), 0.0)
    levels = quantile_levels(t)
    pinball = np.mean(
        [pinball_loss(y, t[quantile_column(q)].to_numpy(float), q).mean() for q in levels]
    )
    level = max(np.abs(y).mean(), 1e-12)
    out = {
        "mae": abs_err.mean(),
        "rmse": np.sqrt((err**2).mean()),
        "wape": abs_err.sum() / max(np.abs(y).sum(), 1e-12),
        "smape": 100.0 * smape.mean(),
        "bias": err.mean(),
        "pinball": pinball,
        # scale-free versions (divided by mean actual demand): comparable across windows
        # and segments of different volume (the drift monitor's band is set on these)
        "bias_scaled": err.mean() / level,
        "pinball_scaled": pinball / level,
    }
    if scale is not None:
        s = t.set_index(["item_id", "location_id"]).index.map(scale.to_dict().get)
        s = np.asarray(s, dtype=float)
        ok = np.isfinite(s) & (s > 0)
        if ok.any():
            out["mase"] = float((abs_err[ok] / s[ok]).mean())
    for pct in INTERVALS:
        lo, hi = (1 - pct / 100) / 2, 1 - (1 - pct / 100) / 2
        lo_c, hi_c = quantile_column(round(lo, 4)), quantile_column(round(hi, 4))
        if lo_c in t and hi_c in t:
            lower, upper = t[lo_c].to_numpy(float), t[hi_c].to_numpy(float)
            out[f"coverage_{pct}"] = float(((y >= lower) & (y <= upper)).mean())
            out[f"width_{pct}"] = float((upper - lower).mean())
    return {f"{prefix}_{k}": float(v) for k, v in out.items()}


def metrics_by_horizon(table: pd.DataFrame, *, prefix: str = "test", scale: pd.Series | None = None) -> pd.DataFrame:
    """:func:`forecast_metrics` per horizon step, one row per ``horizon``."""
    rows = []
    for h, grp in table.groupby("horizon"):
        m = forecast_metrics(grp, prefix=prefix, scale=scale)
        rows.append({"horizon": int(h), **m})
    return pd.DataFrame(rows)


def pit_values(table: pd.DataFrame) -> np.ndarray:
    """Probability integral transform of each actual under the piecewise-linear quantile CDF.

    Used for calibration (reliability) plots: a calibrated forecast gives uniform PIT values.
    """
    t = table.dropna(subset=["demand"])
    levels = np.array(quantile_levels(t))
    qs = t[[quantile_column(q) for q in levels]].to_numpy(float)
    y = t["demand"].to_numpy(float)
    out = np.empty(len(y))
    for i in range(len(y)):
        out[i] = np.interp(y[i], qs[i], levels, left=0.0, right=1.0)
    return out


def calibrated_metrics(
    table: pd.DataFrame,
    calibration,
    panel: pd.DataFrame | None,
    *,
    prefix: str,
    scale: pd.Series | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score a forecast table as served and, with a calibration, as the model made it.

    ``calibration`` is a :class:`stockcast.forecast.calibration.QuantileCalibration` (or
    ``None``): its ``apply(table, panel)`` gives the served quantiles.

    Returns:
        ``{prefix}_<metric>`` of the served (calibrated) quantiles plus, when there is a
        calibration, ``{prefix}_uncalibrated_<metric>`` of the model's own quantiles; and the
        served table.
    """
    if calibration is None:
        return forecast_metrics(table, prefix=prefix, scale=scale), table
    served = calibration.apply(table, panel)
    metrics = forecast_metrics(table, prefix=f"{prefix}_uncalibrated", scale=scale)
    metrics.update(forecast_metrics(served, prefix=prefix, scale=scale))
    return metrics, served


#: Metrics reported as ratios to a reference model (lower is better for all of them).
RATIO_METRICS = ("mae", "rmse", "wape", "pinball", "pinball_scaled", "mase", "smape")


def relative_to(summary: pd.DataFrame, reference: str, metrics: tuple[str, ...] = RATIO_METRICS) -> pd.DataFrame:
    """Each model's metric divided by ``reference``'s (``model`` column + one column per
    metric; 1.0 = as good as the reference, below 1 = better).

    Raises:
        ValueError: ``reference`` is not a row of ``summary``.
    """
    if reference not in set(summary["model"]):
        raise ValueError(f"reference model {reference!r} is not among {sorted(summary['model'])}")
    ref = summary.set_index("model").loc[reference]
    cols = [m for m in metrics if m in summary and pd.notna(ref.get(m)) and ref[m] != 0]
    out = summary[["model"]].copy()
    for m in cols:
        out[m] = summary[m].to_numpy(float) / float(ref[m])
    return out.reset_index(drop=True)


def relative_by_horizon(
    tables: dict[str, pd.DataFrame], reference: str, metrics: tuple[str, ...] = ("mae", "pinball")
) -> pd.DataFrame:
    """Per horizon, each model's metric divided by ``reference``'s on the same horizon
    (rows: model x horizon; columns: ``<metric>`` of the model and ``<metric>_ratio``)."""
    if reference not in tables:
        raise ValueError(f"reference model {reference!r} is not among {sorted(tables)}")
    by_h = {name: metrics_by_horizon(t, prefix="x").set_index("horizon") for name, t in tables.items()}
    ref = by_h[reference]
    rows = []
    for name, h in by_h.items():
        for step in h.index:
            row = {"model": name, "horizon": int(step)}
            for m in metrics:
                row[m] = float(h.loc[step, f"x_{m}"])
                row[f"{m}_ratio"] = row[m] / float(ref.loc[step, f"x_{m}"]) if step in ref.index else np.nan
            rows.append(row)
    return pd.DataFrame(rows)
