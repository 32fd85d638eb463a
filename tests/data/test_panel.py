"""stockcast.data.panel: implausible values, short series and empty tables are refused by name."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from stockcast.data.panel import load_panel, short_series, to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.data.synthetic import generate
from stockcast.errors import DataValidationError


def only_issue(err: pytest.ExceptionInfo, rule: str):
    found = [i for i in err.value.issues if i.rule == rule]
    assert len(found) == 1, str(err.value)
    return found[0]


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


def test_negative_price_in_a_covariate_table_names_that_table(load_spec):
    spec = load_spec("synthetic")
    data = generate(n_items=2, n_stores=2, n_dcs=1, periods=20, horizon=2, seed=3, quantiles=None)
    tables = dict(data.covariates)
    prices = tables["prices"].copy()
    prices.loc[[2, 40], "price"] = -0.5
    tables["prices"] = prices
    with pytest.raises(DataValidationError) as err:
        to_canonical(data.demand, spec, tables=tables)
    issue = only_issue(err, "non_negative")
    assert (issue.table, issue.column, issue.rows) == ("prices", "price", [2, 40])


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
