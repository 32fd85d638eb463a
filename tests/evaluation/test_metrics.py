"""The metric scheme: ratios to a reference model, overall and per horizon."""

from __future__ import annotations

import pandas as pd
import pytest

from stockcast.evaluation.metrics import forecast_metrics, relative_by_horizon, relative_to


def _table(errors: list[float]) -> pd.DataFrame:
    n = len(errors)
    return pd.DataFrame({
        "item_id": ["a"] * n, "location_id": ["x"] * n,
        "period": pd.date_range("2024-01-01", periods=n, freq="MS"),
        "forecast_origin": pd.Timestamp("2023-12-01"), "horizon": list(range(1, n + 1)),
        "q0.5": [10.0 + e for e in errors], "demand": [10.0] * n,
    })


def test_ratios_to_the_reference_are_known_answers():
    summary = pd.DataFrame({"model": ["tft", "lightgbm", "naive"], "mae": [2.0, 4.0, 8.0], "pinball": [1.0, 1.0, 3.0]})
    r = relative_to(summary, "lightgbm").set_index("model")
    assert r.loc["tft", "mae"] == 0.5 and r.loc["lightgbm", "mae"] == 1.0 and r.loc["naive", "pinball"] == 3.0
    with pytest.raises(ValueError, match="reference model 'ets' is not among"):
        relative_to(summary, "ets")


def test_ratios_per_horizon_compare_the_same_step():
    tables = {"tft": _table([1.0, 4.0]), "lightgbm": _table([2.0, 2.0])}
    r = relative_by_horizon(tables, "lightgbm").set_index(["model", "horizon"])
    assert r.loc[("tft", 1), "mae_ratio"] == 0.5 and r.loc[("tft", 2), "mae_ratio"] == 2.0
    assert r.loc[("lightgbm", 2), "mae_ratio"] == 1.0
    assert r.loc[("tft", 2), "mae"] == forecast_metrics(tables["tft"][tables["tft"].horizon == 2])["test_mae"]
