"""LightGBM via mlforecast: covariates, the TFT's calibration, accuracy, short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockcast.baselines import LightGBMBaseline, NaiveBaseline, WidePanel
from stockcast.baselines.lightgbm import _Design
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.forecast.calibration import QuantileCalibration
from stockcast.forecast.protocol import Forecaster, by_model, cross_validate
from tests.baselines.baseline_toys import SMALL_LGBM, SPEC, Q, make_panel, make_spec, noisy_panel


def test_forecasts_through_the_protocol_with_the_tft_calibration():
    panel = noisy_panel()
    lgbm = LightGBMBaseline(spec=SPEC, **SMALL_LGBM)
    assert isinstance(lgbm, Forecaster)
    cv = cross_validate([lgbm], panel, [27, 29], 3, quantiles=[0.1, 0.5, 0.9])
    table = by_model(cv)["lightgbm"]
    assert len(table) == 6 * 3 * 2 and list(table.columns[-4:]) == ["q0.1", "q0.5", "q0.9", "demand"]
    cal = lgbm.calibration_
    assert isinstance(cal, QuantileCalibration)
    assert cal.levels == [0.1, 0.5, 0.9]
    # the last origin's two calibration fits, 3 and 6 periods before it
    assert cal.info == {"fit_time_idx": [29 - 6, 29 - 3], "anchors": 1, "periods": 3}
    assert cal.rows == [6 * 3 * 2]  # each fit's forecasts of its next 3 periods, one group
    table = lgbm.calibration_table_
    assert table.groupby("forecast_origin").size().tolist() == [6 * 3, 6 * 3]
    assert table["demand"].notna().all()


def test_calibration_forecasts_from_later_anchors_are_out_of_sample():
    panel, origin = noisy_panel(), 29
    settings = {**SMALL_LGBM, "calibration_fits": 1, "calibration_anchors": None}
    lgbm = LightGBMBaseline(spec=SPEC, **settings)
    lgbm.forecast(panel, [origin], 3)
    cal = lgbm.calibration_table_
    # one fit ending at 26, forecasting from anchors 26, 27, 28 the steps up to the origin
    assert cal.groupby("forecast_origin").size().tolist() == [6 * 3, 6 * 2, 6 * 1]
    assert cal["period"].max() == panel.loc[panel["time_idx"] == origin, "period"].iloc[0]
    assert lgbm.calibration_.rows == [6 * 6] and lgbm.calibration_.info["anchors"] is None
    # demand after the fit's end changes the later anchors' features, never the fit
    changed = panel.copy()
    late = changed["time_idx"].between(27, origin)
    changed.loc[late, "demand"] = changed.loc[late, "demand"] * 3
    other = LightGBMBaseline(spec=SPEC, **settings)
    other.forecast(changed, [origin], 3)
    first = (cal["forecast_origin"] == cal["forecast_origin"].min()).to_numpy()
    np.testing.assert_allclose(cal.loc[first, Q], other.calibration_table_.loc[first, Q])
    assert not np.allclose(cal.loc[~first, Q], other.calibration_table_.loc[~first, Q])


def test_second_calibration_fit_skipped_where_the_history_is_too_short():
    panel = noisy_panel()
    lgbm = LightGBMBaseline(spec=SPEC, **SMALL_LGBM)
    lgbm.forecast(panel, [18], 3)  # first complete anchor row at 13: a fit can end at 15 only
    assert lgbm.calibration_.info["fit_time_idx"] == [15]
    with pytest.raises(ValueError, match="calibration_fits"):
        LightGBMBaseline(calibration_fits=0)
    with pytest.raises(ValueError, match="calibration_anchors"):
        LightGBMBaseline(calibration_anchors=0)


def test_training_rows_of_a_fit_end_at_its_last_period():
    panel = noisy_panel()
    lgbm = LightGBMBaseline(spec=SPEC, **SMALL_LGBM)
    wide = WidePanel(panel, SPEC.freq)
    design = _Design(lgbm, wide, 29)
    s, a, h = design.training_rows(25, 3, None)
    assert (a + h <= 25).all() and set(h) == {1, 2, 3}
    assert a.min() == 12  # the first anchor with every feature (trend: two seasons of lags)
    s, a, h = design.training_rows(25, 3, 5)  # the last 5 anchors: 20..24
    assert set(a) == set(range(20, 25)) and len(s) == 6 * (3 + 3 + 3 + 2 + 1)


def test_calibration_keeps_median_and_moves_tails():
    panel = noisy_panel()
    raw = LightGBMBaseline(spec=SPEC, **SMALL_LGBM, calibrate=False).forecast(panel, [29], 3)
    lgbm = LightGBMBaseline(spec=SPEC, **SMALL_LGBM)
    cal = lgbm.forecast(panel, [29], 3)
    np.testing.assert_allclose(raw["q0.5"], cal["q0.5"])
    assert not np.allclose(raw["q0.02"], cal["q0.02"])
    history = panel[panel["time_idx"] <= 29]
    pd.testing.assert_frame_equal(lgbm.calibration_.apply(raw, history), cal)
    with pytest.raises(ValueError, match="calibration"):
        LightGBMBaseline(spec=SPEC, **SMALL_LGBM).forecast(panel, [8], 6)  # fit at 2: too short


def test_no_training_rows_raise():
    panel = noisy_panel(n=2, t=10)
    with pytest.raises(ValueError, match="no training rows"):
        LightGBMBaseline(spec=SPEC, n_lags=12, calibrate=False).forecast(panel, [8], 1)
    with pytest.raises(ValueError, match="n_lags"):
        LightGBMBaseline(n_lags=0)


def test_known_future_covariates_reach_lightgbm_only():
    panel = noisy_panel()
    origin = 29
    changed = panel.copy()
    after = changed["time_idx"] > origin
    changed.loc[after, "promo"] = 1 - changed.loc[after, "promo"]
    lgbm = LightGBMBaseline(spec=SPEC, **SMALL_LGBM)
    assert not np.allclose(
        lgbm.forecast(panel, [origin], 6)[Q], lgbm.forecast(changed, [origin], 6)[Q]
    )
    naive = NaiveBaseline(spec=SPEC)
    pd.testing.assert_frame_equal(
        naive.forecast(panel, [origin], 6), naive.forecast(changed, [origin], 6)
    )


def test_future_rows_without_demand_are_forecast():
    panel = noisy_panel(n=3, t=30)
    panel.loc[panel["time_idx"] >= 27, "demand"] = np.nan
    out = LightGBMBaseline(spec=SPEC, **SMALL_LGBM).forecast(panel, [26], 3)
    assert len(out) == 9 and out["demand"].isna().all() and np.isfinite(out[Q]).all().all()


def test_series_starting_late_and_without_covariates():
    panel = noisy_panel(n=4, t=30)
    late = (panel["item_id"] == "i2") & (panel["time_idx"] < 20)
    panel = panel[~late].reset_index(drop=True)  # i2 starts at 20: a few training rows
    out = LightGBMBaseline(**SMALL_LGBM).forecast(panel, [26], 3)  # no spec: demand only
    assert len(out) == 4 * 3 and np.isfinite(out[Q]).all().all()


def test_lightgbm_beats_naive_with_strong_known_covariate():
    rng = np.random.default_rng(3)
    n, t = 12, 40
    promo = rng.integers(0, 2, (n, t)).astype(float)
    level = rng.uniform(50, 150, (n, 1))
    demand = np.round(level * (1 + 2 * promo) * rng.gamma(50, 1 / 50, (n, t)))
    panel = make_panel(demand, promo=promo)
    spec = make_spec(known_reals=["promo"])
    lgbm = LightGBMBaseline(spec=spec, n_estimators=80, num_leaves=7, min_child_samples=5, n_lags=4)
    lg = forecast_metrics(lgbm.forecast(panel, [33], 6))
    nv = forecast_metrics(NaiveBaseline(spec=spec).forecast(panel, [33], 6))
    assert lg["test_mae"] < 0.5 * nv["test_mae"]
    assert lg["test_pinball"] < 0.5 * nv["test_pinball"]
