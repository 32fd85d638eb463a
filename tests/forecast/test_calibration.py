"""Quantile calibration: conformal known answers, coverage, volume groups, served by the model."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from stockcast.evaluation.metrics import forecast_metrics
from stockcast.forecast.calibration import (
    QuantileCalibration,
    conformal_quantile,
    fit_calibration,
    fit_conformal,
    monotone_from_point,
    row_scale,
)
from stockcast.schema import quantile_column

LEVELS = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
COLS = [quantile_column(q) for q in LEVELS]
ORIGIN = pd.Timestamp("2020-12-01")


def _case(seed: int, n_series: int = 300, horizon: int = 3, sigma: float = 0.3, shrink: float = 0.5):
    """Series with levels over 4 orders of magnitude (the same for every seed), demand ~
    level * (1 + sigma * Z) drawn with ``seed``; the forecast has the right median but
    intervals ``shrink`` times as wide as the truth."""
    level = 10 ** np.random.default_rng(0).uniform(0, 4, n_series)
    rng = np.random.default_rng(seed)
    hist_periods = pd.date_range("2020-01-01", ORIGIN, freq="MS")
    keys = pd.DataFrame({"item_id": [f"i{k}" for k in range(n_series)], "location_id": "L"})
    panel = keys.assign(level=level).merge(pd.DataFrame({"period": hist_periods}), how="cross")
    panel["demand"] = panel["level"]  # a flat history: the encoder mean is the level
    rows = keys.assign(level=level).merge(pd.DataFrame({"horizon": range(1, horizon + 1)}), how="cross")
    rows["forecast_origin"] = ORIGIN
    rows["period"] = ORIGIN + rows["horizon"].map(lambda h: pd.DateOffset(months=int(h)))
    sd = sigma * rows["level"].to_numpy()
    rows["demand"] = rows["level"] + sd * rng.standard_normal(len(rows))
    for q, c in zip(LEVELS, COLS, strict=True):
        rows[c] = rows["level"] + shrink * sd * norm.ppf(q)
    return rows.drop(columns="level"), panel.drop(columns="level")


def test_conformal_quantile_known_answers():
    r = np.arange(1.0, 10.0)  # n = 9
    assert conformal_quantile(r, 0.9) == 9.0  # ceil(10 * 0.9) = 9th smallest
    assert conformal_quantile(r, 0.75) == 8.0  # ceil(7.5) = 8
    assert conformal_quantile(r, 0.1) == 1.0  # floor(1.0) = 1
    assert conformal_quantile(r, 0.25) == 2.0  # floor(2.5) = 2
    assert conformal_quantile(r, 0.98) == 9.0 and conformal_quantile(r, 0.02) == 1.0  # capped
    with pytest.raises(ValueError, match="no residuals"):
        conformal_quantile(np.array([]), 0.9)


@pytest.mark.parametrize("scale", ["encoder_mean", "median"])
def test_half_width_intervals_are_widened_to_nominal_coverage(scale):
    fit_rows, panel = _case(seed=0)
    held_out, _ = _case(seed=1)  # same series, new draws
    before = forecast_metrics(held_out, prefix="t")
    assert before["t_coverage_80"] < 0.55  # P(|Z| < 0.5 * 1.2816) = 0.48

    # the shift of each level is the missing half of the interval: 0.5 * sigma * z_level
    pooled = fit_conformal(fit_rows, panel, scale=scale, window=12, bins=1)
    assert np.allclose(pooled.shifts[0], 0.5 * 0.3 * norm.ppf(LEVELS), atol=0.04)
    cal = fit_conformal(fit_rows, panel, scale=scale, window=12, bins=3)
    assert len(cal.shifts) == 3 and sum(cal.rows) == 900 and min(cal.rows) >= 290
    after = cal.apply(held_out, panel)
    m = forecast_metrics(after, prefix="t")
    for pct in (50, 80, 96):
        assert m[f"t_coverage_{pct}"] == pytest.approx(pct / 100, abs=0.04), pct
    assert m["t_pinball"] < before["t_pinball"]
    # the point forecast is untouched
    assert np.array_equal(after["q0.5"].to_numpy(), held_out["q0.5"].to_numpy())


def test_volume_groups_fix_series_whose_relative_error_differs():
    # small series are 9x as noisy (relatively) as big ones: one pooled correction
    # under-covers the small and over-covers the big ones, volume groups get both right
    def scaled(rows, panel, factor):
        rows = rows.assign(item_id="big_" + rows["item_id"])
        rows[[*COLS, "demand"]] = rows[[*COLS, "demand"]] * factor
        return rows, panel.assign(item_id="big_" + panel["item_id"], demand=panel["demand"] * factor)

    small, panel_small = _case(seed=2, sigma=0.45)
    big, panel_big = scaled(*_case(seed=3, sigma=0.05), 1e5)
    rows, panel = pd.concat([small, big], ignore_index=True), pd.concat([panel_small, panel_big], ignore_index=True)
    held_small, _ = _case(seed=4, sigma=0.45)
    held_big, _ = scaled(*_case(seed=5, sigma=0.05), 1e5)

    def coverage(bins, held):
        return forecast_metrics(fit_conformal(rows, panel, bins=bins).apply(held, panel), prefix="t")["t_coverage_80"]

    assert coverage(1, held_small) < 0.77 and coverage(1, held_big) > 0.83
    assert coverage(2, held_small) == pytest.approx(0.8, abs=0.03)
    assert coverage(2, held_big) == pytest.approx(0.8, abs=0.03)


def test_calibrated_quantiles_never_cross_and_stay_non_negative():
    rows, panel = _case(seed=5, n_series=40)
    # shifts that would push the lower levels above the median and the upper ones below it
    cal = QuantileCalibration(
        levels=LEVELS, shifts=[[2.0, 1.5, 1.0, 0.0, -1.0, -1.5, -2.0]], edges=[], scale="encoder_mean", window=12, floor=1.0
    )
    out = cal.apply(rows, panel)
    q = out[COLS].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    assert np.array_equal(out["q0.5"].to_numpy(), rows["q0.5"].to_numpy())
    # every non-median level collapsed onto the median
    assert np.allclose(q, q[:, [3]])
    # clipped at zero: a large negative lower shift
    low = QuantileCalibration(levels=LEVELS, shifts=[[-50.0, -40, -30, 0, 0, 0, 0]], edges=[], scale="encoder_mean", window=12, floor=1.0)
    assert (low.apply(rows, panel)["q0.02"] == 0).all()
    assert np.array_equal(monotone_from_point(np.array([[3.0, 1.0, 2.0]]), [0.1, 0.5, 0.9]), np.array([[1.0, 1.0, 2.0]]))


def test_scale_reads_nothing_after_the_origin():
    rows, panel = _case(seed=6, n_series=5)
    before = row_scale(rows, panel, "encoder_mean", window=3)
    future = panel.assign(period=panel["period"] + pd.DateOffset(months=12), demand=1e9)
    after = row_scale(rows, pd.concat([panel, future]), "encoder_mean", window=3)
    assert np.array_equal(before, after)


def test_bad_settings_and_inputs_raise():
    rows, panel = _case(seed=7, n_series=10)
    with pytest.raises(ValueError, match="calibration.scale must be one of"):
        fit_conformal(rows, panel, scale="volume")
    with pytest.raises(ValueError, match="bins must be >= 1"):
        fit_conformal(rows, panel, bins=0)
    with pytest.raises(ValueError, match="no rows with actual demand"):
        fit_conformal(rows.assign(demand=np.nan), panel)
    cal = fit_conformal(rows, panel, bins=3)
    assert len(cal.shifts) == 1  # 30 rows: too few for 3 groups of 50
    with pytest.raises(ValueError, match=r"forecast table: calibration needs quantile columns \['q0.98'\]"):
        cal.apply(rows.drop(columns="q0.98"), panel)


def _bundle(result):
    return mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model().bundle


def test_registered_model_serves_calibrated_quantiles(smoke_train):
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.scenarios import as_of

    result, cfg = smoke_train
    run = mlflow.get_run(result.run_id)
    m = run.data.metrics
    for key in ("val_coverage_80", "val_uncalibrated_coverage_80", "test_pinball", "test_uncalibrated_pinball"):
        assert key in m and np.isfinite(m[key]), key
    # the point forecast is the model's: MAE does not move, the intervals do
    assert m["test_mae"] == pytest.approx(m["test_uncalibrated_mae"])
    assert m["val_coverage_80"] >= m["val_uncalibrated_coverage_80"]
    stored = json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/calibration/calibration.json"))

    bundle = _bundle(result)
    assert bundle.calibration is not None and bundle.calibration.to_dict() == stored
    assert stored["info"]["window_time_idx"] == [int(run.data.params["split.val_start"]), int(run.data.params["split.val_end"])]
    panel = select_series(load_panel(bundle.spec), None, cfg.max_series)
    view = as_of(panel, bundle.spec, 56, 3)
    served = bundle.forecast_last(view, 3)
    own = bundle.forecast_last(view, 3, calibrated=False)
    pd.testing.assert_frame_equal(served, bundle.calibration.apply(own, view))
    assert not np.allclose(served[COLS].to_numpy(), own[COLS].to_numpy())
    assert np.array_equal(served["q0.5"].to_numpy(), own["q0.5"].to_numpy())
    # what the training run logged as test metrics is this served table
    f = result.forecast
    got = forecast_metrics(f, prefix="test")
    assert m["test_pinball"] == pytest.approx(got["test_pinball"], rel=1e-6)
    assert m["test_coverage_80"] == pytest.approx(got["test_coverage_80"])


def test_bundles_without_calibration_still_load(smoke_train, tmp_path):
    from stockcast.forecast.bundle import ForecastBundle

    result, _ = smoke_train
    bundle = _bundle(result)
    artifacts = bundle.save(tmp_path / "new", Path(result.best_checkpoint))
    again = ForecastBundle.load(artifacts)
    assert again.calibration.to_dict() == bundle.calibration.to_dict()
    # a model registered before calibration existed: no key in meta.json
    meta_file = Path(artifacts["meta"])
    meta = json.loads(meta_file.read_text())
    del meta["calibration"]
    meta_file.write_text(json.dumps(meta))
    old = ForecastBundle.load(artifacts)
    assert old.calibration is None
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.scenarios import as_of

    view = as_of(select_series(load_panel(old.spec), None, 12), old.spec, 56, 3)
    pd.testing.assert_frame_equal(old.forecast_last(view, 3), bundle.forecast_last(view, 3, calibrated=False))


def test_method_none_switches_calibration_off(smoke_train):
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.protocol import by_model, cross_validate

    result, _ = smoke_train
    bundle = _bundle(result).uncalibrated()
    panel = select_series(load_panel(bundle.spec), None, 12)
    table = by_model(cross_validate([bundle], panel[panel.time_idx <= 56], [53, 55], 3))[bundle.name]
    assert sorted(table.forecast_origin.unique()) == [pd.Timestamp("2017-06-01"), pd.Timestamp("2017-08-01")]
    assert table.demand.notna().all()
    assert fit_calibration(table, panel, method="none", window=6) is None
    assert isinstance(fit_calibration(table, panel, window=6, min_rows_per_bin=5), QuantileCalibration)
    with pytest.raises(ValueError, match="calibration.method must be one of"):
        fit_calibration(table, panel, method="isotonic", window=6)


