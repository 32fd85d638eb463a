"""Post-hoc calibration of forecast quantiles (split-conformal, one shift per quantile level).

A TFT trained with the quantile loss tends to give intervals that are too narrow on new
data (on Stallion its 80% interval covered about 55% of the test actuals), which also
makes a newsvendor optimizer under-stock. After training, :func:`fit_conformal` looks at
the model's forecasts of the **validation** window (the window used for early stopping,
never the test window) and learns, per quantile level ``τ``, how far the forecast quantile
has to move so that a fraction ``τ`` of the actuals falls below it:

* residuals are made scale-free, ``r = (y - q_τ) / s``, with a per-row scale ``s`` (by
  default the series' mean demand over the encoder window before the forecast origin,
  ``scale=encoder_mean``; or the model's own median forecast, ``scale=median``), so one
  correction transfers across series whose volumes differ by orders of magnitude;
* rows are split into ``bins`` groups by that scale (Mondrian conformal prediction): small
  series have much larger relative errors than big ones, and one pooled correction would
  either over-widen the big series or under-cover the small ones;
* the shift of level ``τ`` in a group is the split-conformal quantile of its residuals
  (the ``⌈(n+1)τ⌉``-th smallest for upper levels, ``⌊(n+1)τ⌋``-th for lower ones), so
  under exchangeability ``P(y <= q'_τ) >= τ`` for ``τ > 0.5`` and ``P(y < q'_τ) <= τ`` for
  ``τ < 0.5``;
* the point forecast (the level closest to 0.5) is left as the model made it; the other
  levels are made monotone outward from it (no crossing) and clipped at zero.

The fitted :class:`QuantileCalibration` is stored with the registered model
(:class:`stockcast.forecast.bundle.ForecastBundle` keeps it in ``meta.json``), so every
consumer (evaluate, optimize, backtest, a downstream ``mlflow.pyfunc`` user) gets the
calibrated quantiles. ``calibration.method=none`` in the training config switches it off;
models registered before calibration existed simply have none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.schema import GROUP_IDS, point_column, quantile_column, quantile_levels

METHODS = ("none", "conformal")
SCALES = ("encoder_mean", "median")
#: Scale floor as a fraction of the median positive scale seen at fit time (series with no
#: recent demand must not divide residuals by zero).
FLOOR_FRACTION = 0.01


@dataclass
class QuantileCalibration:
    """Scale-free additive shifts of the forecast quantiles, per volume group and level.

    Attributes:
        levels: Quantile levels the shifts belong to (ascending).
        shifts: ``shifts[g][j]``: shift of ``levels[j]`` in scale units for group ``g``.
        edges: Scale values separating the groups (``len(shifts) - 1`` of them, ascending).
        scale: How a row's scale is computed: ``encoder_mean`` or ``median``.
        window: Periods before the forecast origin averaged by ``encoder_mean``.
        floor: Smallest scale used (demand units).
        rows: Calibration rows per group.
        info: Where it was fitted (window, origins), for the record.
    """

    levels: list[float]
    shifts: list[list[float]]
    edges: list[float]
    scale: str
    window: int
    floor: float
    rows: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"calibration.scale must be one of {SCALES}, not {self.scale!r}")
        if len(self.shifts) != len(self.edges) + 1:
            raise ValueError(
                f"calibration: {len(self.shifts)} groups of shifts need {len(self.shifts) - 1} "
                f"edges, got {len(self.edges)}"
            )
        if any(len(s) != len(self.levels) for s in self.shifts):
            raise ValueError("calibration: every group needs one shift per quantile level")

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model's ``meta.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileCalibration:
        return cls(**dict(data))

    # ------------------------------------------------------------------ use
    @property
    def columns(self) -> list[str]:
        return [quantile_column(q) for q in self.levels]

    def row_scale(self, table: pd.DataFrame, panel: pd.DataFrame | None) -> np.ndarray:
        """The per-row scale of a forecast table, floored (see :func:`row_scale`)."""
        return np.maximum(row_scale(table, panel, self.scale, self.window), self.floor)

    def group(self, scale: np.ndarray) -> np.ndarray:
        """Volume group of each row."""
        return np.searchsorted(np.asarray(self.edges, float), scale, side="right")

    def apply(self, table: pd.DataFrame, panel: pd.DataFrame | None) -> pd.DataFrame:
        """Calibrated copy of a forecast table.

        Args:
            table: Forecast table (``item_id``, ``location_id``, ``forecast_origin`` and the
                ``q<level>`` columns the calibration was fitted for).
            panel: Canonical panel holding each series' demand up to its forecast origin
                (only rows with ``period <= forecast_origin`` are read); may be ``None``
                with ``scale=median``.

        Raises:
            ValueError: The table lacks a quantile column the calibration needs.
        """
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise ValueError(
                f"forecast table: calibration needs quantile columns {missing} "
                f"(fitted for levels {self.levels})"
            )
        if table.empty:
            return table.copy()
        out = table.copy()
        s = self.row_scale(out, panel)
        shift = np.asarray(self.shifts, float)[self.group(s)]  # rows x levels
        q = out[self.columns].to_numpy(float) + shift * s[:, None]
        out[self.columns] = monotone_from_point(q, self.levels)
        return out


def monotone_from_point(q: np.ndarray, levels: list[float]) -> np.ndarray:
    """Non-crossing, non-negative quantiles that keep the point level (closest to 0.5) as is.

    Levels above the point forecast are raised to at least the level below them, levels
    below it lowered to at most the level above them; then everything is clipped at zero.
    """
    q = np.array(q, dtype=float, copy=True)
    p = int(np.argmin([abs(x - 0.5) for x in levels]))
    for j in range(p + 1, q.shape[1]):
        q[:, j] = np.maximum(q[:, j], q[:, j - 1])
    for j in range(p - 1, -1, -1):
        q[:, j] = np.minimum(q[:, j], q[:, j + 1])
    return np.maximum(q, 0.0)


def row_scale(table: pd.DataFrame, panel: pd.DataFrame | None, kind: str, window: int) -> np.ndarray:
    """Per-row scale of a forecast table, in demand units (NaN where none can be had).

    Args:
        table: Forecast table.
        panel: Canonical panel (``item_id``, ``location_id``, ``period``, ``demand``).
        kind: ``encoder_mean``: mean observed demand of the row's series over the last
            ``window`` periods up to its ``forecast_origin`` (nothing after the origin is
            read); ``median``: the row's own point forecast.
        window: Periods averaged by ``encoder_mean``.
    """
    if kind == "median":
        return table[point_column(table)].to_numpy(float)
    if kind != "encoder_mean":
        raise ValueError(f"calibration.scale must be one of {SCALES}, not {kind!r}")
    if panel is None:
        raise ValueError("calibration.scale=encoder_mean needs the panel with each series' history")
    hist = panel[[*GROUP_IDS, "period", "demand"]].dropna(subset=["demand"]).sort_values("period")
    keys = table[[*GROUP_IDS, "forecast_origin"]].astype({k: str for k in GROUP_IDS})
    levels = []
    for origin in keys["forecast_origin"].unique():
        past = hist[hist["period"] <= origin]
        level = past.groupby(GROUP_IDS, observed=True).tail(int(window))
        level = level.groupby(GROUP_IDS, observed=True)["demand"].mean().rename("scale").reset_index()
        level[GROUP_IDS] = level[GROUP_IDS].astype(str)
        level["forecast_origin"] = origin
        levels.append(level)
    scale = pd.concat(levels, ignore_index=True)
    merged = keys.merge(scale, on=[*GROUP_IDS, "forecast_origin"], how="left")
    return merged["scale"].to_numpy(float)


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """Split-conformal quantile of ``residuals`` for a one-sided bound at ``level``.

    Upper levels take the ``⌈(n+1)τ⌉``-th smallest residual (the largest when that exceeds
    ``n``), lower levels the ``⌊(n+1)τ⌋``-th (the smallest when that is 0), level 0.5 the
    empirical median.
    """
    r = np.sort(np.asarray(residuals, float))
    n = len(r)
    if n == 0:
        raise ValueError("conformal_quantile: no residuals")
    if level > 0.5:
        k = min(math.ceil((n + 1) * level), n)
    elif level < 0.5:
        k = max(math.floor((n + 1) * level), 1)
    else:
        return float(np.median(r))
    return float(r[k - 1])


def fit_conformal(
    table: pd.DataFrame,
    panel: pd.DataFrame | None,
    *,
    scale: str = "encoder_mean",
    window: int = 12,
    bins: int = 3,
    min_rows_per_bin: int = 50,
    info: Mapping[str, Any] | None = None,
) -> QuantileCalibration:
    """Fit the calibration on forecasts with known actuals (the validation window).

    Args:
        table: Forecast table with actual ``demand`` (rows without it are ignored).
        panel: Canonical panel with the series' history (for ``scale=encoder_mean``).
        scale: Per-row scale the residuals are divided by (see :func:`row_scale`).
        window: Periods averaged by ``encoder_mean`` (the model's encoder length).
        bins: Volume groups (quantiles of the scale), each calibrated on its own; fewer are
            used when there are less than ``min_rows_per_bin`` rows per group.
        min_rows_per_bin: Rows a group needs.
        info: Extra facts stored with the calibration (window, origins).

    Raises:
        ValueError: No scored rows, a bad ``scale`` or ``bins < 1``.
    """
    if int(bins) < 1:
        raise ValueError(f"calibration.bins must be >= 1, got {bins}")
    t = table.dropna(subset=["demand"]).reset_index(drop=True)
    if t.empty:
        raise ValueError("calibration: the forecast table has no rows with actual demand")
    levels = quantile_levels(t)
    raw = row_scale(t, panel, scale, window)
    positive = raw[np.isfinite(raw) & (raw > 0)]
    floor = FLOOR_FRACTION * float(np.median(positive)) if len(positive) else 1.0
    s = np.maximum(np.nan_to_num(raw, nan=floor), floor)
    n_bins = max(1, min(int(bins), len(t) // max(int(min_rows_per_bin), 1)))
    edges = np.quantile(s, np.linspace(0, 1, n_bins + 1)[1:-1]).tolist() if n_bins > 1 else []
    edges = sorted(set(edges))  # ties (many equal scales) merge groups
    group = np.searchsorted(np.asarray(edges, float), s, side="right")
    y = t["demand"].to_numpy(float)
    point = min(levels, key=lambda q: abs(q - 0.5))
    shifts, rows = [], []
    for g in range(len(edges) + 1):
        m = group == g
        rows.append(int(m.sum()))
        shifts.append(
            [
                0.0 if level == point or not m.any()
                else conformal_quantile((y[m] - t[quantile_column(level)].to_numpy(float)[m]) / s[m], level)
                for level in levels
            ]
        )
    return QuantileCalibration(
        levels=[float(q) for q in levels],
        shifts=shifts,
        edges=[float(e) for e in edges],
        scale=scale,
        window=int(window),
        floor=float(floor),
        rows=rows,
        info=dict(info or {}),
    )


def fit_calibration(
    forecasts: pd.DataFrame,
    panel: pd.DataFrame,
    *,
    method: str = "conformal",
    scale: str = "encoder_mean",
    window: int,
    bins: int = 3,
    min_rows_per_bin: int = 50,
    info: Mapping[str, Any] | None = None,
) -> QuantileCalibration | None:
    """The calibration ``method`` asks for, fitted on uncalibrated forecasts with actuals.

    ``forecasts`` are the model's own forecasts of a held-out window (the validation window,
    from :func:`stockcast.forecast.protocol.cross_validate`), made the way it serves them.
    ``method="none"`` returns ``None`` (serve the model's own quantiles).

    Raises:
        ValueError: An unknown method (or what :func:`fit_conformal` raises).
    """
    if method not in METHODS:
        raise ValueError(f"calibration.method must be one of {METHODS}, not {method!r}")
    if method == "none":
        return None
    return fit_conformal(
        forecasts,
        panel,
        scale=scale,
        window=window,
        bins=bins,
        min_rows_per_bin=min_rows_per_bin,
        info=info,
    )
