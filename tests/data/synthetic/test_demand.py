"""stockcast.data.synthetic.demand: the demand and covariate tables, shaped as documented."""

from __future__ import annotations

import pytest

from stockcast.data.synthetic import QUANTILES, generate


def test_shapes(data):
    s, periods, horizon = 40, 156, 8
    assert len(data.demand) == s * periods
    assert list(data.demand.columns) == ["item_id", "location_id", "period", "demand"]
    assert len(data.covariates["prices"]) == s * (periods + horizon)
    assert len(data.covariates["weather"]) == 4 * (periods + horizon)
    assert len(data.covariates["sentiment"]) == 10 * (periods + 2)
    assert len(data.covariates["market"]) == periods
    assert len(data.covariates["events"]) == periods + horizon
    assert len(data.truth["truth_demand"]) == s * (periods + horizon)
    assert len(data.truth["truth_series"]) == s
    td = data.truth["truth_demand"]
    assert {f"q{q:g}" for q in QUANTILES} <= set(td.columns)
    assert td["in_history"].sum() == len(data.demand)
    hist = td[td["in_history"]].reset_index(drop=True)
    assert (hist["demand"].to_numpy() == data.demand["demand"].to_numpy()).all()
    assert data.demand["period"].dt.dayofweek.eq(0).all()  # W-MON grid
    assert (data.demand["demand"] >= 0).all()


@pytest.mark.parametrize(("freq", "periods"), [("MS", 60), ("D", 120)])
def test_other_grids(freq, periods):
    d = generate(n_items=4, n_stores=2, n_dcs=1, periods=periods, freq=freq, horizon=3, seed=2)
    assert len(d.demand) == 8 * periods
    assert d.demand["period"].nunique() == periods
    weekly = d.truth["truth_effects"].set_index("driver").loc["weekly_seasonality", "relevant"]
    assert weekly == (freq == "D")  # day-of-week effects exist on daily grids only


def test_intermittent_items_are_low_volume(data):
    ts = data.truth["truth_series"]
    slow = ts.loc[ts["intermittent"], ["item_id", "location_id"]].astype(str)
    assert len(slow)
    demand = data.demand.astype({"item_id": str, "location_id": str}).merge(slow)
    assert demand["demand"].mean() < 1.0 and (demand["demand"] == 0).mean() > 0.5
    assert set(ts.loc[ts["intermittent"], "distribution"]) <= {"poisson", "negbin"}
