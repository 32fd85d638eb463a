"""Global direct multi-horizon LightGBM quantile models on mlforecast's features.

:class:`LightGBMBaseline` fits, at each origin, one LightGBM ``objective=quantile`` model per
quantile level on the history up to the origin, as a direct multi-horizon model: a training
row is (series, anchor period, step ``h``) with the demand ``h`` periods after the anchor as
its target, the features known at the anchor and the step ``h`` itself. The features come from
``mlforecast.MLForecast.preprocess``:

* target lags, rolling means / standard deviation of the target and the year-over-year trend
  (``lags``, ``lag_transforms``: ``RollingMean``, ``RollingStd``, ``Combine`` / ``Offset``);
* static features: item and location (categorical), the series' log volume (``log_scale``,
  at the end of the fit's history) and the spec's static covariates;
* exogenous columns of each step: known-future covariates and the calendar (the spec's
  ``known_*`` and ``calendar``) at the target period, with the change of numeric ones since
  the anchor; unknown covariates (``unknown_*``) at the anchor; the demand one season before
  the target period.

Two things are done outside mlforecast, both because they decide the accuracy on Stallion's
validation origins and mlforecast cannot express them:

* one model for every step (the step a feature), not mlforecast's one model per step: each
  per-step model sees a sixth of the rows (validation MAE 238 against 230, the gap growing
  with the step; step 1 matched);
* each training row is scaled by its own anchor's level (mean demand of the
  ``scale_window`` periods up to the anchor): the target and the demand features are divided
  by it and the forecasts multiplied back. mlforecast's target transforms scale a series by
  one number, which made the validation MAE 230 against 209 (the level moves within a series).

So ``preprocess`` runs once per origin, on the history up to it plus a placeholder period
after it: its row at period ``t + 1`` holds the features of anchor ``t`` (lags read periods
``<= t``), for every anchor up to the origin. A fit ending at period ``e`` trains on the rows
whose target lies at or before ``e``, stacked over the steps with each step's exogenous
columns; any anchor's row can then be forecast by any fit. Rows are weighted by the anchor
level to the power ``weight_by_scale``. Demand and unknown covariates after the origin are
blanked before any frame is built.

With ``calibrate`` the quantiles are calibrated out of time by the same
:class:`~stockcast.forecast.calibration.QuantileCalibration` the TFT uses
(:func:`~stockcast.forecast.calibration.fit_calibration`), fitted on the forecasts of
``calibration_fits`` earlier fits, ending ``horizon``, ``2 * horizon``, ... periods before the
origin, of periods after their training targets, with the actuals known at the origin. Each
fit forecasts from its ``calibration_anchors`` first anchors (its last period and the
following ones, features read from the history up to each anchor) every step whose actual is
known: from one extra fit, up to ``1 + 2 + ... + horizon`` out-of-sample forecasts per series
instead of ``horizon``. The defaults (two fits, one anchor each: ``2 * horizon`` periods of
residuals, every step alike) were chosen on Stallion's validation origins, never on the test
window (figures in ``conf/baselines/default.yaml``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.baselines.base import Baseline, WidePanel, rolling_mean
from stockcast.cpus import n_jobs
from stockcast.forecast.calibration import QuantileCalibration, fit_calibration
from stockcast.schema import (
    DEMAND,
    FORECAST_ORIGIN,
    GROUP_IDS,
    HORIZON,
    PERIOD,
    TIME_IDX,
    non_crossing,
    quantile_column,
)

UID, DS, Y = "unique_id", "ds", "y"


@dataclass
class LightGBMBaseline(Baseline):
    """Global direct multi-horizon LightGBM, one quantile model per level (module docstring).

    Args:
        n_estimators: Boosting rounds of each model.
        learning_rate: Shrinkage.
        num_leaves: Leaves per tree.
        min_child_samples: Minimum rows per leaf.
        subsample: Row subsample per tree (bagging).
        colsample_bytree: Feature subsample per tree.
        reg_lambda: L2 regularisation.
        n_lags: Target lags ``1..n_lags`` (lag 1 = the origin's demand for every step's model).
        extra_lags: Further target lags (e.g. a second season).
        season_length: Periods per cycle; default from ``spec.freq`` (no seasonal features
            without either).
        season_lags: Demand ``k`` seasons before the target period (``season_lag<k>``, in
            target units; NaN where that period lies after the origin).
        season_trend: Add the year-over-year trend: the mean of the last season over the mean
            of the season before (mlforecast ``Combine`` of ``RollingMean`` and its ``Offset``).
        rolling_windows: Windows of the rolling means of the target (at lag 1).
        std_window: Window of the rolling standard deviation of the target (``None``: none).
        scale_window: Periods up to each anchor whose mean demand scales its row (target and
            demand features); default the spec's ``max_encoder_length`` (no spec: 12).
        train_anchors: Train on the most recent this many anchors of each fit only (rows with
            missing lags are dropped).
        weight_by_scale: Training rows weighted by their anchor level to this power (1:
            pinball in demand units, 0: every row alike).
        use_covariates: Use the spec's covariates and calendar (``False``: demand and ids).
        known_changes: Add ``<known real>_chg``: its change from the anchor to the target
            (numeric covariates with more than two values).
        calibrate: Out-of-time :class:`QuantileCalibration` (``calibration_fits`` more fits
            per origin).
        calibration_fits: Calibration fits, ending ``horizon``, ``2 * horizon``, ... periods
            before the origin (the later ones are skipped where the history is too short).
        calibration_anchors: Anchors each calibration fit forecasts from, starting at its
            last period (``None``: every one up to the period before the origin).
        calibration_bins: Volume groups of the calibration (``fit_conformal`` ``bins``).
        calibration_min_rows: Rows a volume group needs (``min_rows_per_bin``).
        calibration_scale: Residual scale of the calibration (``encoder_mean`` or ``median``).
        max_bin: Histogram bins per feature.
        seed: Random seed (bagging, feature sampling).
        n_jobs: LightGBM threads (``auto``: one per CPU; 1 is fastest on a busy box).
        params: Extra LightGBM parameters (override the above; LightGBM names or aliases).

    Attributes:
        calibration_: The :class:`QuantileCalibration` of the last origin (with ``calibrate``).
        calibration_table_: The calibration fits' forecasts of the last origin, with actuals.
        models_: The fitted ``lightgbm.Booster`` of each level, of the last origin's fit.
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
    extra_lags: list[int] = field(default_factory=list)
    season_length: int | None = None
    season_lags: list[int] = field(default_factory=lambda: [1])
    season_trend: bool = True
    rolling_windows: list[int] = field(default_factory=lambda: [3, 6, 12])
    std_window: int | None = 12
    scale_window: int | None = None
    train_anchors: int | None = 24
    weight_by_scale: float = 0.5
    use_covariates: bool = True
    known_changes: bool = True
    calibrate: bool = True
    calibration_fits: int = 2
    calibration_anchors: int | None = 1
    calibration_bins: int = 10
    calibration_min_rows: int = 50
    calibration_scale: str = "encoder_mean"
    max_bin: int = 63
    seed: int = 0
    n_jobs: int | str = 1
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_jobs(self.n_jobs, f"baseline {self.name!r}")  # a bad setting fails here, not mid-run
        if int(self.n_lags) < 1:
            raise ValueError(f"baseline {self.name!r}: n_lags must be >= 1, got {self.n_lags}")
        if int(self.calibration_fits) < 1:
            raise ValueError(
                f"baseline {self.name!r}: calibration_fits must be >= 1, got {self.calibration_fits}"
            )
        if self.calibration_anchors is not None and int(self.calibration_anchors) < 1:
            raise ValueError(
                f"baseline {self.name!r}: calibration_anchors must be >= 1 or null, "
                f"got {self.calibration_anchors}"
            )
        self.calibration_: QuantileCalibration | None = None
        self.calibration_table_: pd.DataFrame | None = None
        self.models_: dict[float, Any] = {}

    # ------------------------------------------------------------------ per origin
    def _origin_table(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> pd.DataFrame:
        data = _Design(self, wide, o)
        cal, ends = self._calibration_forecasts(data, o, steps, levels) if self.calibrate else (None, [])
        self.models_ = self._fit(data, o, steps, levels)
        table = wide.table(o, self._forecast(data, self.models_, o, steps), levels, self.name)
        if cal is None:
            return table
        history = wide.panel[wide.panel[TIME_IDX] <= o + wide.t0]
        self.calibration_table_ = cal
        self.calibration_ = fit_calibration(
            cal,
            history,
            method="conformal",
            scale=self.calibration_scale,
            window=self._scale_window(),
            bins=self.calibration_bins,
            min_rows_per_bin=self.calibration_min_rows,
            info={
                "fit_time_idx": sorted(ends),
                "anchors": self.calibration_anchors,
                "periods": steps,
            },
        )
        return self.calibration_.apply(table, history)

    def _calibration_forecasts(
        self, data: _Design, o: int, steps: int, levels: list[float]
    ) -> tuple[pd.DataFrame, list[int]]:
        """Out-of-sample forecasts with actuals of the calibration fits (module docstring)
        and the ``time_idx`` each fit ends at."""
        wide, tables, ends = data.wide, [], []
        for j in range(1, int(self.calibration_fits) + 1):
            e = o - j * steps
            if e < 0 or not data.can_fit(e):
                if j == 1:
                    raise ValueError(
                        f"baseline {self.name!r}: calibration needs a fit at time_idx "
                        f"{e + wide.t0} with a series of >= {self._min_history()} observed "
                        "periods; set calibrate=false or give more history"
                    )
                break
            models = self._fit(data, e, steps, levels)
            last = o - 1 if self.calibration_anchors is None else e + int(self.calibration_anchors) - 1
            for a in range(e, min(last, o - 1) + 1):
                q = self._forecast(data, models, a, min(steps, o - a))
                tables.append(_scored_table(wide, a, q, levels))
            ends.append(e + wide.t0)
        cal = pd.concat(tables, ignore_index=True)
        if cal.empty:
            raise ValueError(
                f"baseline {self.name!r}: no observed demand in the calibration periods "
                f"before time_idx {o + wide.t0}; set calibrate=false"
            )
        return cal, ends

    def _fit(self, data: _Design, e: int, steps: int, levels: list[float]) -> dict[float, Any]:
        """One booster per level, trained on the rows whose targets lie at or before ``e``."""
        import lightgbm as lgb

        s, a, h = data.training_rows(e, steps, self.train_anchors)
        if len(s) == 0:
            raise ValueError(
                f"baseline {self.name!r}: no training rows at origin time_idx {e + data.wide.t0} "
                f"(needs a series with >= {self._min_history()} observed periods)"
            )
        level = data.level[s, a]
        params = self._params()
        train = lgb.Dataset(
            data.matrix(s, a, h, np.full_like(s, e)),
            label=data.hist[s, a + h] / level,
            weight=level ** float(self.weight_by_scale),
            feature_name=data.names,
            categorical_feature=data.categorical,
            params=params,
            free_raw_data=False,
        )
        # one Dataset (binned once) for every level's booster
        return {
            q: lgb.train(
                {**params, "objective": "quantile", "alpha": float(q)},
                train,
                num_boost_round=int(self.n_estimators),
            )
            for q in levels
        }

    def _forecast(self, data: _Design, models: dict[float, Any], a: int, steps: int) -> np.ndarray:
        """Quantiles [series, step, level] of ``models`` from anchor column ``a`` (NaN for
        series without a row there)."""
        s0 = np.flatnonzero(data.row_of[:, a] >= 0)
        s, h = np.repeat(s0, steps), np.tile(np.arange(1, steps + 1), len(s0))
        anchor = np.full_like(s, a)
        x, level = data.matrix(s, anchor, h, anchor), data.level[s, a]
        out = np.full((data.wide.n_series, steps, len(models)), np.nan)
        for k, model in enumerate(models.values()):
            out[s, h - 1, k] = model.predict(x) * level
        return out

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": n_jobs(self.n_jobs, f"baseline {self.name!r}"),
            "force_row_wise": True,  # same models, skips LightGBM's timing of both layouts
            "verbose": -1,
            **self.params,
        }

    def _lags(self) -> list[int]:
        return sorted({*range(1, int(self.n_lags) + 1), *(int(k) for k in self.extra_lags)})

    def _scale_window(self) -> int:
        if self.scale_window is not None:
            return int(self.scale_window)
        if self.spec is not None:
            return int(self.spec.window.get("max_encoder_length", 12))
        return 12

    def _min_history(self) -> int:
        """Periods a series needs for one training row: every lag (and the season before
        the last one, for the trend) plus its target."""
        m = self._season_length()
        return max(self._lags()[-1], m + 1 if self.season_trend and m > 1 else 0) + 1

    def _mlforecast(self) -> Any:
        from mlforecast import MLForecast

        return MLForecast(
            models={},
            freq=1,
            lags=self._lags(),
            lag_transforms=self._lag_transforms(),
        )

    def _season_length(self) -> int:
        """The season of the seasonal features (1: none)."""
        if self.season_length is None and self.spec is None:
            return 1
        return self.season(self.season_length)

    def _lag_transforms(self) -> dict[int, list[Any]]:
        from mlforecast.lag_transforms import Combine, Offset, RollingMean, RollingStd

        tfms: list[Any] = [RollingMean(window_size=int(w), min_samples=1) for w in self.rolling_windows]
        m = self._season_length()
        if self.season_trend and m > 1:
            last, before = (RollingMean(window_size=m, min_samples=1) for _ in range(2))
            tfms.append(Combine(last, Offset(before, m), operator.truediv))
        if self.std_window is not None:
            tfms.append(RollingStd(window_size=int(self.std_window), min_samples=2))
        return {1: tfms} if tfms else {}


