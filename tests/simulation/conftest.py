"""A tiny network for the simulation tests: item A at stores S1 and S2 under DC1.

S1 is fed by DC1 (supplier BULK -> DC1, lead time 1, then the DC1 -> S1 lane, lead time 1:
the cheapest landed path); S2 orders from supplier SUP1 (lead time 1, no lane from DC1).
Twelve monthly periods of demand: S1 10 per period, S2 5.
"""

from __future__ import annotations

import pandas as pd
import pytest

from stockcast.data.supply import SupplyTables
from stockcast.schema import GROUP_IDS


def tiny_panel(periods: int = 12, swing: float = 0.0) -> pd.DataFrame:
    """Demand S1 10, S2 5 per period (+ ``swing`` in odd periods, - in even ones)."""
    dates = pd.date_range("2023-01-01", periods=periods, freq="MS")
    rows = [{"item_id": "A", "location_id": loc, "period": d, "time_idx": t,
             "demand": float(level) + (swing if t % 2 else -swing)}
            for loc, level in (("S1", 10), ("S2", 5)) for t, d in enumerate(dates)]
    return pd.DataFrame(rows)


def tiny_supply(sup1_std: float = 0.0, on_hand: float = 0.0) -> SupplyTables:
    locations = pd.DataFrame({"location_id": ["DC1", "S1", "S2"],
                              "echelon": ["dc", "store", "store"],
                              "parent_id": [None, "DC1", "DC1"],
                              "capacity": [1e6, 1e6, 1e6]})
    econ = pd.DataFrame([{"item_id": "A", "location_id": loc, "unit_cost": 4.0,
                          "price": 10.0, "holding_cost": 0.1, "shortage_cost": 0.5,
                          "salvage_value": 1.0, "on_hand": on_hand, "in_transit": 0.0}
                         for loc in ("DC1", "S1", "S2")])
    base = {"item_id": "A", "reliability": 1.0, "min_order_qty": 0.0}
    suppliers = pd.DataFrame([
        {**base, "supplier_id": "SUP1", "unit_cost": 4.0, "lead_time_mean": 1.0,
         "lead_time_std": sup1_std, "capacity": 1000.0, "ships_to": "all"},
        {**base, "supplier_id": "BULK", "unit_cost": 3.0, "lead_time_mean": 1.0,
         "lead_time_std": 0.0, "capacity": 500.0, "ships_to": "DC1"}])
    lanes = pd.DataFrame({"from_id": ["DC1"], "to_id": ["S1"], "transfer_cost": [0.2],
                          "lead_time": [1.0]})
    return SupplyTables(locations, econ, suppliers, lanes)


@pytest.fixture
def tiny():
    """(panel, supply) of the tiny network."""
    return tiny_panel(), tiny_supply()


def constant_forecasts(world, mean: float = 10.0) -> dict[int, pd.DataFrame]:
    """A flat forecast of every store for every review origin of ``world``."""
    levels = [0.1, 0.5, 0.9]
    out = {}
    for origin in world.review_origins():
        rows = [{"item_id": i, "location_id": loc, "horizon": h,
                 "forecast_origin": pd.Timestamp("2023-01-01"),
                 **{f"q{lv:g}": mean * f for lv, f in zip(levels, (0.5, 1.0, 1.5),
                                                          strict=True)}}
                for i, loc in world.stores.itertuples(index=False)
                for h in range(1, world.plan_horizon + 1)]
        out[origin] = pd.DataFrame(rows)
    return out


class Perfect:
    """Forecasts the actual demand at every quantile; counts its calls."""

    name = "perfect"

    def __init__(self):
        self.calls = []

    def forecast(self, panel, origins, horizon, quantiles=None):
        self.calls.append((list(origins), horizon))
        tables = []
        for o in origins:
            rows = panel[(panel["time_idx"] > o) & (panel["time_idx"] <= o + horizon)].copy()
            rows["horizon"] = rows["time_idx"] - o
            rows["forecast_origin"] = panel.loc[panel["time_idx"] == o, "period"].iloc[0]
            for q in (0.1, 0.5, 0.9):
                rows[f"q{q:g}"] = rows["demand"]
            tables.append(rows[[*GROUP_IDS, "period", "forecast_origin", "horizon",
                                "q0.1", "q0.5", "q0.9"]])
        return pd.concat(tables, ignore_index=True)
