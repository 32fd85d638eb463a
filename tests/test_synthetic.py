"""Synthetic generator: seeded, shaped as documented, and its ground truth is the truth."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.data.synthetic import (
    QUANTILES,
    SUPPLY_TABLES,
    SyntheticData,
    generate,
    true_quantiles,
    write,
)

SUPPLY_SCHEMA = {
    "locations": ["location_id", "echelon", "parent_id", "capacity"],
    "economics": [
        "item_id",
        "location_id",
        "unit_cost",
        "price",
        "holding_cost",
        "shortage_cost",
        "salvage_value",
        "on_hand",
        "in_transit",
    ],
    "suppliers": [
        "supplier_id",
        "item_id",
        "unit_cost",
        "lead_time_mean",
        "lead_time_std",
        "reliability",
        "capacity",
        "min_order_qty",
        "ships_to",
    ],
    "lanes": ["from_id", "to_id", "transfer_cost", "lead_time"],
}
KEYS = ["item_id", "location_id", "period"]


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    """The default dataset (10 items x 4 stores x 156 weeks + 8 horizon weeks)."""
    return generate()


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


# --------------------------------------------------------------------------- determinism, shapes
def test_same_seed_same_tables_other_seed_other_data():
    a = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=5)
    b = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=5)
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], obj=name)
    c = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=6)
    assert not np.array_equal(a.demand["demand"], c.demand["demand"])


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


def test_supply_tables_schema_and_network(data):
    for name in SUPPLY_TABLES:
        assert list(data.supply[name].columns) == SUPPLY_SCHEMA[name], name
    loc = data.supply["locations"]
    dcs = set(loc.loc[loc["echelon"] == "dc", "location_id"])
    stores = loc[loc["echelon"] == "store"]
    assert set(loc["echelon"]) == {"dc", "store"} and len(dcs) == 2 and len(stores) == 4
    assert loc.loc[loc["echelon"] == "dc", "parent_id"].isna().all()
    assert set(stores["parent_id"]) <= dcs
    assert (loc["capacity"] > 0).all()
    eco = data.supply["economics"]
    assert len(eco) == 10 * 6 and not eco.isna().any().any()
    assert not eco.duplicated(["item_id", "location_id"]).any()
    assert (eco["shortage_cost"] > 0).all() and (eco["holding_cost"] > 0).all()
    assert (eco["salvage_value"] < eco["unit_cost"]).all()
    sup = data.supply["suppliers"]
    assert set(sup["ships_to"]) <= dcs | {"all"}
    assert set(sup["item_id"]) == set(data.covariates["items"]["item_id"])
    assert (sup["lead_time_mean"] > 0).all() and sup["reliability"].between(0, 1).all()
    lanes = data.supply["lanes"]
    assert set(lanes["from_id"]) | set(lanes["to_id"]) <= set(loc["location_id"])
    for _, store in stores.iterrows():  # every store is supplied by its DC
        assert (
            (lanes["from_id"] == store["parent_id"]) & (lanes["to_id"] == store["location_id"])
        ).any()
    lt = data.truth["truth_lead_times"]
    assert (lt["lead_time"] > 0).all() and lt["disrupted"].any()
    assert set(lt["supplier_id"]) == set(sup["supplier_id"])


def test_supply_tables_pass_supply_validation(data):
    supply = pytest.importorskip("stockcast.data.supply")
    clean = supply.validate_supply(data.supply)
    assert len(clean.economics) == len(data.supply["economics"])
    big = generate(n_items=30, n_stores=12, n_dcs=3, periods=20, freq="D", seed=9, quantiles=None)
    supply.validate_supply(big.supply)


def test_intermittent_items_are_low_volume(data):
    ts = data.truth["truth_series"]
    slow = ts.loc[ts["intermittent"], ["item_id", "location_id"]].astype(str)
    assert len(slow)
    demand = data.demand.astype({"item_id": str, "location_id": str}).merge(slow)
    assert demand["demand"].mean() < 1.0 and (demand["demand"] == 0).mean() > 0.5
    assert set(ts.loc[ts["intermittent"], "distribution"]) <= {"poisson", "negbin"}


# --------------------------------------------------------------------------- ground truth
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


def test_write_round_trip(tmp_path):
    d = generate(n_items=2, n_stores=2, n_dcs=1, periods=12, horizon=2, seed=4)
    paths = write(d, tmp_path)
    assert (tmp_path / "manifest.json").exists() and set(paths) == {*d.tables(), "manifest"}
    for name, frame in d.tables().items():
        back = pd.read_parquet(paths[name])
        pd.testing.assert_frame_equal(back, frame, check_dtype=False, obj=name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_items": 0}, ">= 1"),
        ({"n_dcs": 5, "n_stores": 2}, "cannot exceed"),
        ({"periods": 1}, "periods"),
        ({"intermittent_share": 2.0}, "intermittent_share"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(**kwargs)


# --------------------------------------------------------------------------- scale
def test_ten_thousand_item_locations_without_quantiles():
    t0 = time.perf_counter()
    d = generate(n_items=200, n_stores=50, n_dcs=5, periods=156, quantiles=None)
    elapsed = time.perf_counter() - t0
    assert len(d.demand) == 10_000 * 156
    assert d.demand.groupby(["item_id", "location_id"], observed=True).ngroups == 10_000
    assert len(d.supply["economics"]) == 200 * 55
    assert elapsed < 60


@pytest.mark.slow
def test_ten_thousand_item_locations_with_truth_quantiles(tmp_path):
    d = generate(n_items=200, n_stores=50, n_dcs=5, periods=156)
    assert len(d.truth["truth_demand"]) == 10_000 * 164
    assert not d.truth["truth_demand"][[f"q{q:g}" for q in QUANTILES]].isna().any().any()
    write(d, tmp_path)
    assert (tmp_path / "truth_demand.parquet").stat().st_size > 0