class _Design:
    """The features of every anchor up to origin column ``o`` (nothing after it is read).

    mlforecast's ``preprocess`` runs once, on each series' history up to ``o`` plus a
    placeholder period ``o + 1`` (demand 0, never a feature: lags read earlier periods);
    ``unique_id`` is the series' row in the :class:`WidePanel` and ``ds`` the time column, so
    the row at ``ds = t + 1`` holds the features of anchor ``t``. :meth:`matrix` adds the
    step and the exogenous columns of one step ahead and scales the demand features by the
    anchor level; :meth:`training_rows` picks the rows of a fit.
    """

    def __init__(self, cfg: LightGBMBaseline, wide: WidePanel, o: int):
        self.wide, self.o = wide, o
        hist = wide.history(o)
        self.hist = hist
        observed = np.isfinite(hist)
        has = observed.any(axis=1)
        first = np.where(has, observed.argmax(axis=1), o + 1)
        self.observed = np.cumsum(observed, axis=1)  # observed periods up to each column
        # each anchor's level: mean demand of the scale_window periods up to it (the mean of
        # its whole history when those are empty), floored so quiet series do not divide by ~0
        level = rolling_mean(hist, cfg._scale_window())
        with np.errstate(invalid="ignore", divide="ignore"):
            expanding = np.cumsum(np.where(observed, hist, 0.0), axis=1) / self.observed
        level = np.where(np.isfinite(level), level, expanding)
        now = level[:, o]
        positive = now[np.isfinite(now) & (now > 0)]
        floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
        self.level = np.maximum(np.nan_to_num(level, nan=floor), floor)

        static: dict[str, Any] = {}
        for k, key in enumerate(GROUP_IDS):
            values = wide.keys.get_level_values(k)
            codes = pd.Categorical(values, categories=sorted(values.unique())).codes
            static[key] = (codes.astype(float), len(set(values)))
        spec = cfg.spec if cfg.use_covariates else None
        self.known: dict[str, tuple[np.ndarray, int]] = {}  # name -> (values, categories)
        self.unknown: dict[str, tuple[np.ndarray, int]] = {}
        self.changes: list[str] = []
        if spec is not None:
            for col in spec.static_reals:
                static[col] = (_series_value(wide.wide(col)), 0)
            for col in spec.static_categoricals:
                codes, n = _codes(wide, col)
                static[col] = (_series_value(codes), n)
            for col in spec.known_reals:
                self.known[col] = (wide.wide(col), 0)
                values = self.known[col][0]
                if cfg.known_changes and np.unique(values[np.isfinite(values)]).size > 2:
                    self.changes.append(col)
            for col in dict.fromkeys([*spec.known_categoricals, *spec.calendar]):
                self.known[col] = _codes(wide, col)
            for col in [*spec.unknown_reals, *spec.unknown_categoricals]:
                values, n = _codes(wide, col) if col in spec.unknown_categoricals else (wide.wide(col), 0)
                values[:, o + 1 :] = np.nan  # never seen after the origin
                self.unknown[col] = (values, n)
        self.static = static
        self.season = cfg._season_length()
        self.season_lags = [int(k) for k in cfg.season_lags] if self.season > 1 else []

        s, c = np.nonzero(has[:, None] & (np.arange(o + 2)[None, :] >= first[:, None]))
        frame = pd.DataFrame({UID: s, DS: c, Y: np.where(c <= o, hist[s, np.minimum(c, o)], 0.0)})
        fcst = cfg._mlforecast()
        prep = fcst.preprocess(frame, static_features=[], dropna=False, validate_data=False)
        from mlforecast.lag_transforms import Combine

        lag_names = list(fcst.ts.transforms)
        # demand-unit features (every lag and transform except the ratios) are divided by
        # the anchor level
        self.demand = [n for n, tfm in fcst.ts.transforms.items() if not isinstance(tfm, Combine)]
        self.lag_names = lag_names
        self.lags = prep[lag_names].to_numpy(float)
        # row_of[s, a]: the row of ds = a + 1, which holds the features of anchor a
        ps, pc = prep[UID].to_numpy(int), prep[DS].to_numpy(int)
        ok = pc >= 1
        self.row_of = np.full((wide.n_series, o + 1), -1)
        self.row_of[ps[ok], pc[ok] - 1] = np.flatnonzero(ok)
        self.complete = np.isfinite(self.lags).all(axis=1)  # mlforecast's dropna
        self.names = [
            *lag_names,
            "horizon",
            "log_scale",
            *static,
            *(name for col in self.known for name in [col, *([f"{col}_chg"] if col in self.changes else [])]),
            *self.unknown,
            *(f"season_lag{k}" for k in self.season_lags),
        ]
        self.categorical = [
            *(k for k, (_, n) in static.items() if n),
            *(k for k, (_, n) in self.known.items() if n),
            *(k for k, (_, n) in self.unknown.items() if n),
        ]

    def can_fit(self, e: int) -> bool:
        """Whether a fit ending at column ``e`` has a training row (a complete anchor row
        with a target at or before ``e``)."""
        return bool(len(self.training_rows(e, 1, None)[0]))

    def training_rows(
        self, e: int, steps: int, last_anchors: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series, anchor, step) of the rows of a fit ending at column ``e``: complete
        features, target ``anchor + step <= e`` observed (the last ``last_anchors`` anchors
        only, when given)."""
        first = 0 if last_anchors is None else max(0, e - int(last_anchors))
        rows = self.row_of[:, first:e]  # anchors first .. e - 1
        ok = rows >= 0
        ok[ok] = self.complete[rows[ok]]
        s, a = np.nonzero(ok)
        a = a + first
        out_s, out_a, out_h = [], [], []
        for h in range(1, steps + 1):
            m = (a + h <= e) & np.isfinite(self.hist[s, np.minimum(a + h, self.o)])
            out_s.append(s[m])
            out_a.append(a[m])
            out_h.append(np.full(int(m.sum()), h))
        return np.concatenate(out_s), np.concatenate(out_a), np.concatenate(out_h)

    def matrix(self, s: np.ndarray, a: np.ndarray, h: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Feature matrix (columns :attr:`names`) of rows (series ``s``, anchor column ``a``,
        step ``h``): mlforecast's features of the anchor, the demand ones divided by its
        level, the step, the series' log volume (its level at column ``end``: the fit's last
        period for training rows, a static feature within a fit as before; the anchor for
        forecasts), the statics and the exogenous columns of the target column ``a + h``:
        known covariates there (and their change since the anchor), unknown ones at the
        anchor, and the demand ``k`` seasons before the target (divided by the level)."""
        level, target = self.level[s, a], a + h
        lags = self.lags[self.row_of[s, a]]
        cols: list[np.ndarray] = [
            lags[:, j] / level if name in self.demand else lags[:, j]
            for j, name in enumerate(self.lag_names)
        ]
        cols += [h.astype(float), np.log1p(self.level[s, end])]
        cols += [values[s] for values, _ in self.static.values()]
        for col, (values, _) in self.known.items():
            at = _take(values, s, target)
            cols.append(at)
            if col in self.changes:
                cols.append(at - _take(values, s, a))
        cols += [_take(values, s, a) for values, _ in self.unknown.values()]
        cols += [_take(self.hist, s, target - k * self.season) / level for k in self.season_lags]
        return np.column_stack(cols)


