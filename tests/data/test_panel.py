"""stockcast.data.panel: raw table -> validated canonical panel; every issue named.

Single-table cases use three Stallion series (``stallion_three``, tests/data/conftest.py);
implausible values, short series and empty tables are refused by name.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from stockcast.data.panel import load_panel, short_series, to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.data.synthetic import generate
from stockcast.errors import DataValidationError, Issue


def issue(err: DataValidationError, table: str, rule: str, column: str | None = None) -> Issue:
    """The one issue of ``err`` on ``table`` with ``rule`` (and ``column``)."""
    found = [
        i
        for i in err.issues
        if i.table == table and i.rule == rule and (column is None or i.column == column)
    ]
    assert len(found) == 1, f"expected one {table}/{rule}/{column} issue in:\n{err}"
    return found[0]


def only_issue(err: pytest.ExceptionInfo, rule: str):
    found = [i for i in err.value.issues if i.rule == rule]
    assert len(found) == 1, str(err.value)
    return found[0]


@pytest.fixture()
def raw(stallion_three) -> pd.DataFrame:
    return stallion_three.copy()


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


# --------------------------------------------------------------------------- plausibility
def test_demand_spike_is_flagged_with_table_column_rows(stallion_spec, stallion_three):
    raw = stallion_three.copy()
    raw.loc[[7, 130], "volume"] = 1e300
    with pytest.raises(DataValidationError) as err:
        to_canonical(raw, stallion_spec)
    issue = only_issue(err, "plausible_spike")
    assert (issue.table, issue.column, issue.rows) == ("demand", "volume", [7, 130])
    assert "2 value(s) in 2 series above 100 x" in issue.message
    assert "data.plausibility.demand.spike" in issue.message


def test_spike_rule_is_configurable_and_can_be_off(stallion_spec, stallion_three):
    raw = stallion_three.copy()
    top = raw.loc[raw["sku"] == raw.loc[0, "sku"], "volume"].quantile(0.9)
    raw.loc[3, "volume"] = 50 * top  # a big peak, still inside the default k=100
    assert len(to_canonical(raw, stallion_spec)) == 180
    strict = dataclasses.replace(stallion_spec, plausibility={"demand": {"spike": 40}})
    with pytest.raises(DataValidationError, match="above 40 x") as err:
        to_canonical(raw, strict)
    assert only_issue(err, "plausible_spike").rows == [3]
    raw.loc[3, "volume"] = 1e300
    for off in ({"demand": "off"}, {"demand": {"spike": False}}, {"demand": None}):
        assert len(to_canonical(raw, dataclasses.replace(stallion_spec, plausibility=off))) == 180


def test_intermittent_series_are_not_spikes():
    """Mostly-zero series: the floor of 1 keeps ordinary sales from counting as spikes."""
    data = generate(n_items=6, n_stores=2, n_dcs=1, periods=60, seed=11, intermittent_share=1.0)
    spec = DatasetSpec(
        name="intermittent",
        source={"path": "unused.parquet"},
        freq="W-MON",
        columns={"item_id": "item_id", "location_id": "location_id", "period": "period",
                 "demand": "demand"},
    )
    panel = to_canonical(data.demand, spec)
    assert (panel["demand"] == 0).mean() > 0.5 and len(panel) == 12 * 60


def test_negative_price_in_a_price_column(stallion_spec, stallion_three):
    raw = stallion_three.copy()
    raw.loc[[4, 5], "price_regular"] = -1.0  # price.list_column
    raw.loc[6, "price_actual"] = -2.0  # price.column, its min is off in stallion.yaml
    with pytest.raises(DataValidationError) as err:
        to_canonical(raw, stallion_spec)
    issue = only_issue(err, "non_negative")
    assert (issue.table, issue.column, issue.rows) == ("demand", "price_regular", [4, 5])
    assert "2 value(s) below 0, e.g. -1" in issue.message
    assert not [i for i in err.value.issues if i.column == "price_actual"]


def test_bounds_for_any_numeric_covariate(stallion_spec, stallion_three):
    raw = stallion_three.copy()
    raw.loc[9, "avg_max_temp"] = 70.0
    spec = dataclasses.replace(stallion_spec, plausibility={"avg_max_temp": {"max": 55}})
    with pytest.raises(DataValidationError, match=r"avg_max_temp: plausible_max: 1 value\(s\)"):
        to_canonical(raw, spec)


def test_empty_table_in_memory(stallion_spec, stallion_three):
    with pytest.raises(DataValidationError, match="demand: not_empty: the table has no rows"):
        to_canonical(stallion_three.iloc[:0], stallion_spec)


# --------------------------------------------------------------------------- short series
@pytest.fixture()
def with_short_series(stallion_three, stallion_spec, tmp_path):
    """Three full Stallion series plus a fourth with one row, as a parquet source."""
    one = stallion_three.iloc[[59]].assign(agency="Agency_99")
    path = tmp_path / "short.parquet"
    pd.concat([stallion_three, one], ignore_index=True).to_parquet(path)
    return dataclasses.replace(stallion_spec, source={**stallion_spec.source, "path": str(path)})


def test_short_series_rejected_before_training(with_short_series):
    with pytest.raises(DataValidationError) as err:
        load_panel(with_short_series)
    issue = only_issue(err, "series_length")
    assert "1 series have fewer than 18 periods" in issue.message
    assert "@Agency_99 (1)" in issue.message and "short_series=drop" in issue.message


def test_short_series_dropped_with_a_warning(with_short_series, caplog):
    spec = dataclasses.replace(with_short_series, short_series="drop")
    with caplog.at_level(logging.WARNING, logger="stockcast.data.panel"):
        panel = load_panel(spec)
    assert panel.groupby(["item_id", "location_id"]).ngroups == 3 and len(panel) == 180
    assert "Agency_99" not in set(panel["location_id"])
    assert "@Agency_99 (1)" in caplog.text and "dropped" in caplog.text


def test_threshold_is_encoder_plus_horizon(stallion_spec, stallion_three):
    panel = to_canonical(stallion_three, stallion_spec)
    need = stallion_spec.min_series_length
    assert need == 12 + 6
    cut = panel[~((panel["location_id"] == panel.loc[0, "location_id"])
                  & (panel["item_id"] == panel.loc[0, "item_id"]) & (panel["time_idx"] >= need))]
    assert len(short_series(cut, stallion_spec)) == len(cut)  # exactly `need` periods: kept
    shorter = cut[~((cut["item_id"] == panel.loc[0, "item_id"])
                    & (cut["location_id"] == panel.loc[0, "location_id"])
                    & (cut["time_idx"] == need - 1))]
    with pytest.raises(DataValidationError, match=f"fewer than {need} periods"):
        short_series(shorter, stallion_spec)


def test_every_series_short_is_an_error_even_with_drop(stallion_spec, stallion_three):
    panel = to_canonical(stallion_three, stallion_spec)
    spec = dataclasses.replace(stallion_spec, short_series="drop")
    with pytest.raises(DataValidationError, match="every series is that short"):
        short_series(panel[panel["time_idx"] < 5], spec)
    assert np.array_equal(short_series(panel, spec), panel)
