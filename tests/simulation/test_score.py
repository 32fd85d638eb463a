"""Decision-aware scoring: a forecaster that tracks demand beats one that gets the swing
backwards, both tuned to the same fill rate."""

import pandas as pd
import pytest

from stockcast.schema import GROUP_IDS
from stockcast.simulation.score import decision_scores
from stockcast.simulation.world import build_window
from tests.simulation.conftest import tiny_panel, tiny_supply


class Spread:
    """Quantiles 0.7x / 1x / 1.3x of the actual demand (``backwards``: of the demand of the
    opposite swing, 2 x level - actual)."""

    def __init__(self, name, backwards=False):
        self.name, self.backwards = name, backwards

    def forecast(self, panel, origins, horizon, quantiles=None):
        out = []
        level = panel.groupby("location_id")["demand"].transform("mean")
        for o in origins:
            rows = panel[(panel["time_idx"] > o) & (panel["time_idx"] <= o + horizon)].copy()
            centre = 2 * level.loc[rows.index] - rows["demand"] if self.backwards else rows["demand"]
            rows["horizon"] = rows["time_idx"] - o
            rows["forecast_origin"] = panel.loc[panel["time_idx"] == o, "period"].iloc[0]
            for q, f in ((0.1, 0.7), (0.5, 1.0), (0.9, 1.3)):
                rows[f"q{q:g}"] = (centre * f).clip(lower=0)
            out.append(rows[[*GROUP_IDS, "period", "forecast_origin", "horizon",
                             "q0.1", "q0.5", "q0.9"]])
        return pd.concat(out, ignore_index=True)


def test_tracking_forecaster_costs_less_at_the_same_fill(monkeypatch):
    panel = tiny_panel(24, swing=4.0)
    world = build_window(panel, 12, 23, tiny_supply(), None, 0.0, 0)
    forecasters = [Spread("good"), Spread("bad", backwards=True)]
    args = dict(fill=0.9, plan={"n_scenarios": 32}, grid=(0.6, 0.9, 0.99), world=world)
    serial = decision_scores(forecasters, panel, None, None, 12, 23, **args)
    scores = serial.set_index("model")
    assert scores["reached"].all()
    assert scores["target_fill_rate"].nunique() == 1
    assert scores.loc["good", "controllable_cost"] < scores.loc["bad", "controllable_cost"]
    with pytest.raises(ValueError, match="names must differ"):
        decision_scores([Spread("a"), Spread("a")], panel, None, None, 12, 23, world=world)

    # n_jobs=2: the grid and each policy's search are simulated in forked workers
    # (Replay.matched); the scores equal one process's to the last digit, and the parent
    # simulated only the two main runs itself
    import stockcast.simulation.replay as replay_mod

    simulated, real = [], replay_mod.simulate
    monkeypatch.setattr(replay_mod, "simulate", lambda *a, **k: simulated.append(1) or real(*a, **k))
    parallel = decision_scores(forecasters, panel, None, None, 12, 23, n_jobs=2, **args)
    pd.testing.assert_frame_equal(parallel, serial)
    assert len(simulated) == 2, len(simulated)


def test_fitted_lead_time_demand_is_fitted_on_validation_origins_first():
    """lead_time_demand=direct: each forecaster's protection-period errors are fitted on
    its forecasts before the window, then it is scored as before; without the periods to
    fit on (no spec, none given) the call says so."""
    panel = tiny_panel(24, swing=4.0)
    world = build_window(panel, 12, 23, tiny_supply(), None, 0.0, 0)
    scores = decision_scores([Spread("good"), Spread("bad", backwards=True)], panel, None,
                             None, 12, 23, fill=0.9, plan={"n_scenarios": 32},
                             grid=(0.6, 0.9, 0.99), lead_time_demand="direct",
                             validation_periods=8, world=world).set_index("model")
    assert scores["reached"].all()
    assert scores.loc["good", "controllable_cost"] < scores.loc["bad", "controllable_cost"]
    with pytest.raises(ValueError, match="give validation_periods"):
        decision_scores([Spread("good")], panel, None, None, 12, 23,
                        lead_time_demand="direct", world=world)
