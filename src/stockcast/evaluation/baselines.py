"""Baseline forecasters for honest evaluation: what the TFT has to beat.

Every baseline has the same interface (:class:`Baseline`): ``forecast(panel, origins,
horizon, quantiles, spec)`` returns a forecast table (:mod:`stockcast.schema`) with one row per
item × location × forecast period and origin, ``forecast_origin``, ``horizon``, one
``q<level>`` column per quantile level (non-crossing, non-negative, demand units) and the
actual ``demand`` where the panel holds it.

An *origin* is a ``time_idx``: the forecaster sees demand and unknown covariates only at
``time_idx <= origin``; known-future covariates (``spec.known_reals``,
``spec.known_categoricals`` and the calendar) are also read for the forecast periods.
Forecast periods are the panel's own rows at ``origin + 1 .. origin + horizon``: the
horizon is truncated at the end of the panel, and forecasting the real future means
passing the future rows (demand NaN, known covariates filled), e.g. from
``to_canonical(..., allow_future=True)``. Series with no observed demand at or before an
origin get no forecast for that origin. Several origins give stacked tables (rolling
origin evaluation); every origin is fitted afresh on its own history.

Baselines:

* :class:`NaiveBaseline` (last value), :class:`SeasonalNaiveBaseline` and
  :class:`MovingAverageBaseline` take their quantiles from the empirical distribution of
  the method's own in-sample ``h``-step errors (see :class:`EmpiricalErrorBaseline` for
  the per-series / pooled rule).
* :class:`AutoETSBaseline`: statsforecast ``AutoETS`` with its prediction intervals.
* :class:`LightGBMBaseline`: one global direct multi-horizon LightGBM model per quantile on
  the covariates the TFT sees.

:func:`make_baselines` builds them from names or a Hydra config (``conf/baselines/``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.schema import check_levels, quantile_column, season_length_for

#: Columns a panel must carry for the baselines.
PANEL_COLUMNS = ("item_id", "location_id", "period", "time_idx", "demand")

# ---------------------------------------------------------------------------------- panel
class WidePanel:
    """A canonical panel as series × time arrays (one row per series, one column per period).

    Args:
        panel: Canonical panel (``item_id``, ``location_id``, ``period``, ``time_idx``,
            ``demand`` and covariates).
        spec: Dataset spec; its ``freq`` fills grid periods that no series has.

    Raises:
        ValueError: Missing columns, or duplicate item × location × time_idx rows.
    """

    def __init__(self, panel: pd.DataFrame, spec: DatasetSpec | None = None):
        missing = [c for c in PANEL_COLUMNS if c not in panel.columns]
        if missing:
            raise ValueError(f"panel: missing column(s) {missing} (canonical panel expected)")
        dup = panel.duplicated(["item_id", "location_id", "time_idx"], keep=False)
        if dup.any():
            rows = panel.index[dup.to_numpy()][:10].tolist()
            raise ValueError(
                f"panel: {int(dup.sum())} duplicate item_id × location_id × time_idx rows, "
                f"e.g. rows {rows}"
            )
        self.panel = panel
        keys = panel[["item_id", "location_id"]].astype(str)
        index = pd.MultiIndex.from_frame(keys)
        self.keys = index.unique().sort_values()
        self.sid = self.keys.get_indexer(index)
        tidx = panel["time_idx"].to_numpy(int)
        self.t0 = int(tidx.min())
        self.n_series = len(self.keys)
        self.n_time = int(tidx.max()) - self.t0 + 1
        self.col = tidx - self.t0
        self.present = np.zeros((self.n_series, self.n_time), bool)
        self.present[self.sid, self.col] = True
        self.y = self.wide("demand")
        self.periods = self._period_grid(spec)

    def _period_grid(self, spec: DatasetSpec | None) -> np.ndarray:
        grid = pd.Series(pd.NaT, index=range(self.n_time), dtype="datetime64[ns]")
        first = pd.DataFrame({"col": self.col, "period": self.panel["period"].to_numpy()})
        first = first.drop_duplicates("col").set_index("col")["period"]
        grid.loc[first.index] = first.to_numpy()
        if grid.isna().any():
            if spec is None:
                return grid.to_numpy()  # WidePanel.table raises if it needs a missing one
            offset = pd.tseries.frequencies.to_offset(spec.freq)
            anchor_col = int(first.index[0])
            anchor = pd.Timestamp(first.iloc[0])
            for c in np.flatnonzero(grid.isna().to_numpy()):
                grid.iloc[c] = anchor + (int(c) - anchor_col) * offset
        return grid.to_numpy()

    def wide(self, column: str) -> np.ndarray:
        """Numeric column as a float (series × time) array, NaN where the panel has no row."""
        out = np.full((self.n_series, self.n_time), np.nan)
        out[self.sid, self.col] = pd.to_numeric(self.panel[column]).to_numpy(float)
        return out

    def codes(self, column: str) -> np.ndarray:
        """Categorical column as float category codes (sorted categories), NaN where absent."""
        values = self.panel[column].astype("string")
        cat = pd.Categorical(values, categories=sorted(values.dropna().unique()))
        codes = cat.codes.astype(float)
        codes[codes < 0] = np.nan
        out = np.full((self.n_series, self.n_time), np.nan)
        out[self.sid, self.col] = codes
        return out

    def history(self, o: int) -> np.ndarray:
        """Demand visible at origin column ``o``: columns after it blanked to NaN."""
        y = self.y.copy()
        y[:, o + 1 :] = np.nan
        return y

    def table(self, o: int, q: np.ndarray, levels: list[float], name: str) -> pd.DataFrame:
        """Forecast table for origin column ``o`` from quantiles ``q`` [series, step, level]."""
        steps = q.shape[1]
        has_history = np.isfinite(self.y[:, : o + 1]).any(axis=1)
        mask = self.present[:, o + 1 : o + 1 + steps] & has_history[:, None]
        s, j = np.nonzero(mask)
        values = q[s, j, :]
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            examples = [f"{self.keys[k][0]}@{self.keys[k][1]}" for k in np.unique(s[bad])[:5]]
            raise ValueError(
                f"baseline {name!r}: non-finite forecasts at origin time_idx {o + self.t0} "
                f"for {int(bad.sum())} row(s), series e.g. {', '.join(examples)}"
            )
        values = np.sort(np.clip(values, 0.0, None), axis=1)
        cols = o + 1 + j
        origin_period = self.periods[o]
        if pd.isna(origin_period) or pd.isna(self.periods[cols]).any():
            raise ValueError(
                "panel: the period grid has holes around origin time_idx "
                f"{o + self.t0}; pass spec so its freq can fill them"
            )
        out = pd.DataFrame(
            {
                "item_id": self.keys.get_level_values(0)[s],
                "location_id": self.keys.get_level_values(1)[s],
                "period": self.periods[cols],
                "forecast_origin": pd.Timestamp(origin_period),
                "horizon": (j + 1).astype(int),
            }
        )
        for k, level in enumerate(levels):
            out[quantile_column(level)] = values[:, k]
        out["demand"] = self.y[s, cols]
        return out


# ------------------------------------------------------------------------- array helpers
def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along the time axis (leading NaNs stay NaN)."""
    idx = np.where(np.isfinite(a), np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return a[np.arange(a.shape[0])[:, None], idx]


def _rolling(a: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing-window (sum, sum of squares, count) of finite values, per column."""
    ok = np.isfinite(a)
    x = np.where(ok, a, 0.0)
    pad = np.zeros((a.shape[0], 1))
    cums = [np.concatenate([pad, np.cumsum(v, axis=1)], axis=1) for v in (x, x * x, ok * 1.0)]
    start = np.maximum(np.arange(1, a.shape[1] + 1) - window, 0)
    out = [c[:, 1:] - c[:, start] for c in cums]
    return out[0], out[1], out[2]


def rolling_mean(a: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of the finite values in the last ``window`` columns (NaN if none)."""
    s, _, n = _rolling(a, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def rolling_std(a: np.ndarray, window: int) -> np.ndarray:
    """Trailing standard deviation of the finite values in the last ``window`` columns."""
    s, ss, n = _rolling(a, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / np.maximum(n, 1)
        var = np.maximum(ss / np.maximum(n, 1) - mean**2, 0.0)
        return np.where(n > 1, np.sqrt(var), np.nan)


def _take(a: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``a[s, t]`` with NaN where ``t`` is outside the array."""
    ok = (t >= 0) & (t < a.shape[1])
    out = np.full(len(s), np.nan)
    out[ok] = a[s[ok], t[ok]]
    return out


# ------------------------------------------------------------------------------ interface
@dataclass
class Baseline:
    """Common interface of all baselines.

    Args:
        name: Label used in reports and metric tables.
    """

    name: str = "baseline"

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: int | Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
        spec: DatasetSpec | None = None,
    ) -> pd.DataFrame:
        """Quantile forecasts from each origin, stacked.

        Args:
            panel: Canonical panel (see :func:`stockcast.data.panel.load_panel`).
            origins: ``time_idx`` of the last period visible to the forecaster, one or several.
            horizon: Steps ahead (truncated at the end of the panel).
            quantiles: Quantile levels; default :data:`DEFAULT_QUANTILES`.
            spec: Dataset spec (frequency and covariate roles).

        Returns:
            Forecast table sorted by origin, item, location and horizon.

        Raises:
            ValueError: Bad horizon, quantile levels or origins, or an origin with no
                panel period after it.
        """
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        levels = check_levels(quantiles)
        origin_list = [int(origins)] if np.isscalar(origins) else [int(o) for o in origins]
        if not origin_list:
            raise ValueError("origins is empty: give at least one time_idx")
        wide = WidePanel(panel, spec)
        last = wide.t0 + wide.n_time - 1
        tables = []
        for origin in origin_list:
            o = origin - wide.t0
            if o < 0 or o >= wide.n_time - 1:
                raise ValueError(
                    f"baseline {self.name!r}: origin time_idx {origin} leaves no period to "
                    f"forecast in the panel (time_idx {wide.t0}..{last}); add future rows "
                    "with known covariates to forecast beyond the data"
                )
            steps = min(int(horizon), wide.n_time - 1 - o)
            q = self._predict(wide, o, steps, levels, spec)
            tables.append(wide.table(o, q, levels, self.name))
        out = pd.concat(tables, ignore_index=True)
        return out.sort_values(
            ["forecast_origin", "item_id", "location_id", "horizon"], ignore_index=True
        )

    def _predict(
        self,
        wide: WidePanel,
        o: int,
        steps: int,
        levels: list[float],
        spec: DatasetSpec | None,
    ) -> np.ndarray:
        """Quantiles [series, step, level] from origin column ``o`` (rows may be NaN where
        the table needs no forecast)."""
        raise NotImplementedError


def _season(season_length: int | None, spec: DatasetSpec | None, name: str) -> int:
    if season_length is not None:
        if int(season_length) < 1:
            raise ValueError(f"baseline {name!r}: season_length must be >= 1")
        return int(season_length)
    if spec is None:
        raise ValueError(f"baseline {name!r}: give season_length or a spec with freq")
    return season_length_for(spec.freq)


# ----------------------------------------------------------------- empirical-error family
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

    def point_path(self, y: np.ndarray, h: int, spec: DatasetSpec | None) -> np.ndarray:
        """Forecasts ``f[:, t]`` of ``y[:, t + h]`` made at every column ``t`` from
        ``y[:, :t + 1]`` only (``y`` is forward-filled history). NaN where the method is
        undefined; a series undefined at the origin falls back to the last value."""
        raise NotImplementedError

    def _predict(self, wide, o, steps, levels, spec):
        hist = wide.y[:, : o + 1]
        filled = _ffill(hist)
        with warnings.catch_warnings():  # series without history: NaN scale, no forecast
            warnings.simplefilter("ignore", RuntimeWarning)
            level_scale = np.nanmean(np.abs(hist), axis=1)
        lv = np.asarray(levels)
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        for h in range(1, steps + 1):
            path = self.point_path(filled, h, spec)
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

    def point_path(self, y, h, spec):
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

    def point_path(self, y, h, spec):
        m = _season(self.season_length, spec, self.name)
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

    def point_path(self, y, h, spec):
        if int(self.window) < 1:
            raise ValueError(f"baseline {self.name!r}: window must be >= 1")
        return rolling_mean(y, int(self.window))


# ------------------------------------------------------------------------------ AutoETS
@dataclass
class AutoETSBaseline(Baseline):
    """statsforecast ``AutoETS`` per series (vectorized over series, one process).

    Quantile ``q`` comes from the symmetric prediction interval at level
    ``100·|1 - 2q|`` (lower bound for ``q < 0.5``, upper for ``q > 0.5``); ``q = 0.5`` is the
    point (mean) forecast. Series ETS cannot fit (e.g. a single observation) fall back to
    statsforecast's ``Naive``. Forecasts are clipped at 0.

    Args:
        season_length: Periods per cycle; default from ``spec.freq``.
        model: ETS model string (``ZZZ`` = automatic error/trend/season selection).
        damped: Damped trend (``None``: try both).
        n_jobs: statsforecast processes (1 keeps it in-process).
    """

    name: str = "auto_ets"
    season_length: int | None = None
    model: str = "ZZZ"
    damped: bool | None = None
    n_jobs: int = 1

    def _predict(self, wide, o, steps, levels, spec):
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, Naive

        m = _season(self.season_length, spec, self.name)
        hist = _ffill(wide.y[:, : o + 1])
        ok = np.isfinite(hist)
        s, c = np.nonzero(ok)
        df = pd.DataFrame({"unique_id": s, "ds": c, "y": hist[s, c]})
        sf = StatsForecast(
            models=[AutoETS(season_length=m, model=self.model, damped=self.damped)],
            freq=1,
            n_jobs=self.n_jobs,
            fallback_model=Naive(),
        )
        interval = {q: round(100 * abs(1 - 2 * q), 8) for q in levels if q != 0.5}
        ets_levels = sorted(set(interval.values()))
        fc = sf.forecast(h=steps, df=df, level=ets_levels or None)
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        sid = fc["unique_id"].to_numpy(int)
        step = fc["ds"].to_numpy(int) - o - 1
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        for k, q in enumerate(levels):
            if q == 0.5:
                col = "AutoETS"
            else:
                col = f"AutoETS-{'lo' if q < 0.5 else 'hi'}-{interval[q]}"
            out[sid, step, k] = fc[col].to_numpy(float)
        return out


# ----------------------------------------------------------------------------- LightGBM
@dataclass
class LightGBMBaseline(Baseline):
    """Global direct multi-horizon LightGBM, one model per quantile (``objective=quantile``).

    A training row is (series, anchor ``t``, step ``h``) with target ``y[t + h]``: demand
    features are built at the anchor (lags, rolling means/std, seasonal lags of the target
    period, share of zeros), unknown covariates at the anchor, known-future covariates and
    calendar at the target period (plus their change against the anchor), static
    covariates, item and location as categoricals, item- and location-level total demand,
    and ``h`` itself. Only rows whose target period is ``<= origin`` are used (demand and
    unknown covariates after the origin are blanked before any feature is built). The
    target (and the demand features) are divided by the series' mean demand over the last
    ``scale_window`` periods at the anchor, so one model pools all series; rows are
    weighted by that mean to the power ``weight_by_scale`` (1: pinball in demand units,
    0: every row alike; 0.5 validated best on Stallion). With ``calibrate`` the quantiles
    are shifted by an out-of-time conformal correction (quantile regression trees are
    over-confident in-sample). Predictions are multiplied back, clipped at 0 and sorted
    (no crossing). Defaults were chosen on Stallion's validation origins (35, 41, 47),
    never on the test window.

    Args:
        n_estimators: Boosting rounds per quantile model.
        learning_rate: Shrinkage.
        num_leaves: Leaves per tree.
        min_child_samples: Minimum rows per leaf.
        subsample: Row subsample per tree (bagging).
        colsample_bytree: Feature subsample per tree.
        reg_lambda: L2 regularisation.
        n_lags: Demand lags at the anchor (``y[t], y[t-1], ...``).
        rolling_windows: Trailing windows for rolling-mean features.
        scale_window: Periods for the per-series scale; default the spec's
            ``max_encoder_length`` (12 without a spec).
        min_history: Observed periods a series needs at an anchor to be a training row.
        train_anchors: Train only on the most recent this many anchors (``None``: all).
        target_transform: ``none`` or ``log1p`` (fit quantiles of ``log1p(y / scale)``;
            quantiles commute with the monotone transform).
        season_length: Periods per cycle for the seasonal lags; default from ``spec.freq``
            (1 without a spec: no seasonal lags).
        use_covariates: Use the spec's covariates (``False``: demand, ids and horizon only).
        group_features: Add item-level and location-level total-demand features (lag,
            3-period mean, seasonal lag, each relative to the group's level).
        weight_by_scale: Weight rows by the series scale (``True``), not at all
            (``False``) or by the scale to this power (e.g. ``0.5``).
        calibrate: Conformal (time-honest) calibration: refit at ``origin - c`` (``c`` =
            ``calibration_periods``, default the horizon), forecast the ``c`` periods up to
            the origin, and shift each quantile level by the level-quantile of those
            scaled residuals (weighted like the training rows). Doubles the cost.
        calibration_periods: Periods held out for calibration.
        calibrate_median: Also shift the median (a bias correction). Without it the
            median stays the model's and shifted tails are clipped at it.
        max_bin: Histogram bins per feature.
        seed: Random seed (bagging, feature sampling).
        n_jobs: LightGBM threads (0: library default; 1 is fastest on a busy 2-core box).
        params: Extra LightGBM parameters (override the above).
    """

    name: str = "lightgbm"
    n_estimators: int = 130
    learning_rate: float = 0.075
    num_leaves: int = 15
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    n_lags: int = 12
    rolling_windows: list[int] = field(default_factory=lambda: [3, 6, 12])
    scale_window: int | None = None
    min_history: int = 6
    train_anchors: int | None = 24
    target_transform: str = "none"
    season_length: int | None = None
    use_covariates: bool = True
    group_features: bool = True
    weight_by_scale: bool | float = 0.5
    calibrate: bool = True
    calibration_periods: int | None = None
    calibrate_median: bool = False
    max_bin: int = 63
    seed: int = 0
    n_jobs: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_transform not in ("none", "log1p"):
            raise ValueError(
                f"baseline {self.name!r}: target_transform must be none or log1p, "
                f"not {self.target_transform!r}"
            )

    def _predict(self, wide, o, steps, levels, spec):
        if not self.calibrate:
            return self._fit_predict(wide, o, steps, levels, spec)[0]
        c = steps if self.calibration_periods is None else int(self.calibration_periods)
        if o - c < self.min_history:
            raise ValueError(
                f"baseline {self.name!r}: calibration needs history before time_idx "
                f"{o + wide.t0 - c}; set calibrate=false or fewer calibration_periods"
            )
        # calibration fit first, so models_ ends up holding the forecast models
        q_cal, scale_cal = self._fit_predict(wide, o - c, c, levels, spec)
        q, scale = self._fit_predict(wide, o, steps, levels, spec)
        actual = wide.y[:, o - c + 1 : o + 1]
        residual = (actual[:, :, None] - q_cal) / scale_cal[:, :, None]
        weight = scale_cal ** float(self.weight_by_scale)
        for k, level in enumerate(levels):
            if level == 0.5 and not self.calibrate_median:
                continue
            ok = np.isfinite(residual[:, :, k])
            if ok.any():
                shift = _weighted_quantile(residual[:, :, k][ok], weight[ok], level)
                q[:, :, k] += shift * scale
        if 0.5 in levels and not self.calibrate_median:  # tails never cross the median
            m = levels.index(0.5)
            q[:, :, :m] = np.minimum(q[:, :, :m], q[:, :, m : m + 1])
            q[:, :, m + 1 :] = np.maximum(q[:, :, m + 1 :], q[:, :, m : m + 1])
        self.calibration_ = {
            "origin_time_idx": o + wide.t0 - c,
            "rows": int(np.isfinite(actual).sum()),
        }
        return q

    def _fit_predict(self, wide, o, steps, levels, spec):
        import lightgbm as lgb

        self.models_: dict[float, Any] = {}  # boosters of the last fit, by level
        feats = _Features(self, wide, o, spec)
        s_tr, t_tr, h_tr = feats.training_rows(steps)
        if len(s_tr) == 0:
            raise ValueError(
                f"baseline {self.name!r}: no training rows at origin time_idx {o + wide.t0} "
                f"(needs series with >= {self.min_history} observed periods before a target)"
            )
        x_tr, scale_tr = feats.matrix(s_tr, t_tr, h_tr)
        y_tr = feats.hist[s_tr, t_tr + h_tr] / scale_tr
        if self.target_transform == "log1p":
            y_tr = np.log1p(y_tr)
        power = float(self.weight_by_scale)  # True -> 1, False -> 0, or a power in between
        weight = scale_tr**power if power > 0 else None
        base = {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": self.n_jobs,
            "max_bin": self.max_bin,
            "verbose": -1,
            **self.params,
        }
        data = lgb.Dataset(
            x_tr, label=y_tr, weight=weight, categorical_feature=feats.categorical,
            free_raw_data=False, params=dict(base),
        )  # fmt: skip
        s_p, h_p = np.meshgrid(np.arange(wide.n_series), np.arange(1, steps + 1), indexing="ij")
        s_p, h_p = s_p.ravel(), h_p.ravel()
        x_p, scale_p = feats.matrix(s_p, np.full_like(s_p, o), h_p)
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        for k, q in enumerate(levels):
            params = {**base, "objective": "quantile", "alpha": q}
            booster = lgb.train(params, data, num_boost_round=self.n_estimators)
            pred = booster.predict(x_p)
            if self.target_transform == "log1p":
                pred = np.expm1(pred)
            pred = pred * scale_p
            out[s_p, h_p - 1, k] = pred
            self.models_[q] = booster
        return out, scale_p.reshape(wide.n_series, steps)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> np.ndarray:
    """Quantile of ``values`` under ``weights`` (inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    k = np.searchsorted(cum, level * cum[-1])
    return values[order][min(k, len(values) - 1)]


class _Features:
    """Feature builder of :class:`LightGBMBaseline` for one origin (no data after it)."""

    def __init__(self, cfg: LightGBMBaseline, wide: WidePanel, o: int, spec: DatasetSpec | None):
        self.cfg, self.wide, self.o = cfg, wide, o
        self.hist = wide.history(o)  # demand after the origin is NaN: cannot leak
        self.n_obs = np.cumsum(np.isfinite(self.hist), axis=1)
        if cfg.season_length is not None or spec is not None:
            self.m = _season(cfg.season_length, spec, cfg.name)
        else:
            self.m = 1
        window = cfg.scale_window
        if window is None:
            window = int(spec.window.get("max_encoder_length", 12)) if spec is not None else 12
        level = rolling_mean(self.hist, window)
        self.level = level
        self.scale = np.where(np.isfinite(level) & (level > 0), level, 1.0)
        self.rmeans = {w: rolling_mean(self.hist, w) for w in cfg.rolling_windows}
        self.rstd = rolling_std(self.hist, max(cfg.rolling_windows + [self.m]))
        zeros = np.where(np.isfinite(self.hist), (self.hist == 0) * 1.0, np.nan)
        self.zero_share = rolling_mean(zeros, window)
        self.season_mean = rolling_mean(self.hist, self.m) if self.m > 1 else None
        self.groups = {}
        if cfg.group_features:
            for key in (0, 1):
                codes = _key_codes(wide, key).astype(int)
                if 1 < codes.max() + 1 < wide.n_series:  # a real grouping (not 1 or all series)
                    self.groups[("item_id", "location_id")[key]] = _GroupDemand(
                        self.hist, codes, window, self.m
                    )
        self.categorical = ["item_id", "location_id"]
        self.known_real: dict[str, np.ndarray] = {}
        self.known_cat: dict[str, np.ndarray] = {}
        self.unknown_real: dict[str, np.ndarray] = {}
        self.unknown_cat: dict[str, np.ndarray] = {}
        self.static_real: dict[str, np.ndarray] = {}
        self.static_cat: dict[str, np.ndarray] = {}
        if spec is not None and cfg.use_covariates:
            for c in spec.known_reals:
                self.known_real[c] = wide.wide(c)
            for c in [*spec.known_categoricals, *spec.calendar]:
                if c not in self.known_cat:
                    self.known_cat[c] = wide.codes(c)
            for c in spec.unknown_reals:
                u = wide.wide(c)
                u[:, o + 1 :] = np.nan
                self.unknown_real[c] = u
            for c in spec.unknown_categoricals:
                u = wide.codes(c)
                u[:, o + 1 :] = np.nan
                self.unknown_cat[c] = u
            for c in spec.static_reals:
                self.static_real[c] = _series_value(wide.wide(c))
            for c in spec.static_categoricals:
                self.static_cat[c] = _series_value(wide.codes(c))
        self.known_window = window
        self._rolling_cache: dict[str, np.ndarray] = {}
        self.categorical += [*self.known_cat, *self.unknown_cat, *self.static_cat]

    def training_rows(self, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series, anchor column, step) of every training row: target column <= origin."""
        rows = []
        for h in range(1, steps + 1):
            target_ok = np.isfinite(self.hist[:, h : self.o + 1])  # targets h..o
            anchor_ok = self.n_obs[:, : self.o + 1 - h] >= self.cfg.min_history
            if self.cfg.train_anchors is not None:
                anchor_ok[:, : self.o - int(self.cfg.train_anchors)] = False
            s, t = np.nonzero(target_ok & anchor_ok)
            rows.append((s, t, np.full_like(s, h)))
        return tuple(np.concatenate(r) for r in zip(*rows, strict=True))

    def matrix(
        self, s: np.ndarray, t: np.ndarray, h: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Feature matrix and per-row scale for rows (series ``s``, anchor ``t``, step ``h``)."""
        cfg, y = self.cfg, self.hist
        scale = self.scale[s, t]
        target = t + h
        f: dict[str, np.ndarray] = {"item_id": _key_codes(self.wide, 0)[s]}
        f["location_id"] = _key_codes(self.wide, 1)[s]
        f["horizon"] = h.astype(float)
        f["log_level"] = np.log1p(np.nan_to_num(_take(self.level, s, t)))
        for k in range(cfg.n_lags):
            f[f"lag_{k}"] = _take(y, s, t - k) / scale
        if self.m > 1:
            for j in (1, 2):
                src = target - self.m * (np.ceil(h / self.m).astype(int) + j - 1)
                f[f"season_lag_{j}"] = _take(y, s, src) / scale
            f["season_mean"] = _take(self.season_mean, s, t) / scale
            prev = _take(self.season_mean, s, t - self.m)
            with np.errstate(invalid="ignore", divide="ignore"):
                f["season_trend"] = np.where(prev > 0, _take(self.season_mean, s, t) / prev, np.nan)
        for w, rm in self.rmeans.items():
            f[f"mean_{w}"] = _take(rm, s, t) / scale
        f["std"] = _take(self.rstd, s, t) / scale
        f["zero_share"] = _take(self.zero_share, s, t)
        for g, agg in self.groups.items():
            f.update(agg.features(g, s, t, h))
        for c, a in self.unknown_real.items():
            now = _take(a, s, t)
            base = _take(self.rolling(c, a), s, t)
            f[c] = now
            with np.errstate(invalid="ignore", divide="ignore"):
                f[f"{c}_rel"] = np.where(base != 0, now / base, np.nan)
        for c, a in self.unknown_cat.items():
            f[c] = _take(a, s, t)
        for c, a in self.known_real.items():
            fut = _take(a, s, target)
            f[c] = fut
            if np.unique(a[np.isfinite(a)]).size > 2:  # not an indicator: add relative moves
                f[f"{c}_chg"] = fut - _take(a, s, t)
                base = _take(self.rolling(c, a), s, t)
                with np.errstate(invalid="ignore", divide="ignore"):
                    f[f"{c}_rel"] = np.where(base != 0, fut / base, np.nan)
        for c, a in self.known_cat.items():
            f[c] = _take(a, s, target)
        for c, v in self.static_real.items():
            f[c] = v[s]
        for c, v in self.static_cat.items():
            f[c] = v[s]
        x = pd.DataFrame(f)
        for c in self.categorical:
            x[c] = x[c].astype(float)
        return x, scale

    def rolling(self, column: str, a: np.ndarray) -> np.ndarray:
        """Trailing mean of a covariate over the scale window (cached per column)."""
        if column not in self._rolling_cache:
            self._rolling_cache[column] = rolling_mean(a, self.known_window)
        return self._rolling_cache[column]


class _GroupDemand:
    """Total demand of each item (or location) over its series, for pooled features."""

    def __init__(self, hist: np.ndarray, codes: np.ndarray, window: int, m: int):
        self.codes, self.m = codes, m
        n_groups = int(codes.max()) + 1
        total = np.zeros((n_groups, hist.shape[1]))
        np.add.at(total, codes, np.nan_to_num(hist))
        seen = np.zeros_like(total)
        np.add.at(seen, codes, np.isfinite(hist) * 1.0)
        self.total = np.where(seen > 0, total, np.nan)
        level = rolling_mean(self.total, window)
        self.scale = np.where(np.isfinite(level) & (level > 0), level, np.nan)
        self.mean3 = rolling_mean(self.total, 3)

    def features(
        self, name: str, s: np.ndarray, t: np.ndarray, h: np.ndarray
    ) -> dict[str, np.ndarray]:
        g = self.codes[s]
        scale = _take(self.scale, g, t)
        out = {
            f"{name}_lag_0": _take(self.total, g, t) / scale,
            f"{name}_mean_3": _take(self.mean3, g, t) / scale,
        }
        if self.m > 1:
            src = t + h - self.m * np.ceil(h / self.m).astype(int)
            out[f"{name}_season_lag_1"] = _take(self.total, g, src) / scale
        return out


def _key_codes(wide: WidePanel, level: int) -> np.ndarray:
    values = wide.keys.get_level_values(level)
    return pd.Categorical(values, categories=sorted(values.unique())).codes.astype(float)


def _series_value(a: np.ndarray) -> np.ndarray:
    """First finite value per series (static covariates)."""
    ok = np.isfinite(a)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
    out = a[np.arange(len(a)), first]
    out[~ok.any(axis=1)] = np.nan
    return out


# ------------------------------------------------------------------------------ factory
#: Baseline kinds by the name used in configs and ``make_baselines(["naive", ...])``.
REGISTRY: dict[str, type[Baseline]] = {
    "naive": NaiveBaseline,
    "seasonal_naive": SeasonalNaiveBaseline,
    "moving_average": MovingAverageBaseline,
    "auto_ets": AutoETSBaseline,
    "lightgbm": LightGBMBaseline,
}


def make_baselines(names_or_cfg: Any) -> list[Baseline]:
    """Build baselines from names, instances or a (Hydra) config.

    Accepted forms:

    * a name (``"naive"``) or a list of names / instances / entries;
    * an entry with ``_target_`` (instantiated with Hydra) or with ``kind`` (a
      :data:`REGISTRY` key) plus keyword arguments;
    * a mapping ``name -> entry`` (as in ``conf/baselines/default.yaml``): the key becomes
      the baseline's ``name`` unless the entry sets one; an entry ``None`` means the
      registry default of that name and ``False`` leaves it out.

    Raises:
        ValueError: Unknown kind, malformed entry or duplicate baseline names.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(names_or_cfg, DictConfig | ListConfig):
        names_or_cfg = OmegaConf.to_container(names_or_cfg, resolve=True)
    if isinstance(names_or_cfg, str | Baseline):
        names_or_cfg = [names_or_cfg]
    if isinstance(names_or_cfg, Mapping) and ("_target_" in names_or_cfg or "kind" in names_or_cfg):
        names_or_cfg = [names_or_cfg]
    if isinstance(names_or_cfg, Mapping):
        entries = [(str(k), v) for k, v in names_or_cfg.items() if v is not False]
    elif isinstance(names_or_cfg, Sequence):
        entries = [(None, v) for v in names_or_cfg]
    else:
        raise ValueError(f"baselines: expected names, a list or a mapping, got {names_or_cfg!r}")
    out = [_make_one(key, entry) for key, entry in entries]
    names = [b.name for b in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"baselines: duplicate name(s) {dups}; set name= on each variant")
    return out


def _make_one(key: str | None, entry: Any) -> Baseline:
    if isinstance(entry, Baseline):
        return entry
    if entry is None or entry is True:
        entry = key
    if isinstance(entry, str):
        if entry not in REGISTRY:
            raise ValueError(
                f"baselines: unknown baseline {entry!r}; choose from {sorted(REGISTRY)}"
            )
        return REGISTRY[entry](name=key or entry)
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"baselines: entry {key or ''!r} must be a name or a mapping, got {entry!r}"
        )
    kwargs = dict(entry)
    if key is not None:
        kwargs.setdefault("name", key)
    if "_target_" in kwargs:
        from hydra.utils import instantiate

        obj = instantiate(kwargs, _convert_="all")
        if not isinstance(obj, Baseline):
            raise ValueError(f"baselines: {kwargs['_target_']} is not a Baseline")
        return obj
    kind = kwargs.pop("kind", key)
    if kind not in REGISTRY:
        raise ValueError(
            f"baselines: entry {key!r} needs _target_ or kind (one of {sorted(REGISTRY)})"
        )
    return REGISTRY[kind](**kwargs)
