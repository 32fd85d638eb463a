"""Backtest forecasts: one protocol call per forecaster for all review origins, looked up by
origin; diagnostics on the window's actuals; the forecaster factories."""

import pandas as pd
import pytest

from stockcast.forecast.protocol import Forecaster
from stockcast.simulation.forecasts import (
    by_origin,
    forecast_diagnostics,
    lightgbm,
    model_under_test,
    review_forecasts,
)
from stockcast.simulation.world import build_window
from tests.simulation.conftest import Perfect, tiny_panel, tiny_supply


def test_one_call_per_forecaster_for_every_review_origin():
    panel = tiny_panel(swing=2.0)
    world = build_window(panel, 8, 11, tiny_supply(), None, 0.0, 0, review=1)
    f = Perfect()
    cv = review_forecasts(f, panel, world)
    assert f.calls == [([7, 8, 9, 10], 3)]  # all origins at once, plan_horizon steps
    parts = by_origin(cv, panel)
    assert sorted(parts) == [7, 8, 9, 10]
    # horizons stop at the end of the panel (time_idx 11)
    assert sorted(parts[7]["horizon"].unique()) == [1, 2, 3]
    assert sorted(parts[10]["horizon"].unique()) == [1]
    assert "model" not in parts[7] and "demand" not in parts[7]
    assert (pd.to_datetime(parts[9]["period"]) > pd.Timestamp("2023-10-01")).all()
    diag = forecast_diagnostics({"stockcast": cv}, world).set_index("policy")
    # 2 series x (3 + 3 + 2 + 1) forecast rows, all inside the window, all exact
    assert diag.loc["stockcast", "n_forecasts"] == 18
    assert diag.loc["stockcast", "wape"] == pytest.approx(0.0)
    assert diag.loc["stockcast", "coverage_80"] == pytest.approx(1.0)


def test_forecaster_factories():
    with pytest.raises(LookupError, match="no registered model"):
        model_under_test(None)
    f = Perfect()
    assert model_under_test(f) is f
    with pytest.raises(TypeError, match="forecaster protocol"):
        model_under_test(object())
    lgb = lightgbm(spec=None, n_estimators=5)
    assert isinstance(lgb, Forecaster) and lgb.name == "lightgbm_opt"
    assert lgb.n_estimators == 5
