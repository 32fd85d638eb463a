"""Regime changes of the synthetic generator (level shift, sentiment shock)."""

from __future__ import annotations

import numpy as np
import pytest

from stockcast.data.synthetic import generate


def test_level_shift_multiplies_the_true_mean_from_its_period_on():
    base = generate(n_items=3, n_stores=2, periods=40, quantiles=None)
    shifted = generate(n_items=3, n_stores=2, periods=40, quantiles=None, regime_change={"kind": "level", "period": -10, "size": 0.5})
    ratio = (shifted.truth["truth_demand"]["mean"] / base.truth["truth_demand"]["mean"]).to_numpy().reshape(6, -1)
    np.testing.assert_allclose(ratio[:, :30], 1.0)
    np.testing.assert_allclose(ratio[:, 30:], 0.5)
    assert shifted.params["regime_change"] == {"kind": "level", "period": 30, "size": 0.5, "date": str(shifted.demand["period"].unique()[30].date())}


def test_sentiment_shock_moves_the_index_and_demand_follows_with_the_lag():
    kw = dict(n_items=2, n_stores=1, n_dcs=1, periods=30, quantiles=None, sentiment_lag=2)
    base, shock = generate(**kw), generate(**kw, regime_change={"kind": "sentiment", "period": 20, "size": -3.0})
    s0, s1 = base.covariates["sentiment"], shock.covariates["sentiment"]
    jump = (s1["sentiment"] - s0["sentiment"]).to_numpy().reshape(2, -1)  # columns: periods -2..29
    np.testing.assert_allclose(jump[:, :20], 0.0)
    np.testing.assert_allclose(jump[:, 20:], -3.0)  # observed from period 18 = 20 - lag
    effect = shock.truth["truth_series"]["sentiment_effect"].to_numpy()
    ratio = (shock.truth["truth_demand"]["mean"] / base.truth["truth_demand"]["mean"]).to_numpy().reshape(2, -1)
    np.testing.assert_allclose(ratio[:, :20], 1.0)
    np.testing.assert_allclose(ratio[:, 20:], np.broadcast_to(np.exp(-3.0 * effect)[:, None], ratio[:, 20:].shape))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "meteor", "period": 5}, "kind must be one of"),
        ({"kind": "level", "period": 99}, "must fall inside the history"),
        ({"kind": "level", "period": 5, "size": 0}, "size must be > 0"),
        ({"kind": "level", "when": 5}, "unknown key"),
    ],
)
def test_bad_regime_change_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        generate(n_items=2, n_stores=1, periods=20, quantiles=None, regime_change=change)


