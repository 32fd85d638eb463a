"""Bad input is rejected with every issue named (table, column, rule, rows); good input loads.

Single-table cases use three Stallion series; multi-table cases use a tiny synthetic
network (2 items x 2 stores x 20 weeks) with the ``conf/data/synthetic.yaml`` mapping, its
tables handed to :func:`to_canonical` in memory.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel, to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.data.synthetic import generate
from stockcast.errors import DataValidationError, Issue

CONF = PROJECT_ROOT / "conf" / "data"


def load_spec(name: str, **changes) -> DatasetSpec:
    spec = instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
    return dataclasses.replace(spec, **changes) if changes else spec


def with_table(spec: DatasetSpec, name: str, **options) -> DatasetSpec:
    tables = copy.deepcopy(spec.tables)
    tables[name].update(options)
    return dataclasses.replace(spec, tables=tables)


def issue(err: DataValidationError, table: str, rule: str, column: str | None = None) -> Issue:
    """The one issue of ``err`` on ``table`` with ``rule`` (and ``column``)."""
    found = [
        i
        for i in err.issues
        if i.table == table and i.rule == rule and (column is None or i.column == column)
    ]
    assert len(found) == 1, f"expected one {table}/{rule}/{column} issue in:\n{err}"
    return found[0]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def stallion_spec() -> DatasetSpec:
    return load_spec("stallion")


@pytest.fixture(scope="module")
def stallion_raw() -> pd.DataFrame:
    return pd.read_parquet(PROJECT_ROOT / "data" / "stallion.parquet")


@pytest.fixture(scope="module")
def small(stallion_raw) -> pd.DataFrame:
    """Three Stallion series (180 rows) in canonical order (sku, agency, date)."""
    keys = stallion_raw[["agency", "sku"]].drop_duplicates().head(3)
    out = stallion_raw.merge(keys).sort_values(["sku", "agency", "date"])
    return out.reset_index(drop=True)


@pytest.fixture()
def raw(small) -> pd.DataFrame:
    return small.copy()


@pytest.fixture(scope="module")
def syn_spec() -> DatasetSpec:
    return load_spec("synthetic")


@pytest.fixture(scope="module")
def syn_tables() -> dict[str, pd.DataFrame]:
    data = generate(n_items=2, n_stores=2, n_dcs=1, periods=20, horizon=2, seed=3, quantiles=None)
    return {"demand": data.demand, **data.covariates}


@pytest.fixture()
def tabs(syn_tables) -> dict[str, pd.DataFrame]:
    return {k: v.copy() for k, v in syn_tables.items()}


def canon(tables: dict[str, pd.DataFrame], spec: DatasetSpec, **kwargs) -> pd.DataFrame:
    others = {k: v for k, v in tables.items() if k != "demand"}
    return to_canonical(tables["demand"], spec, tables=others, **kwargs)


# --------------------------------------------------------------------------- happy paths
def test_stallion_loads(stallion_spec):
    panel = load_panel(stallion_spec)
    assert len(panel) == 21000
    assert panel.groupby(["item_id", "location_id"]).ngroups == 350
    assert panel["time_idx"].min() == 0 and panel["time_idx"].max() == 59
    assert list(panel.columns[:4]) == ["item_id", "location_id", "period", "demand"]
    assert panel["period"].dtype == "datetime64[ns]"
    assert {"month", *stallion_spec.covariates} <= set(panel.columns)


def test_small_stallion_round_trip(raw, stallion_spec):
    panel = to_canonical(raw, stallion_spec)
    assert len(panel) == 180 and not panel[stallion_spec.covariates].isna().any().any()


def test_gaps_zero_fills_missing_periods(raw, stallion_spec):
    dropped = raw.drop(index=[10, 11, 70]).reset_index(drop=True)
    panel = to_canonical(dropped, dataclasses.replace(stallion_spec, gaps="zero"))
    assert len(panel) == 180
    filled = panel.loc[[10, 11, 70]]
    assert (filled["demand"] == 0).all()
    # covariates of filled periods are carried forward from the previous period
    assert filled["price_regular"].tolist() == panel.loc[[9, 9, 69], "price_regular"].tolist()
    assert panel["time_idx"].tolist() == list(range(60)) * 3


def test_gaps_ffill_carries_demand(raw, stallion_spec):
    dropped = raw.drop(index=[10]).reset_index(drop=True)
    panel = to_canonical(dropped, dataclasses.replace(stallion_spec, gaps="ffill"))
    assert panel.loc[10, "demand"] == panel.loc[9, "demand"]


def test_missing_demand_follows_gaps_policy(raw, stallion_spec):
    raw.loc[20, "volume"] = np.nan
    panel = to_canonical(raw, dataclasses.replace(stallion_spec, gaps="zero"))
    assert panel.loc[20, "demand"] == 0


def test_nan_policy_ffill_and_others(raw, stallion_spec):
    raw.loc[[5, 6], "price_actual"] = np.nan
    raw.loc[0, "soda_volume"] = np.nan  # first period: ffill then backfill
    raw.loc[7, "industry_volume"] = np.nan
    raw.loc[8, "avg_max_temp"] = np.nan
    spec = dataclasses.replace(
        stallion_spec,
        nan_policy={
            "default": "reject",
            "price_actual": "ffill",
            "soda_volume": "ffill",
            "industry_volume": "zero",
            "avg_max_temp": "mean",
        },
    )
    panel = to_canonical(raw, spec)
    assert panel.loc[[5, 6], "price_actual"].tolist() == [raw.loc[4, "price_actual"]] * 2
    assert panel.loc[0, "soda_volume"] == raw.loc[1, "soda_volume"]
    assert panel.loc[7, "industry_volume"] == 0
    assert panel.loc[8, "avg_max_temp"] == pytest.approx(raw.loc[:59, "avg_max_temp"].mean())


def test_multi_table_joins_all_covariates(tabs, syn_spec):
    panel = canon(tabs, syn_spec)
    assert len(panel) == 80 and panel["time_idx"].max() == 19
    assert not panel[syn_spec.covariates].isna().any().any()
    # the period-only market index is the same for every series in a period
    assert panel.groupby("period")["market_index"].nunique().max() == 1
    # static item attributes are constant per series
    assert panel.groupby(["item_id", "location_id"])["category"].nunique().max() == 1
    joined = tabs["prices"].merge(tabs["demand"], on=["item_id", "location_id", "period"])
    assert np.allclose(panel["price"], joined["price"])


def test_multi_table_gap_rows_take_covariates_from_tables(tabs, syn_spec):
    tabs["demand"] = tabs["demand"].drop(index=[5]).reset_index(drop=True)
    panel = canon(tabs, dataclasses.replace(syn_spec, gaps="zero"))
    assert len(panel) == 80 and panel.loc[5, "demand"] == 0
    price = tabs["prices"].query("item_id == 'item_000' and location_id == 'store_000'")
    assert panel.loc[5, "price"] == price["price"].iloc[5]
    assert panel.loc[5, "market_index"] == tabs["market"]["market_index"].iloc[5]


def test_unmatched_keep_and_extra_keys_ignore(tabs, syn_spec):
    tabs["sentiment"] = tabs["sentiment"].drop(index=[10])
    extra = (
        tabs["prices"]
        .iloc[[0]]
        .assign(item_id=pd.Categorical(["item_999"]), location_id=pd.Categorical(["store_000"]))
    )
    tabs["prices"] = pd.concat(
        [tabs["prices"].astype({"item_id": str}), extra.astype({"item_id": str})]
    )
    spec = with_table(syn_spec, "sentiment", unmatched="keep")
    spec = with_table(spec, "prices", extra_keys="ignore")
    spec = dataclasses.replace(
        spec, nan_policy={"default": "reject", "sentiment": "ffill", "noise_unknown": "ffill"}
    )
    panel = canon(tabs, spec)
    assert not panel["sentiment"].isna().any()


# --------------------------------------------------------------------------- demand table
def test_negative_demand(raw, stallion_spec):
    raw.loc[3, "volume"] = -1.0
    with pytest.raises(DataValidationError, match=r"demand\.volume: non_negative") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "non_negative", "volume").rows == [3]


def test_infinite_demand(raw, stallion_spec):
    raw.loc[5, "volume"] = np.inf
    with pytest.raises(DataValidationError, match=r"demand\.volume: finite") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "finite", "volume").rows == [5]


def test_non_numeric_demand(raw, stallion_spec):
    raw["volume"] = raw["volume"].astype(object)
    raw.loc[[2, 4], "volume"] = "n/a"
    with pytest.raises(DataValidationError, match=r"demand\.volume: numeric") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "numeric", "volume").rows == [2, 4]


def test_duplicate_periods(raw, stallion_spec):
    raw = pd.concat([raw, raw.iloc[[7]]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"unique_key: 2 rows repeat") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "unique_key", "sku, agency, date").rows == [7, 180]


def test_unparseable_dates(raw, stallion_spec):
    raw["date"] = raw["date"].dt.strftime("%d/%m/%Y")
    raw.loc[12, "date"] = "31/02/2013"
    raw.loc[13, "date"] = "soon"
    spec = dataclasses.replace(
        stallion_spec, source={**stallion_spec.source, "date_format": "%d/%m/%Y"}
    )
    with pytest.raises(DataValidationError, match=r"demand\.date: date_format") as exc:
        to_canonical(raw, spec)
    got = issue(exc.value, "demand", "date_format", "date")
    assert got.rows == [12, 13] and "31/02/2013" in got.message


def test_missing_period(raw, stallion_spec):
    raw.loc[4, "date"] = pd.NaT
    with pytest.raises(DataValidationError, match=r"demand\.date: no_missing_values") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "no_missing_values", "date").rows == [4]


def test_period_off_grid(raw, stallion_spec):
    raw.loc[30, "date"] = pd.Timestamp("2015-07-15")
    with pytest.raises(DataValidationError, match=r"demand\.date: period_on_grid") as exc:
        to_canonical(raw, stallion_spec)
    got = issue(exc.value, "demand", "period_on_grid", "date")
    assert got.rows == [30] and "2015-07-15" in got.message


def test_gaps_rejected(raw, stallion_spec):
    raw = raw.drop(index=[10, 11]).reset_index(drop=True)
    with pytest.raises(DataValidationError, match=r"demand\.date: no_gaps: 1 series miss 2") as exc:
        to_canonical(raw, stallion_spec)
    got = issue(exc.value, "demand", "no_gaps", "date")
    assert got.rows == [10]  # first row after the gap (the old row 12)
    assert "2013-11-01..2013-12-01" in got.message


def test_missing_demand_rejected(raw, stallion_spec):
    raw.loc[[20, 21], "volume"] = np.nan
    with pytest.raises(DataValidationError, match=r"demand\.volume: no_missing_values") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "no_missing_values", "volume").rows == [20, 21]


def test_missing_key(raw, stallion_spec):
    raw["sku"] = raw["sku"].astype(object)
    raw.loc[9, "sku"] = None
    with pytest.raises(DataValidationError, match=r"demand\.sku: no_missing_values") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "no_missing_values", "sku").rows == [9]


def test_covariate_nan_rejected_by_policy(raw, stallion_spec):
    raw.loc[[1, 61], "price_actual"] = np.nan
    with pytest.raises(DataValidationError, match=r"price_actual: no_missing_values") as exc:
        to_canonical(raw, stallion_spec)
    got = issue(exc.value, "demand", "no_missing_values", "price_actual")
    assert got.rows == [1, 61] and "nan_policy" in got.message


def test_covariate_not_numeric(raw, stallion_spec):
    raw["price_actual"] = raw["price_actual"].astype(object)
    raw.loc[50, "price_actual"] = "1,99"
    with pytest.raises(DataValidationError, match=r"demand\.price_actual: numeric") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "numeric", "price_actual").rows == [50]


def test_covariate_infinite(raw, stallion_spec):
    raw.loc[[3, 100], "soda_volume"] = [np.inf, -np.inf]
    with pytest.raises(DataValidationError, match=r"demand\.soda_volume: finite") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "finite", "soda_volume").rows == [3, 100]


def test_static_column_varies(raw, stallion_spec):
    raw.loc[65, "avg_population_2017"] += 1
    with pytest.raises(DataValidationError, match=r"avg_population_2017: static_constant") as exc:
        to_canonical(raw, stallion_spec)
    assert issue(exc.value, "demand", "static_constant").rows == list(range(60, 120))


def test_missing_column(raw, stallion_spec):
    with pytest.raises(DataValidationError, match=r"demand\.soda_volume: missing_column") as exc:
        to_canonical(raw.drop(columns=["soda_volume", "christmas"]), stallion_spec)
    assert {i.column for i in exc.value.issues} == {"soda_volume", "christmas"}


def test_unknown_category_in_demand(raw, stallion_spec):
    agencies = sorted(raw["agency"].astype(str).unique())
    spec = dataclasses.replace(stallion_spec, categories={"location_id": agencies[:1]})
    with pytest.raises(DataValidationError, match=r"demand\.agency: unknown_category") as exc:
        to_canonical(raw, spec)
    got = issue(exc.value, "demand", "unknown_category", "agency")
    assert got.rows == list(range(60, 180)) and agencies[1] in got.message


def test_all_issues_collected_not_first_only(raw, stallion_spec):
    raw.loc[3, "volume"] = -5.0
    raw.loc[7, "soda_volume"] = np.inf
    raw.loc[65, "avg_population_2017"] += 1
    raw.loc[30, "date"] = pd.Timestamp("2015-07-15")
    raw.loc[90, "price_actual"] = np.nan
    with pytest.raises(DataValidationError) as exc:
        to_canonical(raw, stallion_spec)
    rules = {(i.column, i.rule) for i in exc.value.issues}
    assert {
        ("volume", "non_negative"),
        ("soda_volume", "finite"),
        ("avg_population_2017", "static_constant"),
        ("date", "period_on_grid"),
        ("price_actual", "no_missing_values"),
    } <= rules
    assert "5 data validation issue(s)" in str(exc.value)


# --------------------------------------------------------------------------- covariate tables
def test_unknown_item_in_price_table(tabs, syn_spec):
    extra = tabs["prices"].iloc[[0]].astype({"item_id": str}).assign(item_id="item_999")
    tabs["prices"] = pd.concat([tabs["prices"].astype({"item_id": str}), extra], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"prices\.item_id: unknown_category") as exc:
        canon(tabs, syn_spec)
    got = issue(exc.value, "prices", "unknown_category", "item_id")
    assert got.rows == [len(tabs["prices"]) - 1] and "item_999" in got.message


def test_covariate_table_does_not_cover_dates(tabs, syn_spec):
    weather = tabs["weather"]
    cutoff = pd.Timestamp(sorted(weather["period"].unique())[16])
    tabs["weather"] = weather[weather["period"] < cutoff]
    with pytest.raises(DataValidationError, match=r"weather\.period: date_coverage") as exc:
        canon(tabs, syn_spec)
    got = issue(exc.value, "weather", "date_coverage", "period")
    demand = tabs["demand"]
    assert got.rows == demand.index[demand["period"] >= cutoff].tolist()
    assert len(got.rows) == 4 * 4


def test_join_drops_rows(tabs, syn_spec):
    tabs["prices"] = tabs["prices"].drop(index=[5, 27])  # two series-weeks without a price
    with pytest.raises(DataValidationError, match=r"prices\..*: join_drops_rows") as exc:
        canon(tabs, syn_spec)
    got = issue(exc.value, "prices", "join_drops_rows")
    # prices has 22 periods per series (20 history + 2 horizon): row 27 is series 1, week 5
    assert got.rows == [5, 25]
    assert got.column == "item_id, location_id, period"


def test_duplicate_keys_would_duplicate_rows(tabs, syn_spec):
    tabs["prices"] = pd.concat([tabs["prices"], tabs["prices"].iloc[[3]]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"prices\..*: unique_key") as exc:
        canon(tabs, syn_spec)
    got = issue(exc.value, "prices", "unique_key")
    assert got.rows == [3, len(tabs["prices"]) - 1] and "duplicate 1 demand row" in got.message


def test_covariate_table_bad_dates(tabs, syn_spec):
    weather = tabs["weather"].copy()
    weather["period"] = weather["period"].dt.strftime("%d/%m/%Y")
    weather.loc[6, "period"] = "2021-02-15"
    tabs["weather"] = weather
    spec = with_table(syn_spec, "weather", date_format="%d/%m/%Y")
    with pytest.raises(DataValidationError, match=r"weather\.period: date_format") as exc:
        canon(tabs, spec)
    assert issue(exc.value, "weather", "date_format", "period").rows == [6]


def test_covariate_table_period_off_grid(tabs, syn_spec):
    tabs["market"].loc[4, "period"] += pd.Timedelta(days=2)
    with pytest.raises(DataValidationError, match=r"market\.period: period_on_grid") as exc:
        canon(tabs, syn_spec)
    assert issue(exc.value, "market", "period_on_grid", "period").rows == [4]
    # ...and the week it should have covered has no market index
    assert issue(exc.value, "market", "join_drops_rows").rows == [4, 24, 44, 64]


def test_covariate_table_infinite_value(tabs, syn_spec):
    tabs["sentiment"].loc[8, "sentiment"] = np.inf
    with pytest.raises(DataValidationError, match=r"sentiment\.sentiment: finite") as exc:
        canon(tabs, syn_spec)
    assert issue(exc.value, "sentiment", "finite", "sentiment").rows == [8]


def test_covariate_table_not_numeric(tabs, syn_spec):
    prices = tabs["prices"].astype({"price": object})
    prices.loc[[2, 3], "price"] = "free"
    tabs["prices"] = prices
    with pytest.raises(DataValidationError, match=r"prices\.price: numeric") as exc:
        canon(tabs, syn_spec)
    assert issue(exc.value, "prices", "numeric", "price").rows == [2, 3]


def test_covariate_table_nan_rejected(tabs, syn_spec):
    tabs["sentiment"].loc[2, "sentiment"] = np.nan  # item_000, 3rd sentiment period = week 1
    with pytest.raises(
        DataValidationError, match=r"sentiment\.sentiment: no_missing_values"
    ) as exc:
        canon(tabs, syn_spec)
    # the two stores' demand rows of item_000 in week 1
    assert issue(exc.value, "sentiment", "no_missing_values", "sentiment").rows == [0, 20]


def test_static_table_varies(tabs, syn_spec):
    items = tabs["items"]
    tabs["items"] = pd.concat([items, items.iloc[[1]].assign(category="toys")], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"items\.item_id: unique_key") as exc:
        canon(tabs, syn_spec)
    assert issue(exc.value, "items", "unique_key", "item_id").rows == [1, 2]


def test_static_covariate_from_time_varying_table_varies(tabs, syn_spec):
    spec = with_table(syn_spec, "prices", covariates=["price", "regular_price", "discount", "promo"])
    spec = with_table(spec, "sentiment", covariates=["sentiment", "noise_unknown", "noise_static"])
    spec = with_table(spec, "items", covariates=["category", "pack_size"])
    tabs["sentiment"]["noise_static"] = np.arange(len(tabs["sentiment"]), dtype=float)
    tabs["prices"]["noise_known"] = 0.0
    spec = dataclasses.replace(
        spec, known_reals=[c for c in spec.known_reals if c != "noise_known"]
    )
    with pytest.raises(
        DataValidationError, match=r"sentiment\.noise_static: static_constant"
    ) as exc:
        canon(tabs, spec)
    assert issue(exc.value, "sentiment", "static_constant").rows == list(range(80))


def test_covariate_table_missing_columns(tabs, syn_spec):
    tabs["items"] = tabs["items"].drop(columns=["pack_size"])
    tabs["weather"] = tabs["weather"].rename(columns={"location_id": "store"})
    with pytest.raises(DataValidationError, match=r"items\.pack_size: missing_column") as exc:
        canon(tabs, syn_spec)
    issue(exc.value, "items", "missing_column", "pack_size")
    issue(exc.value, "weather", "missing_column", "location_id")
    # the covariates of the failed tables are not reported again as missing from demand
    assert not [i for i in exc.value.issues if i.table == "demand"]


def test_covariate_supplied_twice(tabs, syn_spec):
    tabs["demand"] = tabs["demand"].assign(price=1.0)
    with pytest.raises(DataValidationError, match=r"prices\.price: ambiguous_column") as exc:
        canon(tabs, syn_spec)
    assert "demand" in issue(exc.value, "prices", "ambiguous_column").message


def test_missing_covariate_table(tabs, syn_spec):
    del tabs["events"]
    with pytest.raises(DataValidationError, match=r"events: missing_table"):
        canon(tabs, syn_spec)


def test_categorical_outside_allowed_values(tabs, syn_spec):
    spec = dataclasses.replace(syn_spec, categories={"region": ["south"], "event": ["none"]})
    with pytest.raises(DataValidationError, match=r"stores\.region: unknown_category") as exc:
        canon(tabs, spec)
    issue(exc.value, "stores", "unknown_category", "region")
    events = issue(exc.value, "events", "unknown_category", "event")
    assert events.rows == tabs["events"].index[tabs["events"]["event"] != "none"].tolist()


def test_issues_across_tables_collected_together(tabs, syn_spec):
    tabs["demand"].loc[3, "demand"] = -2
    tabs["prices"] = tabs["prices"].drop(index=[7])
    tabs["sentiment"].loc[8, "sentiment"] = np.inf
    tabs["weather"].loc[1, "temperature_forecast"] = np.nan
    with pytest.raises(DataValidationError) as exc:
        canon(tabs, syn_spec)
    found = {(i.table, i.rule) for i in exc.value.issues}
    assert {
        ("demand", "non_negative"),
        ("prices", "join_drops_rows"),
        ("sentiment", "finite"),
        ("weather", "no_missing_values"),
    } <= found


def test_prediction_input_needs_no_unknown_covariates_for_future_rows(tabs, syn_spec):
    demand = tabs["demand"]
    last = demand["period"].max()
    future = (
        tabs["prices"][tabs["prices"]["period"] > last][["item_id", "location_id", "period"]]
        .assign(demand=np.nan)
        .astype({"item_id": str, "location_id": str})
    )
    tabs["demand"] = pd.concat([demand.astype({"item_id": str, "location_id": str}), future])
    spec = dataclasses.replace(
        syn_spec,
        nan_policy={
            "default": "reject",
            "sentiment": "ffill",
            "noise_unknown": "ffill",
            "market_index": "ffill",
        },
    )
    panel = canon(tabs, spec, allow_future=True)
    assert len(panel) == 88 and panel["demand"].isna().sum() == 8
    assert not panel["price"].isna().any()


# --------------------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    ("tables", "match"),
    [
        ({"x": {"path": "x.csv", "keys": ["sku"]}}, "unknown join key"),
        ({"x": {"path": "x.csv"}}, "keys"),
        ({"x": {"keys": ["period"]}}, "needs a 'path'"),
        ({"x": {"path": "x.csv", "keys": ["period"], "covariates": ["nope"]}}, "have no role"),
        ({"x": {"path": "x.csv", "keys": ["period"], "unmatched": "drop"}}, "unmatched"),
        ({"demand": {"path": "x.csv", "keys": ["period"]}}, "reserved"),
    ],
)
def test_bad_table_config(stallion_spec, tables, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**stallion_spec.to_dict(), "tables": tables})


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({"format": "csv"}, "source.path is required"),
        ({"path": "d.parquet", "generator": {"n_items": 3}}, "needs a _target_"),
    ],
)
def test_bad_source_config(stallion_spec, source, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**stallion_spec.to_dict(), "source": source})
