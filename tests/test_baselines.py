"""Baselines: known answers, quantile sanity, no leakage, table shape, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from stockcast.data.spec import DatasetSpec
from stockcast.evaluation.baselines import (
    AutoETSBaseline,
    LightGBMBaseline,
    MovingAverageBaseline,
    NaiveBaseline,
    SeasonalNaiveBaseline,
    make_baselines,
)
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.schema import DEFAULT_QUANTILES, quantile_column, season_length_for

ROOT = Path(__file__).resolve().parents[1]
Q = [quantile_column(q) for q in DEFAULT_QUANTILES]
SMALL_LGBM = {"n_estimators": 40, "num_leaves": 7, "min_child_samples": 5, "n_lags": 4}


def make_spec(**roles) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        source={"path": "unused.parquet"},
        freq="MS",
        columns={"item_id": "item", "location_id": "loc", "period": "date", "demand": "y"},
        calendar=["month"],
        **roles,
    )


SPEC = make_spec(known_reals=["promo"], unknown_reals=["market"], static_reals=["size"])


def make_panel(demand: np.ndarray, seed: int = 0, promo: np.ndarray | None = None) -> pd.DataFrame:
    """Canonical panel from a (series, time) demand array: items i0.., one location each."""
    rng = np.random.default_rng(seed)
    n, t = demand.shape
    periods = pd.date_range("2020-01-01", periods=t, freq="MS")
    promo = rng.integers(0, 2, (n, t)).astype(float) if promo is None else promo
    rows = []
    for s in range(n):
        rows.append(
            pd.DataFrame(
                {
                    "item_id": f"i{s % 3}",
                    "location_id": f"l{s // 3}",
                    "period": periods,
                    "demand": demand[s].astype(float),
                    "promo": promo[s],
                    "market": rng.normal(100, 5, t),
                    "size": float(s + 1),
                    "time_idx": np.arange(t),
                    "month": periods.month.astype(str),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def noisy_panel(n: int = 6, t: int = 36, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.uniform(20, 200, (n, 1))
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(t) / 12)
    return make_panel(np.round(level * season * rng.gamma(20, 1 / 20, (n, t))), seed)


def series(panel: pd.DataFrame, item: str, loc: str) -> np.ndarray:
    sel = panel[(panel.item_id == item) & (panel.location_id == loc)].sort_values("time_idx")
    return sel["demand"].to_numpy()


# ---------------------------------------------------------------------------- known answers
def test_naive_is_last_value():
    panel = noisy_panel()
    out = NaiveBaseline().forecast(panel, [20], 3, spec=SPEC)
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


def test_seasonal_naive_falls_back_to_last_value_without_a_season():
    panel = noisy_panel(t=10)
    out = SeasonalNaiveBaseline().forecast(panel, [5], 2, spec=SPEC)  # season 12 > history
    naive = NaiveBaseline().forecast(panel, [5], 2, spec=SPEC)
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


@pytest.mark.parametrize(
    "baseline",
    [
        NaiveBaseline(),
        SeasonalNaiveBaseline(),
        MovingAverageBaseline(),
        AutoETSBaseline(),
        LightGBMBaseline(**SMALL_LGBM),
    ],
    ids=lambda b: b.name,
)
def test_quantiles_non_crossing_non_negative_and_cover_point(baseline):
    panel = noisy_panel()
    out = baseline.forecast(panel, [29], 6, spec=SPEC)
    q = out[Q].to_numpy()
    assert np.isfinite(q).all()
    assert (q >= 0).all()
    assert (np.diff(q, axis=1) >= 0).all()
    assert list(out.columns) == [
        "item_id", "location_id", "period", "forecast_origin", "horizon", *Q, "demand",
    ]  # fmt: skip
    if isinstance(baseline, NaiveBaseline):  # the method's own point lies inside the fan
        last = panel.loc[panel.time_idx == 29, ["item_id", "location_id", "demand"]]
        point = out.merge(last, on=["item_id", "location_id"], suffixes=("", "_last"))
        assert (point["q0.02"] <= point["demand_last"]).all()
        assert (point["demand_last"] <= point["q0.98"]).all()
    metrics = forecast_metrics(out)
    assert 0 <= metrics["test_coverage_80"] <= 1


# --------------------------------------------------------------------------------- leakage
ALL = [
    NaiveBaseline(),
    SeasonalNaiveBaseline(),
    MovingAverageBaseline(),
    AutoETSBaseline(),
    LightGBMBaseline(**SMALL_LGBM),
]


def test_no_leakage_from_demand_or_unknown_covariates_after_origin():
    panel = noisy_panel()
    origin = 27
    changed = panel.copy()
    after = changed["time_idx"] > origin
    changed.loc[after, "demand"] = changed.loc[after, "demand"] * 5 + 1000
    changed.loc[after, "market"] = -1e6
    for baseline in ALL:
        a = baseline.forecast(panel, [origin - 6, origin], 6, spec=SPEC)
        b = baseline.forecast(changed, [origin - 6, origin], 6, spec=SPEC)
        pd.testing.assert_frame_equal(a[Q], b[Q], obj=baseline.name)


def test_known_future_covariates_reach_lightgbm_only():
    panel = noisy_panel()
    origin = 29
    changed = panel.copy()
    after = changed["time_idx"] > origin
    changed.loc[after, "promo"] = 1 - changed.loc[after, "promo"]
    lgbm = LightGBMBaseline(**SMALL_LGBM)
    assert not np.allclose(
        lgbm.forecast(panel, [origin], 6, spec=SPEC)[Q],
        lgbm.forecast(changed, [origin], 6, spec=SPEC)[Q],
    )
    naive = NaiveBaseline()
    pd.testing.assert_frame_equal(
        naive.forecast(panel, [origin], 6, spec=SPEC),
        naive.forecast(changed, [origin], 6, spec=SPEC),
    )


# ----------------------------------------------------------------------------------- shape
@pytest.mark.parametrize(
    "baseline", [AutoETSBaseline(), LightGBMBaseline(**SMALL_LGBM)], ids=lambda b: b.name
)
def test_rolling_origins_full_table(baseline):
    panel = noisy_panel(n=4, t=30)
    out = baseline.forecast(panel, [22, 24, 26], 6, spec=SPEC)
    per_origin = out.groupby("forecast_origin").size()
    assert per_origin.tolist() == [4 * 6, 4 * 5, 4 * 3]  # truncated at the data end (29)
    assert out.groupby("forecast_origin")["horizon"].max().tolist() == [6, 5, 3]
    assert not out.duplicated(["item_id", "location_id", "period", "forecast_origin"]).any()
    assert out["demand"].notna().all()
    assert ((out["period"] - out["forecast_origin"]).dt.days > 0).all()


def test_future_rows_without_demand_are_forecast():
    panel = noisy_panel(n=3, t=30)
    panel.loc[panel["time_idx"] >= 27, "demand"] = np.nan
    out = LightGBMBaseline(**SMALL_LGBM).forecast(panel, [26], 3, spec=SPEC)
    assert len(out) == 9 and out["demand"].isna().all() and np.isfinite(out[Q]).all().all()


# ------------------------------------------------------------------------------- accuracy
def test_lightgbm_beats_naive_with_strong_known_covariate():
    rng = np.random.default_rng(3)
    n, t = 12, 40
    promo = rng.integers(0, 2, (n, t)).astype(float)
    level = rng.uniform(50, 150, (n, 1))
    demand = np.round(level * (1 + 2 * promo) * rng.gamma(50, 1 / 50, (n, t)))
    panel = make_panel(demand, promo=promo)
    spec = make_spec(known_reals=["promo"])
    lgbm = LightGBMBaseline(n_estimators=80, num_leaves=7, min_child_samples=5, n_lags=4)
    lg = forecast_metrics(lgbm.forecast(panel, [33], 6, spec=spec))
    nv = forecast_metrics(NaiveBaseline().forecast(panel, [33], 6, spec=spec))
    assert lg["test_mae"] < 0.5 * nv["test_mae"]
    assert lg["test_pinball"] < 0.5 * nv["test_pinball"]


# ------------------------------------------------------------------------------ validation
def test_bad_inputs_raise():
    panel = noisy_panel(n=2, t=12)
    with pytest.raises(ValueError, match="no period to forecast"):
        NaiveBaseline().forecast(panel, [11], 3)
    with pytest.raises(ValueError, match="quantiles"):
        NaiveBaseline().forecast(panel, [5], 3, quantiles=[0.0, 0.5])
    with pytest.raises(ValueError, match="duplicate"):
        NaiveBaseline().forecast(pd.concat([panel, panel.head(1)]), [5], 3)
    with pytest.raises(ValueError, match="season_length"):
        SeasonalNaiveBaseline().forecast(panel, [5], 3)  # no spec, no season length
    with pytest.raises(ValueError, match="error_pool"):
        NaiveBaseline(error_pool="global")


# ---------------------------------------------------------------------------------- configs
def test_make_baselines_from_names_and_mappings():
    names = [b.name for b in make_baselines(["naive", "seasonal_naive", "auto_ets"])]
    assert names == ["naive", "seasonal_naive", "auto_ets"]
    built = make_baselines(
        {
            "ma3": {
                "_target_": "stockcast.evaluation.baselines.MovingAverageBaseline",
                "window": 3,
            },
            "ma6": {"kind": "moving_average", "window": 6},
            "naive": None,
            "auto_ets": False,
        }
    )
    assert [(b.name, type(b).__name__) for b in built] == [
        ("ma3", "MovingAverageBaseline"),
        ("ma6", "MovingAverageBaseline"),
        ("naive", "NaiveBaseline"),
    ]
    assert built[0].window == 3
    with pytest.raises(ValueError, match="duplicate"):
        make_baselines(["naive", NaiveBaseline()])
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baselines(["prophet"])


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_config_files_build(name):
    cfg = OmegaConf.load(ROOT / "conf" / "baselines" / f"{name}.yaml")
    built = make_baselines(cfg)
    assert {"naive", "lightgbm"} <= {b.name for b in built}
    lgbm = next(b for b in built if isinstance(b, LightGBMBaseline))
    assert lgbm.n_estimators > 0


def test_lightgbm_calibration_keeps_median_and_moves_tails():
    panel = noisy_panel()
    raw = LightGBMBaseline(**SMALL_LGBM, calibrate=False).forecast(panel, [29], 3, spec=SPEC)
    cal = LightGBMBaseline(**SMALL_LGBM).forecast(panel, [29], 3, spec=SPEC)
    np.testing.assert_allclose(raw["q0.5"], cal["q0.5"])
    assert not np.allclose(raw["q0.02"], cal["q0.02"])
    with pytest.raises(ValueError, match="calibration"):
        LightGBMBaseline(**SMALL_LGBM, min_history=20).forecast(panel, [24], 6, spec=SPEC)
