"""The generator's true quantiles as a protocol forecaster."""

from __future__ import annotations

import pandas as pd
import pytest

from stockcast.data.spec import DatasetSpec
from stockcast.forecast.protocol import Forecaster, cross_validate
from stockcast.forecast.truth import TruthForecaster, TruthUnavailable


def _panel(periods: int = 6) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=periods, freq="W-MON")
    return pd.DataFrame([{"item_id": i, "location_id": "L1", "period": d, "time_idx": t,
                          "demand": float(t)}
                         for i in ("a", "b") for t, d in enumerate(dates)])


def _truth(periods: int = 8) -> pd.DataFrame:
    """True quantiles for ``periods`` weeks (two past the panel), and a series the panel
    does not have."""
    dates = pd.date_range("2024-01-01", periods=periods, freq="W-MON")
    return pd.DataFrame([{"item_id": i, "location_id": "L1", "period": d, "in_history": t < 6,
                          "mean": 10.0 * k + t, "q0.1": 10.0 * k + t - 1,
                          "q0.5": 10.0 * k + t, "q0.9": 10.0 * k + t + 2}
                         for k, i in enumerate(("a", "b", "z")) for t, d in enumerate(dates)])


def test_truth_forecasts_the_panel_rows_after_each_origin():
    f = TruthForecaster(_truth())
    assert isinstance(f, Forecaster) and f.name == "true_distribution" and f.levels == [0.1, 0.5, 0.9]
    out = f.forecast(_panel(), [2, 4], 3)
    # origin 2: periods 3..5; origin 4: period 5 only (the panel ends there, the truth not)
    assert len(out) == 2 * 3 + 2 * 1 and set(out["item_id"]) == {"a", "b"}
    o2 = out[out["forecast_origin"] == pd.Timestamp("2024-01-15")]
    assert o2["horizon"].tolist() == [1, 2, 3, 1, 2, 3]
    b = o2[o2["item_id"] == "b"].set_index("horizon")
    assert b.loc[2, "q0.5"] == 14.0 and b.loc[2, "q0.9"] == 16.0  # b at time_idx 4
    assert b.loc[2, "period"] == pd.Timestamp("2024-01-29")
    o4 = out[out["forecast_origin"] == pd.Timestamp("2024-01-29")]
    assert o4["horizon"].tolist() == [1, 1]
    only = f.forecast(_panel(), [2], 1, quantiles=[0.5])
    assert [c for c in only if c.startswith("q")] == ["q0.5"]
    with pytest.raises(ValueError, match=r"not \[0.25\]"):
        f.forecast(_panel(), [2], 1, quantiles=[0.25, 0.5])
    with pytest.raises(ValueError, match="horizon"):
        f.forecast(_panel(), [2], 0)


def test_truth_goes_through_cross_validate_with_actuals():
    cv = cross_validate([TruthForecaster(_truth(), name="truth")], _panel(), [1, 3], 2)
    assert set(cv["model"]) == {"truth"} and len(cv) == 2 * 2 * 2
    assert (cv["demand"] == cv["period"].map(
        dict(zip(_panel()["period"], _panel()["time_idx"], strict=False)))).all()


def test_truth_needs_a_generated_dataset(tmp_path):
    spec = DatasetSpec(name="plain", source={"path": "x.csv"}, freq="MS",
                       columns={c: c for c in ("item_id", "location_id", "period", "demand")})
    with pytest.raises(TruthUnavailable, match="dataset plain has no generator truth"):
        TruthForecaster.from_spec(spec)
    with pytest.raises(LookupError, match="no generator truth at"):
        TruthForecaster.from_dir(tmp_path)
    _truth().to_parquet(tmp_path / "truth_demand.parquet")
    assert len(TruthForecaster.from_dir(tmp_path, name="t").forecast(_panel(), [0], 1)) == 2
    with pytest.raises(ValueError, match="missing column"):
        TruthForecaster(_truth().drop(columns=["period"]))
