"""Global direct multi-horizon LightGBM quantile models through mlforecast.

:class:`LightGBMBaseline` fits, at each origin, one ``mlforecast.MLForecast`` with a LightGBM
``objective=quantile`` model per quantile level as a direct multi-horizon model
(``max_horizon``: one model per step ahead) on the history up to the origin, and forecasts
the steps after it. The features are mlforecast's own:

* target lags and rolling means / standard deviation of the target (``lags``,
  ``lag_transforms``), on the target divided by each series' mean demand over the last
  ``scale_window`` periods before the origin (a target transform, so one model pools series
  of very different volume; forecasts are multiplied back);
* static features: item and location (categorical) and the spec's static covariates;
* known-future covariates and the calendar (the spec's ``known_*`` and ``calendar``) as
  dynamic exogenous columns, read at the target period (``X_df`` for the forecast
  periods), plus, for numeric known covariates, their change since the origin;
* unknown covariates (``unknown_*``) lagged to the origin, as horizon-specific exogenous
  columns (``horizon_features``: the model of step ``h`` reads ``<column>_lag<h>``), so no
  value after the origin is ever used.

Demand and unknown covariates after the origin are blanked before any frame is built. With
``calibrate`` the quantiles are calibrated out of time by the same
:class:`~stockcast.forecast.calibration.QuantileCalibration` the TFT uses: a second fit ends
``horizon`` periods before the origin and forecasts the periods up to it; the calibration is
fitted on those forecasts and their actuals (:func:`~stockcast.forecast.calibration.fit_calibration`)
and applied to the origin's forecasts. Defaults were chosen on Stallion's validation origins,
never on the test window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.baselines.base import Baseline, WidePanel
from stockcast.forecast.calibration import QuantileCalibration, fit_calibration
from stockcast.schema import GROUP_IDS, TIME_IDX, quantile_column

UID, DS, Y, WEIGHT = "unique_id", "ds", "y", "sample_weight"


@dataclass
class LightGBMBaseline(Baseline):
    """Global direct multi-horizon LightGBM, one quantile model per level (mlforecast).

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
        rolling_windows: Windows of the rolling means of the target (at lag 1).
        std_window: Window of the rolling standard deviation of the target (``None``: none).
        scale_window: Periods before the origin whose mean demand scales each series;
            default the spec's ``max_encoder_length`` (``None`` and no spec: 12).
        train_anchors: Train on the most recent this many origins only (the frame is cut to
            ``train_anchors + max lag`` periods, mlforecast drops rows with missing lags).
        weight_by_scale: Training rows weighted by the series scale to this power (1:
            pinball in demand units, 0: every row alike).
        use_covariates: Use the spec's covariates (``False``: demand, ids and calendar-free).
        known_changes: Add ``<known real>_chg<h>``: its change from the origin to the target.
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
        mlforecast_: The fitted ``MLForecast`` of the last origin.
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
    rolling_windows: list[int] = field(default_factory=lambda: [3, 6, 12])
    std_window: int | None = 12
    scale_window: int | None = None
    train_anchors: int | None = None
    weight_by_scale: float = 0.5
    use_covariates: bool = True
    known_changes: bool = True
    calibrate: bool = True
    calibration_bins: int = 3
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
        self.mlforecast_: Any = None

    # ------------------------------------------------------------------ per origin
    def _origin_table(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> pd.DataFrame:
        if not self.calibrate:
            return wide.table(o, self._fit_predict(wide, o, steps, levels), levels, self.name)
        c = steps
        if o - c < 0 or not self._can_fit(wide, o - c):
            raise ValueError(
                f"baseline {self.name!r}: calibration needs a fit at time_idx {o - c + wide.t0} "
                f"with a series of >= {self._lags()[-1] + 1} observed periods; set "
                "calibrate=false or give more history"
            )
        # calibration fit first, so mlforecast_ ends up holding the forecast model
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

    def _can_fit(self, wide: WidePanel, o: int) -> bool:
        """Whether some series has a training row at origin column ``o`` (all lags observed)."""
        observed = np.isfinite(wide.y[:, : o + 1]).sum(axis=1)
        return bool((observed >= self._lags()[-1] + 1).any())

    def _fit_predict(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> np.ndarray:
        """Fit on the history up to column ``o``; quantiles [series, step, level]."""
        from mlforecast import MLForecast

        if not self._can_fit(wide, o):
            raise ValueError(
                f"baseline {self.name!r}: no training rows at origin time_idx {o + wide.t0} "
                f"(needs a series with >= {self._lags()[-1] + 1} observed periods)"
            )
        frames = _Frames(self, wide, o, steps)
        models = {quantile_column(q): self._model(q) for q in levels}
        fcst = MLForecast(
            models=models,
            freq=1,
            lags=self._lags(),
            lag_transforms=self._lag_transforms(),
            target_transforms=[_MeanScaler(frames.scale)],
        )
        with warnings.catch_warnings():  # NaN exog of other steps, dropped short series
            warnings.simplefilter("ignore")
            fcst.fit(
                frames.train,
                static_features=frames.static,
                max_horizon=steps,
                horizon_features=frames.horizon_features or None,
                weight_col=WEIGHT,
                validate_data=False,
            )
            pred = fcst.predict(h=steps, X_df=frames.future)
        self.mlforecast_ = fcst
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        sid = pred[UID].to_numpy(int)
        step = pred[DS].to_numpy(int) - o - 1
        for k, q in enumerate(levels):
            out[sid, step, k] = pred[quantile_column(q)].to_numpy(float)
        return out

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

    def _lag_transforms(self) -> dict[int, list[Any]]:
        from mlforecast.lag_transforms import RollingMean, RollingStd

        tfms: list[Any] = [RollingMean(window_size=int(w), min_samples=1) for w in self.rolling_windows]
        if self.std_window is not None:
            tfms.append(RollingStd(window_size=int(self.std_window), min_samples=2))
        return {1: tfms} if tfms else {}


class _Frames:
    """mlforecast's long frames for one fit at origin column ``o`` (nothing after it).

    ``unique_id`` is the series' row in the :class:`WidePanel`, ``ds`` the time column, so
    every series' history runs to ``o`` (rows without demand keep ``y`` NaN) and the
    forecast periods are ``o + 1 .. o + steps`` for all of them.
    """

    def __init__(self, cfg: LightGBMBaseline, wide: WidePanel, o: int, steps: int):
        hist = wide.history(o)
        observed = np.isfinite(hist)
        has = observed.any(axis=1)
        first = np.where(has, observed.argmax(axis=1), o + 1)
        # the series' scale: mean demand over the last scale_window periods (whole history
        # when those are empty), floored so quiet series do not divide by ~0
        window = cfg._scale_window()
        recent = hist[:, max(0, o + 1 - window) : o + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmean(recent, axis=1)
            scale = np.where(np.isfinite(scale), scale, np.nanmean(hist, axis=1))
        positive = scale[np.isfinite(scale) & (scale > 0)]
        floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
        scale = np.maximum(np.nan_to_num(scale, nan=floor), floor)

        cols = np.arange(o + 1)
        start = first
        if cfg.train_anchors is not None:
            start = np.maximum(first, o + 1 - int(cfg.train_anchors) - cfg._lags()[-1])
        s_tr, c_tr = np.nonzero(has[:, None] & (cols[None, :] >= start[:, None]))
        s_fu, c_fu = np.meshgrid(np.flatnonzero(has), np.arange(o + 1, o + 1 + steps), indexing="ij")
        s_fu, c_fu = s_fu.ravel(), c_fu.ravel()
        s_all, c_all = np.concatenate([s_tr, s_fu]), np.concatenate([c_tr, c_fu])
        frame: dict[str, Any] = {UID: s_all, DS: c_all}
        frame[Y] = np.concatenate([hist[s_tr, c_tr], np.full(len(s_fu), np.nan)])
        frame[WEIGHT] = scale[s_all] ** float(cfg.weight_by_scale)
        frame["log_scale"] = np.log1p(scale[s_all])  # the series' volume
        self.static = ["item_id", "location_id", "log_scale"]
        for level, key in enumerate(GROUP_IDS):
            values = wide.keys.get_level_values(level)
            codes = pd.Categorical(values, categories=sorted(values.unique())).codes
            frame[key] = _category(codes[s_all], len(set(values)))
        dynamic: list[str] = []
        self.horizon_features: dict[int, list[str]] = {}
        spec = cfg.spec
        if spec is not None and cfg.use_covariates:
            for c in spec.static_reals:
                frame[c] = _series_value(wide.wide(c))[s_all]
                self.static.append(c)
            for c in spec.static_categoricals:
                codes, n = _codes(wide, c)
                frame[c] = _category(_series_value(codes)[s_all], n)
                self.static.append(c)
            for c in spec.known_reals:
                values = wide.wide(c)
                frame[c] = values[s_all, c_all]
                dynamic.append(c)
                if cfg.known_changes and np.unique(values[np.isfinite(values)]).size > 2:
                    for h in range(1, steps + 1):  # the target period against the origin
                        name = f"{c}_chg{h}"
                        frame[name] = values[s_all, c_all] - _shifted(values, s_all, c_all, h)
                        self.horizon_features.setdefault(h, []).append(name)
            for c in dict.fromkeys([*spec.known_categoricals, *spec.calendar]):
                codes, n = _codes(wide, c)
                frame[c] = _category(codes[s_all, c_all], n)
                dynamic.append(c)
            for c in [*spec.unknown_reals, *spec.unknown_categoricals]:
                categorical = c in spec.unknown_categoricals
                values, n = _codes(wide, c) if categorical else (wide.wide(c), 0)
                values[:, o + 1 :] = np.nan  # never seen after the origin
                for h in range(1, steps + 1):
                    name = f"{c}_lag{h}"
                    lagged = _shifted(values, s_all, c_all, h)
                    frame[name] = _category(lagged, n) if categorical else lagged
                    self.horizon_features.setdefault(h, []).append(name)
        df = pd.DataFrame(frame)
        n_train = len(s_tr)
        exog = [c for c in df.columns if c not in (UID, DS, Y, WEIGHT, *self.static)]
        self.train = df.iloc[:n_train].reset_index(drop=True)
        self.future = df.iloc[n_train:][[UID, DS, *exog]].reset_index(drop=True)
        self.scale = pd.Series(scale[has], index=np.flatnonzero(has))
        self.dynamic = dynamic


def _shifted(values: np.ndarray, s: np.ndarray, c: np.ndarray, h: int) -> np.ndarray:
    """``values[s, c - h]``, NaN before the first column."""
    src = c - h
    ok = src >= 0
    out = np.full(len(s), np.nan)
    out[ok] = values[s[ok], src[ok]]
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


class _MeanScaler:
    """mlforecast target transform: each series divided by a fixed scale (its mean demand).

    Quantiles commute with the positive scaling, so the models' quantiles of ``y / scale``
    multiplied back are quantiles of ``y``.
    """

    def __init__(self, scale: pd.Series):
        self.scale = scale

    def set_column_names(self, id_col: str, time_col: str, target_col: str) -> None:
        self.id_col, self.time_col, self.target_col = id_col, time_col, target_col

    def _factor(self, df: pd.DataFrame) -> np.ndarray:
        return self.scale.reindex(df[self.id_col].to_numpy()).to_numpy(float)

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(**{self.target_col: df[self.target_col] / self._factor(df)})

    def update(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.fit_transform(df)

    def inverse_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        cols = [c for c in df.columns if c not in (self.id_col, self.time_col)]
        factor = self._factor(df)
        return df.assign(**{c: df[c].to_numpy(float) * factor for c in cols})

    @staticmethod
    def stack(transforms):
        return transforms[0]
