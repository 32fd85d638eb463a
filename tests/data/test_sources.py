"""stockcast.data.sources: covariate tables validated and joined onto the demand rows.

A tiny synthetic network (2 items x 2 stores x 20 weeks, ``synthetic_tables``) with the
``conf/data/synthetic.yaml`` mapping, its tables handed to :func:`to_canonical` in memory.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from stockcast.data.panel import to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.errors import DataValidationError, Issue


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


def only_issue(err: DataValidationError, rule: str) -> Issue:
    found = [i for i in err.issues if i.rule == rule]
    assert len(found) == 1, str(err)
    return found[0]


@pytest.fixture()
def tabs(synthetic_tables) -> dict[str, pd.DataFrame]:
    return {k: v.copy() for k, v in synthetic_tables.items()}


def canon(tables: dict[str, pd.DataFrame], spec: DatasetSpec, **kwargs) -> pd.DataFrame:
    others = {k: v for k, v in tables.items() if k != "demand"}
    return to_canonical(tables["demand"], spec, tables=others, **kwargs)


# --------------------------------------------------------------------------- joins
def test_multi_table_joins_all_covariates(tabs, synthetic_spec):
    panel = canon(tabs, synthetic_spec)
    assert len(panel) == 80 and panel["time_idx"].max() == 19
    assert not panel[synthetic_spec.covariates].isna().any().any()
    # the period-only market index is the same for every series in a period
    assert panel.groupby("period")["market_index"].nunique().max() == 1
    # static item attributes are constant per series
    assert panel.groupby(["item_id", "location_id"])["category"].nunique().max() == 1
    joined = tabs["prices"].merge(tabs["demand"], on=["item_id", "location_id", "period"])
    assert np.allclose(panel["price"], joined["price"])


def test_multi_table_gap_rows_take_covariates_from_tables(tabs, synthetic_spec):
    tabs["demand"] = tabs["demand"].drop(index=[5]).reset_index(drop=True)
    panel = canon(tabs, dataclasses.replace(synthetic_spec, gaps="zero"))
    assert len(panel) == 80 and panel.loc[5, "demand"] == 0
    price = tabs["prices"].query("item_id == 'item_000' and location_id == 'store_000'")
    assert panel.loc[5, "price"] == price["price"].iloc[5]
    assert panel.loc[5, "market_index"] == tabs["market"]["market_index"].iloc[5]


def test_unmatched_keep_and_extra_keys_ignore(tabs, synthetic_spec):
    tabs["sentiment"] = tabs["sentiment"].drop(index=[10])
    extra = (
        tabs["prices"]
        .iloc[[0]]
        .assign(item_id=pd.Categorical(["item_999"]), location_id=pd.Categorical(["store_000"]))
    )
    tabs["prices"] = pd.concat(
        [tabs["prices"].astype({"item_id": str}), extra.astype({"item_id": str})]
    )
    spec = with_table(synthetic_spec, "sentiment", unmatched="keep")
    spec = with_table(spec, "prices", extra_keys="ignore")
    spec = dataclasses.replace(
        spec, nan_policy={"default": "reject", "sentiment": "ffill", "noise_unknown": "ffill"}
    )
    panel = canon(tabs, spec)
    assert not panel["sentiment"].isna().any()


# --------------------------------------------------------------------------- covariate tables
def test_unknown_item_in_price_table(tabs, synthetic_spec):
    extra = tabs["prices"].iloc[[0]].astype({"item_id": str}).assign(item_id="item_999")
    tabs["prices"] = pd.concat([tabs["prices"].astype({"item_id": str}), extra], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"prices\.item_id: unknown_category") as exc:
        canon(tabs, synthetic_spec)
    got = issue(exc.value, "prices", "unknown_category", "item_id")
    assert got.rows == [len(tabs["prices"]) - 1] and "item_999" in got.message


def test_covariate_table_does_not_cover_dates(tabs, synthetic_spec):
    weather = tabs["weather"]
    cutoff = pd.Timestamp(sorted(weather["period"].unique())[16])
    tabs["weather"] = weather[weather["period"] < cutoff]
    with pytest.raises(DataValidationError, match=r"weather\.period: date_coverage") as exc:
        canon(tabs, synthetic_spec)
    got = issue(exc.value, "weather", "date_coverage", "period")
    demand = tabs["demand"]
    assert got.rows == demand.index[demand["period"] >= cutoff].tolist()
    assert len(got.rows) == 4 * 4


def test_join_drops_rows(tabs, synthetic_spec):
    tabs["prices"] = tabs["prices"].drop(index=[5, 27])  # two series-weeks without a price
    with pytest.raises(DataValidationError, match=r"prices\..*: join_drops_rows") as exc:
        canon(tabs, synthetic_spec)
    got = issue(exc.value, "prices", "join_drops_rows")
    # prices has 22 periods per series (20 history + 2 horizon): row 27 is series 1, week 5
    assert got.rows == [5, 25]
    assert got.column == "item_id, location_id, period"


def test_duplicate_keys_would_duplicate_rows(tabs, synthetic_spec):
    tabs["prices"] = pd.concat([tabs["prices"], tabs["prices"].iloc[[3]]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"prices\..*: unique_key") as exc:
        canon(tabs, synthetic_spec)
    got = issue(exc.value, "prices", "unique_key")
    assert got.rows == [3, len(tabs["prices"]) - 1] and "duplicate 1 demand row" in got.message


def test_covariate_table_bad_dates(tabs, synthetic_spec):
    weather = tabs["weather"].copy()
    weather["period"] = weather["period"].dt.strftime("%d/%m/%Y")
    weather.loc[6, "period"] = "2021-02-15"
    tabs["weather"] = weather
    spec = with_table(synthetic_spec, "weather", date_format="%d/%m/%Y")
    with pytest.raises(DataValidationError, match=r"weather\.period: date_format") as exc:
        canon(tabs, spec)
    assert issue(exc.value, "weather", "date_format", "period").rows == [6]


def test_covariate_table_period_off_grid(tabs, synthetic_spec):
    tabs["market"].loc[4, "period"] += pd.Timedelta(days=2)
    with pytest.raises(DataValidationError, match=r"market\.period: period_on_grid") as exc:
        canon(tabs, synthetic_spec)
    assert issue(exc.value, "market", "period_on_grid", "period").rows == [4]
    # ...and the week it should have covered has no market index
    assert issue(exc.value, "market", "join_drops_rows").rows == [4, 24, 44, 64]


def test_covariate_table_infinite_value(tabs, synthetic_spec):
    tabs["sentiment"].loc[8, "sentiment"] = np.inf
    with pytest.raises(DataValidationError, match=r"sentiment\.sentiment: finite") as exc:
        canon(tabs, synthetic_spec)
    assert issue(exc.value, "sentiment", "finite", "sentiment").rows == [8]


def test_covariate_table_not_numeric(tabs, synthetic_spec):
    prices = tabs["prices"].astype({"price": object})
    prices.loc[[2, 3], "price"] = "free"
    tabs["prices"] = prices
    with pytest.raises(DataValidationError, match=r"prices\.price: numeric") as exc:
        canon(tabs, synthetic_spec)
    assert issue(exc.value, "prices", "numeric", "price").rows == [2, 3]


def test_covariate_table_nan_rejected(tabs, synthetic_spec):
    tabs["sentiment"].loc[2, "sentiment"] = np.nan  # item_000, 3rd sentiment period = week 1
    with pytest.raises(
        DataValidationError, match=r"sentiment\.sentiment: no_missing_values"
    ) as exc:
        canon(tabs, synthetic_spec)
    # the two stores' demand rows of item_000 in week 1
    assert issue(exc.value, "sentiment", "no_missing_values", "sentiment").rows == [0, 20]


def test_static_table_varies(tabs, synthetic_spec):
    items = tabs["items"]
    tabs["items"] = pd.concat([items, items.iloc[[1]].assign(category="toys")], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"items\.item_id: unique_key") as exc:
        canon(tabs, synthetic_spec)
    assert issue(exc.value, "items", "unique_key", "item_id").rows == [1, 2]


def test_static_covariate_from_time_varying_table_varies(tabs, synthetic_spec):
    spec = with_table(synthetic_spec, "prices", covariates=["price", "regular_price", "discount", "promo"])
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


def test_covariate_table_missing_columns(tabs, synthetic_spec):
    tabs["items"] = tabs["items"].drop(columns=["pack_size"])
    tabs["weather"] = tabs["weather"].rename(columns={"location_id": "store"})
    with pytest.raises(DataValidationError, match=r"items\.pack_size: missing_column") as exc:
        canon(tabs, synthetic_spec)
    issue(exc.value, "items", "missing_column", "pack_size")
    issue(exc.value, "weather", "missing_column", "location_id")
    # the covariates of the failed tables are not reported again as missing from demand
    assert not [i for i in exc.value.issues if i.table == "demand"]


def test_covariate_supplied_twice(tabs, synthetic_spec):
    tabs["demand"] = tabs["demand"].assign(price=1.0)
    with pytest.raises(DataValidationError, match=r"prices\.price: ambiguous_column") as exc:
        canon(tabs, synthetic_spec)
    assert "demand" in issue(exc.value, "prices", "ambiguous_column").message


def test_missing_covariate_table(tabs, synthetic_spec):
    del tabs["events"]
    with pytest.raises(DataValidationError, match=r"events: missing_table"):
        canon(tabs, synthetic_spec)


def test_categorical_outside_allowed_values(tabs, synthetic_spec):
    spec = dataclasses.replace(synthetic_spec, categories={"region": ["south"], "event": ["none"]})
    with pytest.raises(DataValidationError, match=r"stores\.region: unknown_category") as exc:
        canon(tabs, spec)
    issue(exc.value, "stores", "unknown_category", "region")
    events = issue(exc.value, "events", "unknown_category", "event")
    assert events.rows == tabs["events"].index[tabs["events"]["event"] != "none"].tolist()


def test_issues_across_tables_collected_together(tabs, synthetic_spec):
    tabs["demand"].loc[3, "demand"] = -2
    tabs["prices"] = tabs["prices"].drop(index=[7])
    tabs["sentiment"].loc[8, "sentiment"] = np.inf
    tabs["weather"].loc[1, "temperature_forecast"] = np.nan
    with pytest.raises(DataValidationError) as exc:
        canon(tabs, synthetic_spec)
    found = {(i.table, i.rule) for i in exc.value.issues}
    assert {
        ("demand", "non_negative"),
        ("prices", "join_drops_rows"),
        ("sentiment", "finite"),
        ("weather", "no_missing_values"),
    } <= found


def test_prediction_input_needs_no_unknown_covariates_for_future_rows(tabs, synthetic_spec):
    demand = tabs["demand"]
    last = demand["period"].max()
    future = (
        tabs["prices"][tabs["prices"]["period"] > last][["item_id", "location_id", "period"]]
        .assign(demand=np.nan)
        .astype({"item_id": str, "location_id": str})
    )
    tabs["demand"] = pd.concat([demand.astype({"item_id": str, "location_id": str}), future])
    spec = dataclasses.replace(
        synthetic_spec,
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


def test_negative_price_in_a_covariate_table_names_that_table(tabs, synthetic_spec):
    tabs["prices"].loc[[2, 40], "price"] = -0.5
    with pytest.raises(DataValidationError) as exc:
        canon(tabs, synthetic_spec)
    issue = only_issue(exc.value, "non_negative")
    assert (issue.table, issue.column, issue.rows) == ("prices", "price", [2, 40])
