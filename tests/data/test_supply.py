"""Supply tables: schema validation (every issue names table, column, rows) and derivation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockcast.data.supply import (
    SUPPLY_COLUMNS,
    SupplyConfig,
    SupplyTables,
    derive_supply,
    validate_supply,
)
from stockcast.errors import DataValidationError


def good_tables() -> dict[str, pd.DataFrame]:
    locations = pd.DataFrame({
        "location_id": ["DC1", "S1", "S2"],
        "echelon": ["dc", "store", "store"],
        "parent_id": [None, "DC1", "DC1"],
        "capacity": [1000.0, 200.0, 200.0],
    })
    economics = pd.DataFrame({
        "item_id": ["A", "A", "A"],
        "location_id": ["DC1", "S1", "S2"],
        "unit_cost": [4.0, 4.0, 4.0],
        "price": [10.0, 10.0, 10.0],
        "holding_cost": [0.1, 0.2, 0.2],
        "shortage_cost": [1.0, 1.0, 1.0],
        "salvage_value": [1.0, 1.0, 1.0],
        "on_hand": [50.0, 10.0, 0.0],
        "in_transit": [0.0, 5.0, 0.0],
    })
    suppliers = pd.DataFrame({
        "supplier_id": ["SUP1", "SUP2"],
        "item_id": ["A", "A"],
        "unit_cost": [3.5, 4.0],
        "lead_time_mean": [2.0, 1.0],
        "lead_time_std": [0.5, 0.1],
        "reliability": [0.9, 0.99],
        "capacity": [500.0, 300.0],
        "min_order_qty": [50.0, 0.0],
        "ships_to": ["DC1", "all"],
    })
    lanes = pd.DataFrame({
        "from_id": ["DC1", "DC1", "S1", "S2"],
        "to_id": ["S1", "S2", "S2", "S1"],
        "transfer_cost": [0.2, 0.2, 0.3, 0.3],
        "lead_time": [0.0, 0.0, 0.0, 0.0],
    })
    return {"locations": locations, "economics": economics, "suppliers": suppliers,
            "lanes": lanes}


def issues_of(tables: dict[str, pd.DataFrame]) -> list:
    with pytest.raises(DataValidationError) as err:
        validate_supply(tables)
    return err.value.issues


def find(issues: list, table: str, column: str | None, rule: str | None = None):
    hits = [i for i in issues if i.table == table and i.column == column
            and (rule is None or rule in i.rule)]
    assert hits, f"no issue {table}.{column} {rule} in {[str(i) for i in issues]}"
    return hits[0]


def test_good_tables_pass_and_are_cleaned():
    t = good_tables()
    t["economics"]["on_hand"] = t["economics"]["on_hand"].astype(int)
    clean = validate_supply(t)
    assert isinstance(clean, SupplyTables)
    assert clean.economics["on_hand"].dtype == float
    assert list(clean.suppliers.columns[:9]) == list(SUPPLY_COLUMNS["suppliers"])


def test_missing_table_and_column_are_named():
    t = good_tables()
    del t["lanes"]
    with pytest.raises(DataValidationError, match="lanes: missing_table"):
        validate_supply(t)
    t = good_tables()
    t["economics"] = t["economics"].drop(columns="holding_cost")
    issue = find(issues_of(t), "economics", "holding_cost", "missing_column")
    assert "absent" in issue.message


def test_negative_costs_name_table_column_rows():
    t = good_tables()
    t["economics"].loc[1, "holding_cost"] = -0.5
    t["economics"].loc[2, "unit_cost"] = -1.0
    t["lanes"].loc[3, "transfer_cost"] = -2.0
    issues = issues_of(t)
    assert find(issues, "economics", "holding_cost").rows == [1]
    assert find(issues, "economics", "unit_cost").rows == [2]
    assert find(issues, "lanes", "transfer_cost").rows == [3]
    assert "economics.holding_cost" in str(DataValidationError(issues))


def test_duplicate_keys_and_bad_echelon():
    t = good_tables()
    t["locations"].loc[2, "location_id"] = "S1"
    t["locations"].loc[0, "echelon"] = "warehouse"
    issues = issues_of(t)
    assert set(find(issues, "locations", "location_id", "unique").rows) == {1, 2}
    assert find(issues, "locations", "echelon").rows == [0]


def test_store_parent_must_be_a_dc():
    t = good_tables()
    t["locations"].loc[2, "parent_id"] = "S1"
    t["locations"].loc[1, "parent_id"] = None
    issues = issues_of(t)
    assert find(issues, "locations", "parent_id", "store_has_parent").rows == [1]
    t = good_tables()
    t["locations"].loc[2, "parent_id"] = "S1"
    assert find(issues_of(t), "locations", "parent_id", "known_reference").rows == [2]


def test_salvage_above_cost_and_supplier_ranges():
    t = good_tables()
    t["economics"].loc[0, "salvage_value"] = 9.0
    t["suppliers"].loc[1, "reliability"] = 1.2
    t["suppliers"].loc[0, "lead_time_std"] = -1.0
    issues = issues_of(t)
    assert find(issues, "economics", "salvage_value", "salvage_le_unit_cost").rows == [0]
    assert find(issues, "suppliers", "reliability").rows == [1]
    assert find(issues, "suppliers", "lead_time_std").rows == [0]


def test_unknown_supplier_item_and_bad_ships_to():
    t = good_tables()
    extra = t["suppliers"].iloc[[1]].assign(item_id="ZZZ", supplier_id="SUP9")
    t["suppliers"] = pd.concat([t["suppliers"], extra], ignore_index=True)
    t["suppliers"].loc[0, "ships_to"] = "S1"
    issues = issues_of(t)
    item = find(issues, "suppliers", "item_id", "known_reference")
    assert item.rows == [2] and "unknown supplier item" in item.message
    assert find(issues, "suppliers", "ships_to").rows == [0]


def test_lanes_reference_known_distinct_locations():
    t = good_tables()
    t["lanes"].loc[0, "to_id"] = "NOWHERE"
    t["lanes"].loc[2, "to_id"] = "S1"
    issues = issues_of(t)
    assert find(issues, "lanes", "to_id", "known_reference").rows == [0]
    assert find(issues, "lanes", "to_id", "distinct").rows == [2]


def test_non_numeric_moq_above_capacity_and_arbitrage():
    t = good_tables()
    t["locations"]["capacity"] = t["locations"]["capacity"].astype(object)
    t["locations"].loc[1, "capacity"] = "lots"
    issues = issues_of(t)
    assert find(issues, "locations", "capacity", "numeric").rows == [1]
    t = good_tables()
    t["suppliers"].loc[0, "min_order_qty"] = 900.0
    assert find(issues_of(t), "suppliers", "min_order_qty", "moq_le_capacity").rows == [0]
    t = good_tables()
    t["suppliers"].loc[1, "unit_cost"] = 0.5
    assert find(issues_of(t), "suppliers", "unit_cost", "cost_ge_salvage").rows == [1]


def test_all_issues_reported_at_once():
    t = good_tables()
    t["economics"].loc[0, "price"] = 0.0
    t["suppliers"].loc[0, "capacity"] = np.inf
    t["lanes"].loc[1, "lead_time"] = -1.0
    issues = issues_of(t)
    assert {(i.table, i.column) for i in issues} >= {
        ("economics", "price"), ("suppliers", "capacity"), ("lanes", "lead_time")}


def stallion_like(n_items: int = 6, n_locs: int = 9, periods: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_items):
        for j in range(n_locs):
            for t in range(periods):
                rows.append({"item_id": f"SKU_{i}", "location_id": f"Agency_{j:02d}",
                             "period": pd.Timestamp("2017-01-01") + pd.DateOffset(months=t),
                             "demand": float(rng.gamma(3, 20)), "price_regular": 10.0 + i})
    return pd.DataFrame(rows)


def test_derive_supply_builds_valid_tables_with_imbalance():
    keys = stallion_like()
    s = derive_supply(keys, {"n_dcs": 2, "seed": 3})
    locs = s.locations
    assert (locs["echelon"] == "dc").sum() == 2
    stores = locs[locs["echelon"] == "store"]
    assert set(stores["parent_id"]) == {"DC1", "DC2"}
    assert len(stores) == 9
    per_item = s.suppliers.groupby("item_id").size()
    assert per_item.between(2, 3).all() and len(per_item) == 6
    assert s.suppliers.groupby("item_id")["unit_cost"].nunique().min() >= 2
    econ = s.economics
    store_econ = econ[econ["location_id"].str.startswith("Agency")]
    assert np.allclose(store_econ["unit_cost"], store_econ["price"] * 0.65)
    cover = store_econ["on_hand"] / keys.groupby(["item_id", "location_id"])["demand"].apply(
        lambda d: d.tail(6).mean()).reindex(
        pd.MultiIndex.from_frame(store_econ[["item_id", "location_id"]])).to_numpy()
    assert (cover > 3).any() and (cover < 0.3).any()
    lanes = s.lanes
    assert lanes["from_id"].str.startswith("DC").any()
    assert (lanes["from_id"].str.startswith("Agency") & lanes["to_id"].str.startswith(
        "Agency")).any()
    again = derive_supply(keys, SupplyConfig(n_dcs=2, seed=3))
    pd.testing.assert_frame_equal(again.economics, s.economics)


def test_derive_supply_from_forecast_keys_and_bad_config():
    fc = pd.DataFrame({"item_id": ["A", "A", "B"], "location_id": ["L1", "L2", "L1"],
                       "horizon": 1, "q0.5": [10.0, 20.0, 5.0]})
    with pytest.raises(ValueError, match="set periods_per_year or pass the data's freq"):
        derive_supply(fc, {"n_dcs": 1}, demand_column=None)
    s = derive_supply(fc, {"n_dcs": 1}, demand_column=None, freq="MS")
    assert set(s.economics["item_id"]) == {"A", "B"}
    assert s.economics.loc[s.economics["location_id"] == "L1", "price"].eq(10.0).all()
    with pytest.raises(ValueError, match="unknown SupplyConfig keys"):
        derive_supply(fc, {"n_dc": 1})
    with pytest.raises(DataValidationError, match="demand"):
        derive_supply(fc.drop(columns="q0.5"), {"n_dcs": 1}, demand_column=None, freq="MS")


def test_holding_cost_per_period_follows_the_data_frequency():
    monthly = stallion_like()
    weekly = monthly.assign(period=pd.Timestamp("2017-01-02") + pd.to_timedelta(
        monthly.groupby(["item_id", "location_id"]).cumcount() * 7, unit="D"))
    econ = {k: derive_supply(d, {"n_dcs": 2, "seed": 3}).economics.set_index(["item_id", "location_id"])
            for k, d in (("monthly", monthly), ("weekly", weekly))}
    ratio = econ["weekly"]["holding_cost"] / econ["monthly"]["holding_cost"]
    assert np.allclose(ratio, 12 / 52)
    rate = econ["monthly"]["holding_cost"] / econ["monthly"]["unit_cost"]
    stores = econ["monthly"].index.get_level_values("location_id").str.startswith("Agency")
    assert np.allclose(rate[stores], 0.25 / 12)
    fixed = derive_supply(weekly, {"n_dcs": 2, "seed": 3, "periods_per_year": 12}).economics
    assert np.allclose(fixed.set_index(["item_id", "location_id"])["holding_cost"], econ["monthly"]["holding_cost"])
