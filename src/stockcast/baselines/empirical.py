"""Naive, seasonal naive and moving average with empirical-error quantiles.

Each is a point method replayed at every past origin: its own in-sample ``h``-step errors
give the quantiles (:class:`EmpiricalErrorBaseline`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from stockcast.baselines.base import Baseline, ffill, rolling_mean


@dataclass
class EmpiricalErrorBaseline(Baseline):
    """Point method + quantiles from the empirical distribution of its own in-sample errors.

    For each step ``h`` the method is replayed at every past origin ``t`` with
    ``t + h <= origin``; the errors ``y[t+h] - f_t(h)`` form the error distribution.

    Rule (``error_pool="auto"``): a series with at least ``min_errors`` finite errors at
    step ``h`` uses its own error quantiles; a shorter series uses the pooled distribution
    of all series' errors divided by each series' mean demand over its history, multiplied
    by its own mean demand. ``"series"`` / ``"pooled"`` force one source (``"series"``
    falls back to pooled where a series has no error at all). With ``center`` the error
    quantiles are shifted so their median is 0: the median forecast ``q0.5`` equals the
    method's point forecast. Quantiles are clipped at 0.

    Args:
        name: Label.
        min_errors: Errors a series needs to use its own distribution (``auto``).
        error_pool: ``auto``, ``series`` or ``pooled``.
        error_window: Only use errors whose target lies in the last this many periods
            before the origin (``None``: the whole history).
        center: Keep the method's point forecast as the median.
    """

    name: str = "empirical"
    min_errors: int = 12
    error_pool: str = "auto"
    error_window: int | None = None
    center: bool = True

    def __post_init__(self) -> None:
        if self.error_pool not in ("auto", "series", "pooled"):
            raise ValueError(
                f"baseline {self.name!r}: error_pool must be auto, series or pooled, "
                f"not {self.error_pool!r}"
            )

    def point_path(self, y: np.ndarray, h: int) -> np.ndarray:
        """Forecasts ``f[:, t]`` of ``y[:, t + h]`` made at every column ``t`` from
        ``y[:, :t + 1]`` only (``y`` is forward-filled history). NaN where the method is
        undefined; a series undefined at the origin falls back to the last value."""
        raise NotImplementedError

    def _predict(self, wide, o, steps, levels):
        hist = wide.y[:, : o + 1]
        filled = ffill(hist)
        with warnings.catch_warnings():  # series without history: NaN scale, no forecast
            warnings.simplefilter("ignore", RuntimeWarning)
            level_scale = np.nanmean(np.abs(hist), axis=1)
        lv = np.asarray(levels)
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        for h in range(1, steps + 1):
            path = self.point_path(filled, h)
            fallback = ~np.isfinite(path[:, o])  # method undefined at the origin: last value
            path[fallback] = filled[fallback]
            point = path[:, o]
            err = hist[:, h:] - path[:, : o + 1 - h] if o + 1 - h > 0 else np.empty((len(hist), 0))
            if self.error_window is not None:
                err = err[:, -int(self.error_window) :]
            q_err = self._error_quantiles(err, level_scale, lv)
            if self.center:
                q_err = q_err - self._error_quantiles(err, level_scale, np.array([0.5]))
            out[:, h - 1, :] = point[:, None] + q_err
        return out

    def _error_quantiles(self, err: np.ndarray, scale: np.ndarray, lv: np.ndarray) -> np.ndarray:
        n_ok = np.isfinite(err).sum(axis=1)
        result = np.zeros((err.shape[0], len(lv)))
        use_own = n_ok >= (1 if self.error_pool == "series" else self.min_errors)
        if self.error_pool == "pooled":
            use_own[:] = False
        if use_own.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result[use_own] = np.nanquantile(err[use_own], lv, axis=1).T
        need_pool = ~use_own & np.isfinite(scale)
        if need_pool.any():
            ok_scale = np.isfinite(scale) & (scale > 0)
            scaled = err[ok_scale] / scale[ok_scale, None]
            pooled = scaled[np.isfinite(scaled)]
            if pooled.size == 0:
                warnings.warn(
                    f"baseline {self.name!r}: no in-sample errors to derive quantiles from "
                    "(history too short); quantiles collapse onto the point forecast",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                pq = np.quantile(pooled, lv)
                result[need_pool] = scale[need_pool, None] * pq[None, :]
        return result


@dataclass
class NaiveBaseline(EmpiricalErrorBaseline):
    """Last observed value, empirical-error quantiles (see :class:`EmpiricalErrorBaseline`)."""

    name: str = "naive"

    def point_path(self, y, h):
        return y


@dataclass
class SeasonalNaiveBaseline(EmpiricalErrorBaseline):
    """Value one season earlier than the target.

    A series whose history at the origin is shorter than the season is forecast (and its
    error quantiles derived) as the naive last value instead.

    Args:
        season_length: Periods per cycle; default from ``spec.freq`` (12 monthly,
            52 weekly, 7 daily).
    """

    name: str = "seasonal_naive"
    season_length: int | None = None

    def point_path(self, y, h):
        m = self.season(self.season_length)
        lag = m * math.ceil(h / m) - h  # target - lag*... : source column = t - lag
        src = np.full_like(y, np.nan)
        if lag < y.shape[1]:
            src[:, lag:] = y[:, : y.shape[1] - lag]
        return src


@dataclass
class MovingAverageBaseline(EmpiricalErrorBaseline):
    """Mean of the last ``window`` observed values (fewer at the series start).

    Args:
        window: Number of trailing periods averaged.
    """

    name: str = "moving_average"
    window: int = 6

    def point_path(self, y, h):
        if int(self.window) < 1:
            raise ValueError(f"baseline {self.name!r}: window must be >= 1")
        return rolling_mean(y, int(self.window))
