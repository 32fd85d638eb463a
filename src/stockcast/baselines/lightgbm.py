"""Global direct multi-horizon LightGBM quantile models on mlforecast's features.

:class:`LightGBMBaseline` fits, at each origin, one LightGBM ``objective=quantile`` model per
quantile level on the history up to the origin, as a direct multi-horizon model: a training
row is (series, anchor period, step ``h``) with the demand ``h`` periods after the anchor as
its target, the features known at the anchor and the step ``h`` itself. The features come from
``mlforecast.MLForecast.preprocess`` (``max_horizon``: the targets of every step ahead):

* target lags, rolling means / standard deviation of the target and the year-over-year trend
  (``lags``, ``lag_transforms``: ``RollingMean``, ``RollingStd``, ``Combine`` / ``Offset``);
* static features: item and location (categorical), the series' log volume and the spec's
  static covariates;
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

So the training rows of all steps are stacked from ``preprocess`` output, and the forecast
rows are the mlforecast features of the period after the origin with each step's exogenous
columns. Rows are weighted by the anchor level to the power ``weight_by_scale``.

Demand and unknown covariates after the origin are blanked before any frame is built. With
``calibrate`` the quantiles are calibrated out of time by the same
:class:`~stockcast.forecast.calibration.QuantileCalibration` the TFT uses: a second fit ends
``horizon`` periods before the origin and forecasts the periods up to it; the calibration is
fitted on those forecasts and their actuals (:func:`~stockcast.forecast.calibration.fit_calibration`)
and applied to the origin's forecasts. Defaults were chosen on Stallion's validation origins,
never on the test window.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.baselines.base import Baseline, WidePanel, rolling_mean
from stockcast.forecast.calibration import QuantileCalibration, fit_calibration
from stockcast.schema import GROUP_IDS, TIME_IDX

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
        train_anchors: Train on the most recent this many anchors only (the history is cut
            to ``train_anchors + max lag`` periods; rows with missing lags are dropped).
        weight_by_scale: Training rows weighted by their anchor level to this power (1:
            pinball in demand units, 0: every row alike).
        use_covariates: Use the spec's covariates and calendar (``False``: demand and ids).
        known_changes: Add ``<known real>_chg``: its change from the anchor to the target
            (numeric covariates with more than two values).
        calibrate: Out-of-time :class:`QuantileCalibration` (doubles the cost).
        calibration_bins: Volume groups of the calibration (``fit_conformal`` ``bins``).
        calibration_min_rows: Rows a volume group needs (``min_rows_per_bin``).
        calibration_scale: Residual scale of the calibration (``encoder_mean`` or ``median``).
        max_bin: Histogram bins per feature.
        seed: Random seed (bagging, feature sampling).
        n_jobs: LightGBM threads (1 is fastest on a busy 2-core box).
        params: Extra ``LGBMRegressor`` parameters (override the above).

    Attributes:
        calibration_: The :class:`QuantileCalibration` of the last origin (with ``calibrate``).
        models_: The fitted ``LGBMRegressor`` of each level, of the last fit.
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
    train_anchors: int | None = None
    weight_by_scale: float = 0.5
    use_covariates: bool = True
    known_changes: bool = True
    calibrate: bool = True
    calibration_bins: int = 10
    calibration_min_rows: int = 50
    calibration_scale: str = "encoder_mean"
    max_bin: int = 63
    seed: int = 0
    n_jobs: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if int(self.n_lags) < 1:
            raise ValueError(f"baseline {self.name!r}: n_lags must be >= 1, got {self.n_lags}")
        self.calibration_: QuantileCalibration | None = None
        self.models_: dict[float, Any] = {}

    # ------------------------------------------------------------------ per origin
    def _origin_table(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> pd.DataFrame:
        if not self.calibrate:
            return wide.table(o, self._fit_predict(wide, o, steps, levels), levels, self.name)
        c = steps
        if o - c < 0 or not self._can_fit(wide, o - c):
            raise ValueError(
                f"baseline {self.name!r}: calibration needs a fit at time_idx {o - c + wide.t0} "
                f"with a series of >= {self._min_history()} observed periods; set "
                "calibrate=false or give more history"
            )
        # calibration fit first, so models_ ends up holding the forecast models
        cal = wide.table(o - c, self._fit_predict(wide, o - c, c, levels), levels, self.name)
        table = wide.table(o, self._fit_predict(wide, o, steps, levels), levels, self.name)
        history = wide.panel[wide.panel[TIME_IDX] <= o + wide.t0]
        if cal["demand"].notna().sum() == 0:
            raise ValueError(
                f"baseline {self.name!r}: no observed demand in the calibration periods "
                f"before time_idx {o + wide.t0}; set calibrate=false"
            )
        self.calibration_ = fit_calibration(
            cal,
            history,
            method="conformal",
            scale=self.calibration_scale,
            window=self._scale_window(),
            bins=self.calibration_bins,
            min_rows_per_bin=self.calibration_min_rows,
            info={"origin_time_idx": o - c + wide.t0, "periods": c},
        )
        return self.calibration_.apply(table, history)

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

    def _can_fit(self, wide: WidePanel, o: int) -> bool:
        """Whether some series has a training row at origin column ``o``."""
        observed = np.isfinite(wide.y[:, : o + 1]).sum(axis=1)
        return bool((observed >= self._min_history()).any())

    def _fit_predict(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> np.ndarray:
        """Fit on the history up to column ``o``; quantiles [series, step, level]."""
        if not self._can_fit(wide, o):
            raise ValueError(
                f"baseline {self.name!r}: no training rows at origin time_idx {o + wide.t0} "
                f"(needs a series with >= {self._min_history()} observed periods)"
            )
        data = _Frames(self, wide, o)
        with warnings.catch_warnings():  # series too short for every lag are dropped
            warnings.simplefilter("ignore")
            prep = self._mlforecast(data).preprocess(
                data.train, static_features=data.static, max_horizon=steps, validate_data=False
            )
            # the features at the origin: a placeholder row at o + 1 (its lags read <= o)
            now = self._mlforecast(data).preprocess(
                pd.concat([data.train, data.next], ignore_index=True),
                static_features=data.static, dropna=False, validate_data=False,
            )  # fmt: skip
        targets = [f"{Y}{h}" for h in range(steps)]
        features = [c for c in prep.columns if c not in (UID, DS, Y, *targets)]
        demand = [c for c in features if c in data.demand_features(self._mlforecast(data))]
        blocks, y, weight = [], [], []
        for h in range(1, steps + 1):  # one pooled training row per series x anchor x step
            target = prep[targets[h - 1]].to_numpy(float)
            rows = prep[np.isfinite(target)]
            s, t = rows[UID].to_numpy(int), rows[DS].to_numpy(int)  # row t: anchor t - 1
            level = data.level_at(s, t - 1)
            blocks.append(data.step_features(rows[features], demand, s, t - 1, h, level))
            y.append(target[np.isfinite(target)] / level)
            weight.append(level ** float(self.weight_by_scale))
        x_train = pd.concat(blocks, ignore_index=True)
        now = now[now[DS] == o + 1]
        s_now = now[UID].to_numpy(int)
        anchor = np.full_like(s_now, o)
        level_now = data.level_at(s_now, anchor)
        x_now = [
            data.step_features(now[features], demand, s_now, anchor, h, level_now)
            for h in range(1, steps + 1)
        ]
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        self.models_ = {}
        for k, q in enumerate(levels):
            model = self._model(q).fit(x_train, np.concatenate(y), sample_weight=np.concatenate(weight))
            self.models_[q] = model
            for h, x in enumerate(x_now):
                out[s_now, h, k] = model.predict(x) * level_now
        return out

    def _mlforecast(self, data: _Frames) -> Any:
        from mlforecast import MLForecast

        return MLForecast(
            models={},
            freq=1,
            lags=self._lags(),
            lag_transforms=self._lag_transforms(),
        )

    def _model(self, level: float):
        import lightgbm as lgb

        params = {
            "objective": "quantile",
            "alpha": float(level),
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "random_state": self.seed,
            "deterministic": True,
            "n_jobs": self.n_jobs,
            "verbose": -1,
            **self.params,
        }
        return lgb.LGBMRegressor(**params)

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


class _Frames:
    """mlforecast's input for one fit at origin column ``o`` (nothing after it is read).

    ``unique_id`` is the series' row in the :class:`WidePanel` and ``ds`` the time column;
    ``train`` holds every series' history up to ``o`` (rows without demand keep ``y`` NaN)
    with its weight and static features, ``next`` a placeholder row at ``o + 1`` per series
    (demand 0, never a feature: lags read earlier periods). :meth:`step_features` adds the
    exogenous columns of one step ahead to mlforecast's features.
    """

    def __init__(self, cfg: LightGBMBaseline, wide: WidePanel, o: int):
        self.o = o
        hist = wide.history(o)
        self.hist = hist
        observed = np.isfinite(hist)
        has = observed.any(axis=1)
        first = np.where(has, observed.argmax(axis=1), o + 1)
        # the series' scale: mean demand over the last scale_window periods (whole history
        # when those are empty), floored so quiet series do not divide by ~0
        recent = hist[:, max(0, o + 1 - cfg._scale_window()) : o + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmean(recent, axis=1)
            scale = np.where(np.isfinite(scale), scale, np.nanmean(hist, axis=1))
        positive = scale[np.isfinite(scale) & (scale > 0)]
        floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
        self.scale = np.maximum(np.nan_to_num(scale, nan=floor), floor)

        start = first
        if cfg.train_anchors is not None:
            start = np.maximum(first, o + 1 - int(cfg.train_anchors) - cfg._lags()[-1])
        s, c = np.nonzero(has[:, None] & (np.arange(o + 2)[None, :] >= start[:, None]))
        static: dict[str, Any] = {"log_scale": np.log1p(self.scale)}  # the series' volume
        for level, key in enumerate(GROUP_IDS):
            values = wide.keys.get_level_values(level)
            codes = pd.Categorical(values, categories=sorted(values.unique())).codes
            static[key] = (codes.astype(float), len(set(values)))
        spec = cfg.spec if cfg.use_covariates else None
        self.known: dict[str, tuple[np.ndarray, int]] = {}  # name -> (values, categories)
        self.unknown: dict[str, tuple[np.ndarray, int]] = {}
        self.changes: list[str] = []
        if spec is not None:
            for col in spec.static_reals:
                static[col] = _series_value(wide.wide(col))
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
        # each anchor's level: mean demand of the scale_window periods up to it (the series'
        # scale where it has none), which divides the target and the demand features
        level = rolling_mean(hist, cfg._scale_window())
        self.level = np.where(np.isfinite(level) & (level > 0), level, self.scale[:, None])
        self.season = cfg._season_length()
        self.season_lags = [int(k) for k in cfg.season_lags] if self.season > 1 else []
        frame: dict[str, Any] = {UID: s, DS: c, Y: hist[s, np.minimum(c, o)]}
        for name, value in static.items():
            frame[name] = _category(value[0][s], value[1]) if isinstance(value, tuple) else value[s]
        df = pd.DataFrame(frame)
        self.static = list(static)
        future = df[DS].to_numpy() == o + 1
        self.train = df[~future].reset_index(drop=True)
        self.next = df[future].assign(**{Y: 0.0}).reset_index(drop=True)

    def level_at(self, s: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Level of series ``s`` at column ``anchor`` (demand units, > 0)."""
        return self.level[s, anchor]

    @staticmethod
    def demand_features(fcst: Any) -> list[str]:
        """mlforecast's features in demand units (every target lag and transform except the
        ratios, ``Combine``), which the anchor level divides."""
        from mlforecast.lag_transforms import Combine

        return [name for name, tfm in fcst.ts.transforms.items() if not isinstance(tfm, Combine)]

    def step_features(
        self,
        x: pd.DataFrame,
        demand: list[str],
        s: np.ndarray,
        anchor: np.ndarray,
        h: int,
        level: np.ndarray,
    ) -> pd.DataFrame:
        """mlforecast's features ``x`` of rows (series ``s``, last observed column ``anchor``),
        the ``demand`` ones divided by the anchor ``level``, plus the step ``h`` and the
        exogenous columns of the target column ``anchor + h``: known covariates there (and
        their change since the anchor), unknown ones at the anchor, and the demand ``k``
        seasons before the target (divided by the level)."""
        target = anchor + h
        x = x.reset_index(drop=True)
        out: dict[str, Any] = {c: x[c].to_numpy(float) / level for c in demand}
        out["horizon"] = np.full(len(s), float(h))
        for col, (values, n) in self.known.items():
            at = _take(values, s, target)
            out[col] = _category(at, n) if n else at
            if col in self.changes:
                out[f"{col}_chg"] = at - _take(values, s, anchor)
        for col, (values, n) in self.unknown.items():
            at = _take(values, s, anchor)
            out[col] = _category(at, n) if n else at
        for k in self.season_lags:
            out[f"season_lag{k}"] = _take(self.hist, s, target - k * self.season) / level
        return x.assign(**out)


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


def _category(codes: np.ndarray, n: int) -> pd.Categorical:
    """Codes as a pandas categorical over ``0..n-1`` (LightGBM's categorical features)."""
    codes = np.asarray(codes, float)
    out = np.where(np.isfinite(codes), codes, -1).astype(int)
    return pd.Categorical.from_codes(out, categories=pd.RangeIndex(max(int(n), 1)))


def _series_value(a: np.ndarray) -> np.ndarray:
    """First finite value per series (static covariates)."""
    ok = np.isfinite(a)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
    out = a[np.arange(len(a)), first]
    out[~ok.any(axis=1)] = np.nan
    return out
