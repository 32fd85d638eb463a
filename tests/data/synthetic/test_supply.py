"""stockcast.data.synthetic.supply: the network tables follow the supply schema."""

from __future__ import annotations

import pytest

from stockcast.data.synthetic import SUPPLY_TABLES, generate

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
