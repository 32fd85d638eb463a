"""Every baseline: the forecaster protocol, quantile sanity, no leakage, table shape, configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast.baselines import (
    REGISTRY,
    AutoETSBaseline,
    Baseline,
    LightGBMBaseline,
    MovingAverageBaseline,
    NaiveBaseline,
    SeasonalNaiveBaseline,
)
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.forecast.protocol import Forecaster, cross_validate
from tests.baselines.baseline_toys import SMALL_LGBM, SPEC, Q, make_spec, noisy_panel

ROOT = Path(__file__).resolve().parents[2]


def all_baselines(spec=SPEC) -> list[Baseline]:
    return [
        NaiveBaseline(spec=spec),
        SeasonalNaiveBaseline(spec=spec),
        MovingAverageBaseline(spec=spec),
        AutoETSBaseline(spec=spec),
        LightGBMBaseline(spec=spec, **SMALL_LGBM),
    ]


# ------------------------------------------------------------------------------- protocol
def test_every_baseline_is_a_forecaster_and_cross_validates():
    panel = noisy_panel(n=4, t=30)
    baselines = all_baselines()
    assert all(isinstance(b, Forecaster) for b in baselines)
    cv = cross_validate(baselines, panel, [23, 25], 3)
    assert list(cv["model"].unique()) == [b.name for b in baselines]
    assert (cv.groupby("model").size() == 4 * 3 * 2).all()
    assert cv["demand"].notna().all()


@pytest.mark.parametrize("baseline", all_baselines(), ids=lambda b: b.name)
def test_quantiles_non_crossing_non_negative_and_cover_point(baseline):
    panel = noisy_panel()
    out = baseline.forecast(panel, [29], 6)
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
def test_no_leakage_from_demand_or_unknown_covariates_after_origin():
    panel = noisy_panel()
    origin = 27
    changed = panel.copy()
    after = changed["time_idx"] > origin
    changed.loc[after, "demand"] = changed.loc[after, "demand"] * 5 + 1000
    changed.loc[after, "market"] = -1e6
    for baseline in all_baselines():
        a = baseline.forecast(panel, [origin - 6, origin], 6)
        b = baseline.forecast(changed, [origin - 6, origin], 6)
        pd.testing.assert_frame_equal(a[Q], b[Q], obj=baseline.name)


# ----------------------------------------------------------------------------------- shape
@pytest.mark.parametrize(
    "baseline",
    [AutoETSBaseline(spec=SPEC), LightGBMBaseline(spec=SPEC, **SMALL_LGBM)],
    ids=lambda b: b.name,
)
def test_rolling_origins_full_table(baseline):
    panel = noisy_panel(n=4, t=30)
    out = baseline.forecast(panel, [22, 24, 26], 6)
    per_origin = out.groupby("forecast_origin").size()
    assert per_origin.tolist() == [4 * 6, 4 * 5, 4 * 3]  # truncated at the data end (29)
    assert out.groupby("forecast_origin")["horizon"].max().tolist() == [6, 5, 3]
    assert not out.duplicated(["item_id", "location_id", "period", "forecast_origin"]).any()
    assert out["demand"].notna().all()
    assert ((out["period"] - out["forecast_origin"]).dt.days > 0).all()


def test_series_starting_late_get_forecasts_only_from_their_history():
    panel = noisy_panel(n=3, t=30)
    late = (panel["item_id"] == "i2") & (panel["time_idx"] < 26)
    panel = panel[~late].reset_index(drop=True)  # i2 starts at time_idx 26
    out = NaiveBaseline(spec=SPEC).forecast(panel, [24, 27], 2)
    assert set(out.loc[out["forecast_origin"] == pd.Timestamp("2022-01-01"), "item_id"]) == {
        "i0", "i1",
    }  # fmt: skip
    assert (out["forecast_origin"] == pd.Timestamp("2022-04-01")).sum() == 3 * 2


# ------------------------------------------------------------------------------ validation
def test_bad_inputs_raise():
    panel = noisy_panel(n=2, t=12)
    with pytest.raises(ValueError, match="no period to forecast"):
        NaiveBaseline().forecast(panel, [11], 3)
    with pytest.raises(ValueError, match="quantiles"):
        NaiveBaseline().forecast(panel, [5], 3, quantiles=[0.0, 0.5])
    with pytest.raises(ValueError, match="duplicate"):
        NaiveBaseline().forecast(pd.concat([panel, panel.head(1)]), [5], 3)
    with pytest.raises(ValueError, match="horizon"):
        NaiveBaseline().forecast(panel, [5], 0)
    with pytest.raises(ValueError, match="origins is empty"):
        NaiveBaseline().forecast(panel, [], 3)
    with pytest.raises(ValueError, match="missing column"):
        NaiveBaseline().forecast(panel.drop(columns="time_idx"), [5], 3)


# ---------------------------------------------------------------------------------- configs
def test_config_has_every_field_and_the_spec_fields_that_matter():
    cfg = LightGBMBaseline(spec=SPEC, n_estimators=7).config()
    assert cfg["class"] == "stockcast.baselines.lightgbm.LightGBMBaseline"
    assert cfg["n_estimators"] == 7 and cfg["name"] == "lightgbm"
    assert list(cfg) == ["class", *sorted(k for k in cfg if k != "class")]
    assert cfg["spec"]["freq"] == "MS" and cfg["spec"]["known_reals"] == ["promo"]
    assert "source" not in cfg["spec"]  # where the data lives does not change forecasts
    json.dumps(cfg)  # JSON-ready
    other = make_spec(known_reals=["promo"], unknown_reals=[], static_reals=["size"])
    assert LightGBMBaseline(spec=other).config() != LightGBMBaseline(spec=SPEC).config()
    assert NaiveBaseline().config()["spec"] is None


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_config_files_build_with_instantiate(name):
    cfg = OmegaConf.load(ROOT / "conf" / "baselines" / f"{name}.yaml")
    built = [
        instantiate(entry, _partial_=True, _convert_="all")(name=key, spec=SPEC)
        for key, entry in cfg.items()
    ]
    assert {"naive", "lightgbm"} <= {b.name for b in built}
    for b in built:
        assert isinstance(b, REGISTRY[b.name]) and b.spec is SPEC
    lgbm = next(b for b in built if isinstance(b, LightGBMBaseline))
    assert lgbm.n_estimators > 0 and isinstance(lgbm.rolling_windows, list)


def test_registry_names_the_default_of_each_baseline():
    assert sorted(REGISTRY) == sorted(
        ["naive", "seasonal_naive", "moving_average", "auto_ets", "lightgbm"]
    )
    for name, cls in REGISTRY.items():
        assert cls().name == name
