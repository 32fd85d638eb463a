"""Supply network tables of the synthetic data: locations, economics, suppliers, lanes.

Stores belong to DCs (store ``k`` -> DC ``k mod n_dcs``); every item has a primary
supplier shipping to all DCs and half of them a second, dearer one shipping to one DC.
Lanes connect each DC to its stores, DCs to each other and neighbouring stores of a DC.
Schemas: ``docs/data.md`` (the supply schema). :func:`stockcast.data.supply.validate_supply`
accepts them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from stockcast.data.synthetic.demand import make_ids


class Suppliers(NamedTuple):
    """Lead-time parameters per supplier (periods), for the realised lead times."""

    ids: np.ndarray
    lead_time_mean: np.ndarray
    lead_time_std: np.ndarray
    reliability: np.ndarray


def supply_tables(
    rng: np.random.Generator,
    item_ids: np.ndarray,
    store_ids: np.ndarray,
    dc_ids: np.ndarray,
    store_dc: np.ndarray,
    series_mean: np.ndarray,
    ref_price: np.ndarray,
    current_price: np.ndarray,
    n_sup: int,
    period_days: float,
    per_year: float,
) -> tuple[dict[str, pd.DataFrame], Suppliers]:
    """``locations``, ``economics``, ``suppliers`` and ``lanes`` of the network.

    Args:
        rng: The supply stream (drawn from in a fixed order; the realised lead times,
            :func:`~stockcast.data.synthetic.truth.lead_times`, draw from it next).
        item_ids, store_ids, dc_ids: Identifiers.
        store_dc: DC index of each store.
        series_mean: Mean demand per period of each item-location (item-major).
        ref_price: Reference price per item.
        current_price: Regular price per item-location in the last history period.
        n_sup: Number of suppliers.
        period_days: Period length in days (lead times are in periods).
        per_year: Periods per year (holding cost per period).

    Returns:
        The tables by name, and the suppliers' lead-time parameters.
    """
    n_items, n_stores, n_dcs = len(item_ids), len(store_ids), len(dc_ids)
    demand = series_mean.reshape(n_items, n_stores)  # mean demand per period
    store_load = demand.sum(axis=0)

    store_cap = np.ceil(store_load * rng.uniform(4, 8, n_stores))
    dc_cap = np.ceil(np.bincount(store_dc, weights=store_cap, minlength=n_dcs) * 1.5)
    locations = pd.DataFrame(
        {
            "location_id": np.concatenate([dc_ids, store_ids]),
            "echelon": ["dc"] * n_dcs + ["store"] * n_stores,
            "parent_id": [None] * n_dcs + list(dc_ids[store_dc]),
            "capacity": np.concatenate([dc_cap, store_cap]),
        }
    )
    locations["parent_id"] = locations["parent_id"].astype(object)

    unit_cost = np.round(ref_price * rng.uniform(0.45, 0.65, n_items), 2)
    store_price = current_price.reshape(n_items, n_stores)
    dc_price = np.stack(
        [store_price[:, store_dc == d].mean(axis=1) for d in range(n_dcs)], axis=1
    ).round(2)
    price = np.concatenate([dc_price, store_price], axis=1)  # (items, dcs + stores)
    item_dc_load = np.stack([demand[:, store_dc == d].sum(axis=1) for d in range(n_dcs)], axis=1)
    load = np.concatenate([item_dc_load, demand], axis=1)
    cover = np.concatenate(
        [rng.uniform(2, 4, (n_items, n_dcs)), rng.uniform(1, 3, (n_items, n_stores))], axis=1
    )
    n_loc = n_dcs + n_stores
    cost = np.repeat(unit_cost[:, None], n_loc, axis=1)
    economics = pd.DataFrame(
        {
            "item_id": np.repeat(item_ids, n_loc),
            "location_id": np.tile(np.concatenate([dc_ids, store_ids]), n_items),
            "unit_cost": cost.ravel(),
            "price": price.ravel(),
            "holding_cost": np.round(cost * 0.25 / per_year, 4).ravel(),
            "shortage_cost": np.round(np.maximum(price - cost, 0.01), 4).ravel(),
            "salvage_value": np.round(cost * 0.3, 2).ravel(),
            "on_hand": rng.poisson(load * cover).astype(float).ravel(),
            "in_transit": rng.poisson(load * rng.uniform(0, 1, load.shape)).astype(float).ravel(),
        }
    )

    # suppliers: each item has a primary supplier shipping to all DCs, half a second one
    supplier_ids = make_ids("sup_", n_sup)
    lt_mean = np.round(rng.uniform(5, 30, n_sup) / period_days, 2)
    lt_std = np.round(lt_mean * rng.uniform(0.1, 0.3, n_sup), 2)
    reliability = np.round(rng.uniform(0.85, 0.99, n_sup), 3)
    primary = np.arange(n_items) % n_sup
    has_second = (rng.random(n_items) < 0.5) & (n_sup > 1)
    second = (primary + 1 + rng.integers(0, max(n_sup - 1, 1), n_items)) % n_sup
    item_total = demand.sum(axis=1)
    recs = []
    for i in range(n_items):
        options = [(primary[i], 1.0, "all")]
        if has_second[i]:
            options.append((second[i], rng.uniform(1.02, 1.15), dc_ids[rng.integers(n_dcs)]))
        for s, markup, ships_to in options:
            recs.append(
                {
                    "supplier_id": supplier_ids[s],
                    "item_id": item_ids[i],
                    "unit_cost": round(float(unit_cost[i] * markup), 2),
                    "lead_time_mean": float(lt_mean[s]),
                    "lead_time_std": float(lt_std[s]),
                    "reliability": float(reliability[s]),
                    "capacity": float(np.ceil(item_total[i] * rng.uniform(1.2, 2.0))),
                    "min_order_qty": float(
                        max(1.0, np.round(item_total[i] * rng.uniform(0.3, 1.0)))
                    ),
                    "ships_to": ships_to,
                }
            )
    suppliers = pd.DataFrame(recs)

    # lanes: DC -> its stores, DC <-> DC, store <-> neighbouring stores of the same DC
    def lead(days: float) -> int:
        return max(1, math.ceil(days / period_days))

    mean_price = float(ref_price.mean())
    lanes = []
    for j in range(n_stores):
        lanes.append((dc_ids[store_dc[j]], store_ids[j], 0.02 * mean_price, lead(1)))
    for a in range(n_dcs):
        for b in range(n_dcs):
            if a != b:
                lanes.append((dc_ids[a], dc_ids[b], 0.05 * mean_price, lead(3)))
    for d in range(n_dcs):
        members = np.flatnonzero(store_dc == d)
        for k, j in enumerate(members):
            for nb in {members[(k + 1) % len(members)], members[(k - 1) % len(members)]} - {j}:
                lanes.append((store_ids[j], store_ids[nb], 0.04 * mean_price, lead(2)))
    lanes_df = pd.DataFrame(lanes, columns=["from_id", "to_id", "transfer_cost", "lead_time"])
    lanes_df["transfer_cost"] = (
        lanes_df["transfer_cost"] * rng.uniform(0.8, 1.2, len(lanes_df))
    ).round(3)
    lanes_df["lead_time"] = lanes_df["lead_time"].astype(int)
    tables = {
        "locations": locations,
        "economics": economics,
        "suppliers": suppliers,
        "lanes": lanes_df,
    }
    return tables, Suppliers(supplier_ids, lt_mean, lt_std, reliability)