def _scored_table(wide: WidePanel, a: int, q: np.ndarray, levels: list[float]) -> pd.DataFrame:
    """Forecast table from anchor column ``a`` of the rows with a forecast and an observed
    actual (calibration rows; quantiles made non-crossing as served)."""
    steps = q.shape[1]
    actual = wide.y[:, a + 1 : a + 1 + steps]
    s, j = np.nonzero(np.isfinite(q).all(axis=2) & np.isfinite(actual))
    out = pd.DataFrame(
        {
            GROUP_IDS[0]: wide.keys.get_level_values(0)[s],
            GROUP_IDS[1]: wide.keys.get_level_values(1)[s],
            PERIOD: wide.periods[a + 1 + j],
            FORECAST_ORIGIN: pd.Timestamp(wide.periods[a]),
            HORIZON: (j + 1).astype(int),
        }
    )
    values = non_crossing(q[s, j, :])
    for k, level in enumerate(levels):
        out[quantile_column(level)] = values[:, k]
    out[DEMAND] = actual[s, j]
    return out


def _take(values: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``values[s, c]``, NaN outside the columns."""
    ok = (c >= 0) & (c < values.shape[1])
    out = np.full(len(s), np.nan)
    out[ok] = values[s[ok], c[ok]]
    return out


def _codes(wide: WidePanel, column: str) -> tuple[np.ndarray, int]:
    """Category codes (sorted categories over the whole panel) as floats, NaN where absent."""
    values = wide.panel[column].astype("string")
    categories = sorted(values.dropna().unique())
    codes = pd.Categorical(values, categories=categories).codes.astype(float)
    codes[codes < 0] = np.nan
    out = np.full((wide.n_series, wide.n_time), np.nan)
    out[wide.sid, wide.col] = codes
    return out, len(categories)


def _series_value(a: np.ndarray) -> np.ndarray:
    """First finite value per series (static covariates)."""
    ok = np.isfinite(a)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
    out = a[np.arange(len(a)), first]
    out[~ok.any(axis=1)] = np.nan
    return out
