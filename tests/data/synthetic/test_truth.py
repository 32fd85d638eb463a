"""stockcast.data.synthetic.truth: the ground truth is the truth (mean, effects, quantiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.data.synthetic import QUANTILES, SyntheticData, true_quantiles

KEYS = ["item_id", "location_id", "period"]


def recompute_log_mean(data: SyntheticData) -> pd.DataFrame:
    """log mean demand rebuilt from the published tables and ``truth_series`` (history)."""
    cov, truth = data.covariates, data.truth
    lag = int(truth["truth_series"]["sentiment_lag"].iloc[0])
    sent = cov["sentiment"].astype({"item_id": str}).sort_values(["item_id", "period"])
    sent["period"] = sent.groupby("item_id")["period"].shift(-lag)  # value at t drives t + lag
    weather = truth["truth_weather"].astype({"location_id": str})
    df = (
        truth["truth_demand"][truth["truth_demand"]["in_history"]]
        .astype({"item_id": str, "location_id": str})
        .merge(cov["prices"].astype({"item_id": str, "location_id": str}), on=KEYS)
        .merge(weather[["location_id", "period", "temperature"]], on=["location_id", "period"])
        .merge(sent[["item_id", "period", "sentiment"]], on=["item_id", "period"], how="left")
        .merge(cov["market"], on="period")
        .merge(cov["events"], on="period")
        .merge(truth["truth_series"], on=["item_id", "location_id"], suffixes=("", "_truth"))
    )
    years = (df["period"] - df["period"].min()).dt.days / 365.25
    doy = df["period"].dt.dayofyear
    dow = df[[f"dow_{d}" for d in range(7)]].to_numpy()[
        np.arange(len(df)), df["period"].dt.dayofweek
    ]
    parts = {
        "base": df["base_log_mean"],
        "trend": df["trend"] * years,
        "season": df["season_amplitude"]
        * np.cos(2 * np.pi * (doy - df["season_peak_doy"]) / 365.25),
        "dow": dow,
        "price": df["elasticity"] * np.log(df["price"] / df["ref_price"]),
        "promo": df["promo_lift"] * df["promo"],
        "holiday": df["holiday_effect"] * df["holiday"],
        "temperature": df["temperature_effect"] * (df["temperature"] - df["temperature_ref"]),
        "sentiment": df["sentiment_effect"] * df["sentiment"],
        "market": df["market_effect"] * df["market_index"],
    }
    for name, values in parts.items():
        df[f"part_{name}"] = np.asarray(values, dtype=float)
    return df


def test_truth_tables_rebuild_the_mean_exactly(data):
    df = recompute_log_mean(data).dropna(subset=["sentiment"])
    rebuilt = df[[c for c in df.columns if c.startswith("part_")]].sum(axis=1)
    assert len(df) == 40 * 156
    np.testing.assert_allclose(rebuilt, np.log(df["mean"]), atol=1e-9)


def test_mean_demand_responds_to_price_with_stated_elasticity(data):
    df = recompute_log_mean(data)
    others = [c for c in df.columns if c.startswith("part_") and c != "part_price"]
    df["rest"] = np.log(df["mean"]) - df[others].sum(axis=1)
    checked = 0
    for (_, _), g in df.groupby(["item_id", "location_id"]):
        x = np.log(g["price"] / g["ref_price"])
        if x.std() < 1e-6:
            continue
        slope = np.polyfit(x, g["rest"], 1)[0]
        assert slope == pytest.approx(g["elasticity"].iloc[0], abs=1e-6)
        checked += 1
    assert checked == 40
    # a 10% price rise cuts mean demand by 1 - 1.1**elasticity, elastic items the most
    eff = data.truth["truth_effects"].set_index("driver")
    assert eff.loc["price", "effect_max"] < 0


def test_sentiment_leads_demand(data):
    df = recompute_log_mean(data)
    others = [c for c in df.columns if c.startswith("part_") and c != "part_sentiment"]
    df["rest"] = (np.log(df["mean"]) - df[others].sum(axis=1)) / df["sentiment_effect"]
    sent = data.covariates["sentiment"].astype({"item_id": str})
    lag = int(data.truth["truth_series"]["sentiment_lag"].iloc[0])
    same_period = df[["item_id", "period", "rest"]].merge(sent, on=["item_id", "period"])
    lagged = df.dropna(subset=["sentiment"])
    assert np.corrcoef(lagged["rest"], lagged["sentiment"])[0, 1] > 0.999
    # the same-period value is only as related as the AR(1) process makes it (phi^lag)
    assert np.corrcoef(same_period["rest"], same_period["sentiment"])[0, 1] < 0.6
    assert lag == 2


def test_irrelevant_covariates_have_no_effect(data):
    eff = data.truth["truth_effects"].set_index("covariate")
    for col in ("noise_known", "noise_unknown", "noise_static"):
        assert not eff.loc[col, "relevant"] and eff.loc[col, "effect_max"] == 0
    for col in ("price", "promo", "holiday", "sentiment", "market_index", "temperature"):
        assert eff.loc[col, "relevant"], col
    # the forecast is a noisy copy of the true temperature that drives demand
    w = data.truth["truth_weather"]
    err = w["temperature_forecast"] - w["temperature"]
    assert 1.0 < err.std() < 2.0 and abs(err.mean()) < 0.3


def _cdf(k: np.ndarray, mean: np.ndarray, size: np.ndarray) -> np.ndarray:
    poisson = np.isinf(size)
    r = np.where(poisson, 1.0, size)
    nb = stats.nbinom.cdf(k, r, r / (r + mean))
    return np.where(poisson, stats.poisson.cdf(k, mean), nb)


def test_sampled_demand_follows_the_true_distribution(data):
    td = data.truth["truth_demand"]
    assert td["demand"].sum() / td["mean"].sum() == pytest.approx(1.0, abs=0.03)
    mean, size, demand = td["mean"].to_numpy(), td["size"].to_numpy(), td["demand"].to_numpy()
    for level in (0.1, 0.5, 0.9):
        q = td[f"q{level:g}"].to_numpy()
        # discrete: P(X <= q) >= level > P(X <= q - 1); the sample matches the exact CDF
        expected = _cdf(q, mean, size)
        assert (expected >= level - 1e-12).all() and (_cdf(q - 1, mean, size) < level).all()
        assert (demand <= q).mean() == pytest.approx(expected.mean(), abs=0.02)
    q = td[[f"q{level:g}" for level in QUANTILES]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()  # no crossing


def test_true_quantiles_match_scipy():
    rng = np.random.default_rng(0)
    mean = np.concatenate([rng.gamma(0.5, 2.0, 300), rng.gamma(2.0, 100.0, 300), [0.0, 1e-9]])
    size = np.where(rng.random(mean.size) < 0.3, np.inf, rng.uniform(0.3, 40, mean.size))
    got = true_quantiles(mean, size, QUANTILES)
    for j, level in enumerate(QUANTILES):
        r = np.where(np.isinf(size), 1.0, size)
        nb = stats.nbinom.ppf(level, r, r / (r + mean))
        want = np.where(np.isinf(size), stats.poisson.ppf(level, mean), nb)
        want = np.where(mean > 0, want, 0.0)
        np.testing.assert_array_equal(got[:, j], want, err_msg=f"level {level}")


# --------------------------------------------------------------------- attainable quantiles
@pytest.fixture(scope="module")
def world():
    from stockcast.data.synthetic.generator import world_of

    return world_of({"_target_": "stockcast.data.synthetic.generate", "n_items": 16,
                     "n_stores": 6, "n_dcs": 2, "periods": 130, "seed": 5})


def _truth_at(w, origins, horizon):
    t = np.asarray(origins)[:, None] + np.arange(1, horizon + 1)[None, :]
    mean = w.mean[:, t]
    return t, true_quantiles(mean, np.broadcast_to(w.size[:, None, None], mean.shape), QUANTILES)


def test_world_of_draws_the_world_generate_publishes(world):
    from stockcast.data.synthetic import generate

    data = generate(n_items=16, n_stores=6, n_dcs=2, periods=130, seed=5)
    published = data.truth["truth_demand"]
    assert np.allclose(published["mean"].to_numpy(), world.mean.ravel())
    assert (published["demand"].to_numpy() == world.demand.ravel()).all()
    from stockcast.data.synthetic.generator import world_of

    with pytest.raises(ValueError, match="not stockcast.data.synthetic.generate"):
        world_of({"_target_": "my.generator", "n_items": 2})
    with pytest.raises(ValueError, match="unknown generator argument"):
        world_of({"n_itemz": 2})


def test_attainable_quantiles_equal_the_truth_when_nothing_is_unknown(world):
    import dataclasses

    from stockcast.data.synthetic.truth import conditional_quantiles

    known = dataclasses.replace(world, sent_effect=0 * world.sent_effect,
                                market_effect=0 * world.market_effect,
                                temp_effect=0 * world.temp_effect)
    origins = [30, 60, 90]
    _, truth = _truth_at(known, origins, 6)
    assert np.array_equal(conditional_quantiles(known, origins, 6), truth)


def test_attainable_quantiles_are_calibrated_and_lose_to_the_truth_more_with_the_horizon(world):
    from stockcast.data.synthetic.truth import conditional_quantiles

    origins, H = list(range(20, 120, 3)), 8
    q = conditional_quantiles(world, origins, H)
    t, truth = _truth_at(world, origins, H)
    y = world.demand[:, t]
    assert (np.diff(q, axis=-1) >= 0).all()                       # no crossing
    levels = np.asarray(QUANTILES)

    def pinball(qq):
        d = y[..., None] - qq
        return np.maximum(levels * d, (levels - 1) * d).mean(axis=(0, 1, 3))

    att, tru = pinball(q), pinball(truth)
    # the truth knows the realised drivers: it is at least as good at every horizon, and
    # the gap widens once the sentiment lead (2 periods) is used up
    assert (att >= tru - 1e-9).all()
    assert att[-1] / tru[-1] > att[0] / tru[0] + 0.05
    # it is the correct conditional law: its quantiles are hit as often as the truth's
    # (integer demand: both a little above the level)
    for j in range(len(levels)):
        assert (y <= q[..., j]).mean() == pytest.approx((y <= truth[..., j]).mean(), abs=0.015)
    with pytest.raises(ValueError, match="must lie inside"):
        conditional_quantiles(world, [world.n_total - 3], 8)


def test_the_attainable_forecaster_serves_the_panel_rows_of_each_origin(world):
    from stockcast.data.synthetic.truth import conditional_quantiles
    from stockcast.forecast.truth import ConditionalTruthForecaster
    from stockcast.schema import TIME_IDX

    S, T = world.n_series, world.periods
    panel = pd.DataFrame({"item_id": np.repeat(world.item_ids[world.item_of], T),
                          "location_id": np.repeat(world.store_ids[world.store_of], T),
                          "period": np.tile(world.dates[:T], S), TIME_IDX: np.tile(np.arange(T), S),
                          "demand": world.demand[:, :T].ravel()})
    fc = ConditionalTruthForecaster(world).forecast(panel, [100, 110], 4)
    assert len(fc) == S * 2 * 4 and set(fc.horizon) == {1, 2, 3, 4}
    q = conditional_quantiles(world, [100, 110], 4)
    s = 7  # item 1, store 1
    row = fc[(fc.item_id == world.item_ids[1]) & (fc.location_id == world.store_ids[1])
             & (fc.forecast_origin == world.dates[110]) & (fc.horizon == 3)]
    assert row["period"].iloc[0] == world.dates[113]
    assert row[[f"q{lv:g}" for lv in QUANTILES]].to_numpy()[0].tolist() == q[s, 1, 2].tolist()
    stranger = panel.assign(item_id=panel["item_id"].where(panel["item_id"] != world.item_ids[0], "item_x"))
    with pytest.raises(ValueError, match="not drawn by the generator"):
        ConditionalTruthForecaster(world).forecast(stranger, [100], 4)


@pytest.mark.parametrize("kind,size", [("level", 2.0), ("elasticity", 1.8), ("sentiment", 2.5)])
def test_a_regime_change_is_unforeseeable_before_it_and_known_after(kind, size):
    from stockcast.data.synthetic.generator import world_of
    from stockcast.data.synthetic.truth import conditional_quantiles

    base = {"n_items": 8, "n_stores": 4, "n_dcs": 2, "periods": 130, "seed": 11}
    calm = world_of(base)
    broken = world_of({**base, "regime_change": {"kind": kind, "period": 100, "size": size}})
    # before the break is seen, the attainable law is the old regime's, also for periods after it
    before = 100 - 1 - (2 if kind == "sentiment" else 0)     # sentiment is seen 2 periods early
    assert np.array_equal(conditional_quantiles(broken, [before - 4, before], 8),
                          conditional_quantiles(calm, [before - 4, before], 8))
    # once seen, it is known
    after = conditional_quantiles(broken, [104], 8)
    assert not np.array_equal(after, conditional_quantiles(calm, [104], 8))
