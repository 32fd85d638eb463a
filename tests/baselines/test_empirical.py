"""Naive, seasonal naive, moving average: known answers and empirical-error quantiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockcast.baselines import MovingAverageBaseline, NaiveBaseline, SeasonalNaiveBaseline
from stockcast.schema import season_length_for
from tests.baselines.baseline_toys import SPEC, Q, make_panel, noisy_panel, series


# ---------------------------------------------------------------------------- known answers
def test_naive_is_last_value():
    panel = noisy_panel()
    out = NaiveBaseline(spec=SPEC).forecast(panel, [20], 3)
    assert len(out) == 6 * 3
    assert sorted(out["horizon"].unique()) == [1, 2, 3]
    assert (out["forecast_origin"] == pd.Timestamp("2021-09-01")).all()
    for (item, loc), grp in out.groupby(["item_id", "location_id"]):
        y = series(panel, item, loc)
        np.testing.assert_allclose(grp["q0.5"], y[20])
        np.testing.assert_allclose(grp["demand"], y[21:24])
        assert list(grp["period"]) == list(pd.date_range("2021-10-01", periods=3, freq="MS"))


def test_seasonal_naive_repeats_season():
    pattern = np.array([10.0, 20.0, 30.0, 40.0])
    demand = np.tile(pattern, 6)[None, :] * np.array([[1.0], [2.0]])
    panel = make_panel(demand)
    out = SeasonalNaiveBaseline(season_length=4).forecast(panel, [13], 6)
    for (item, loc), grp in out.groupby(["item_id", "location_id"]):
        y = series(panel, item, loc)
        expected = [y[13 + h - 4 * int(np.ceil(h / 4))] for h in range(1, 7)]
        np.testing.assert_allclose(grp["q0.5"], expected)
        np.testing.assert_allclose(grp["q0.5"], grp["demand"])  # exact season: zero error
        np.testing.assert_allclose(grp["q0.02"], grp["q0.98"])  # ... and no spread


def test_seasonal_naive_season_from_the_spec_freq():
    pattern = np.arange(1.0, 13.0)
    panel = make_panel(np.tile(pattern, 3)[None, :])
    out = SeasonalNaiveBaseline(spec=SPEC).forecast(panel, [29], 3)  # MS -> 12
    np.testing.assert_allclose(out["q0.5"], pattern[6:9])


def test_seasonal_naive_falls_back_to_last_value_without_a_season():
    panel = noisy_panel(t=10)
    out = SeasonalNaiveBaseline(spec=SPEC).forecast(panel, [5], 2)  # season 12 > history
    naive = NaiveBaseline(spec=SPEC).forecast(panel, [5], 2)
    np.testing.assert_allclose(out["q0.5"], naive["q0.5"])


def test_moving_average_is_window_mean():
    panel = noisy_panel()
    out = MovingAverageBaseline(window=4).forecast(panel, [30], 2)
    for (item, loc), grp in out.groupby(["item_id", "location_id"]):
        np.testing.assert_allclose(grp["q0.5"], series(panel, item, loc)[27:31].mean())


def test_season_length_from_freq():
    assert season_length_for("MS") == 12
    assert season_length_for("W-MON") == 52
    assert season_length_for("D") == 7
    assert season_length_for("2W") == 26
    with pytest.raises(ValueError, match="season_length"):
        season_length_for("min")


# ------------------------------------------------------------------------------- quantiles
def test_empirical_quantiles_are_in_sample_errors_of_the_method():
    y = np.array([[10.0, 12, 11, 15, 13, 14, 18, 16, 17, 19, 20, 18]])
    panel = make_panel(y)
    naive = NaiveBaseline(center=False, min_errors=1)
    out = naive.forecast(panel, [10], 1, quantiles=[0.1, 0.5, 0.9])
    errors = np.diff(y[0, :11])  # step-1 errors of the last value, up to the origin only
    for level in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(out[f"q{level}"], y[0, 10] + np.quantile(errors, level))
    centered = NaiveBaseline(min_errors=1).forecast(panel, [10], 1, quantiles=[0.1, 0.5, 0.9])
    np.testing.assert_allclose(centered["q0.5"], y[0, 10])
    np.testing.assert_allclose(
        centered["q0.9"], y[0, 10] + np.quantile(errors, 0.9) - np.median(errors)
    )


def test_pooled_errors_scale_with_series_level():
    rng = np.random.default_rng(1)
    base = 50 * rng.gamma(10, 0.1, 30)
    panel = make_panel(np.vstack([base, 10 * base]))
    out = NaiveBaseline(error_pool="pooled").forecast(panel, [29 - 3], 3)
    spread = (out["q0.9"] - out["q0.1"]).to_numpy().reshape(2, 3)
    np.testing.assert_allclose(spread[1], 10 * spread[0])


def test_short_series_use_pooled_errors():
    demand = noisy_panel(n=2, t=30)["demand"].to_numpy().reshape(2, 30)
    panel = make_panel(demand)
    short = panel[(panel.item_id == "i1") & (panel.time_idx < 22)].index
    panel = panel.drop(short[:18])  # i1 starts at time_idx 18: 3 errors at step 1
    out = NaiveBaseline(min_errors=10).forecast(panel, [25], 2)
    assert np.isfinite(out[Q]).all().all()
    assert (out.groupby("item_id")["q0.98"].count() == 2).all()


# ------------------------------------------------------------------------------ validation
def test_bad_settings_raise():
    panel = noisy_panel(n=2, t=12)
    with pytest.raises(ValueError, match="season_length"):
        SeasonalNaiveBaseline().forecast(panel, [5], 3)  # no spec, no season length
    with pytest.raises(ValueError, match="season_length must be >= 1"):
        SeasonalNaiveBaseline(season_length=0).forecast(panel, [5], 3)
    with pytest.raises(ValueError, match="error_pool"):
        NaiveBaseline(error_pool="global")
    with pytest.raises(ValueError, match="window"):
        MovingAverageBaseline(window=0).forecast(panel, [5], 3)
