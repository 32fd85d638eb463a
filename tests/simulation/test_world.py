"""The simulated world: series and routes of a tiny network, realised lead times, the
markdown response, review origins, and route validation."""

import numpy as np
import pandas as pd
import pytest

from stockcast.data.spec import DatasetSpec
from stockcast.simulation.world import (
    Routes,
    build_window,
    build_world,
    generator_truth,
    world_elasticity,
)
from tests.simulation.conftest import tiny_panel, tiny_supply


def test_window_of_a_dc_feeding_one_store(tiny):
    panel, supply = tiny
    w = build_window(panel, 8, 11, supply, None, 2.0, 0, review=1, unmet="backorder",
                     season=12)
    # stores first (the forecast nodes), then the DC item-node
    assert w.keys.to_dict("list") == {"item_id": ["A", "A", "A"],
                                      "location_id": ["S1", "S2", "DC1"],
                                      "echelon": ["store", "store", "dc"]}
    assert w.stores.to_dict("list") == {"item_id": ["A", "A"], "location_id": ["S1", "S2"]}
    np.testing.assert_allclose(w.demand, [[10] * 4, [5] * 4, [0] * 4])
    np.testing.assert_allclose(w.pre, [[10] * 8, [5] * 8, [0] * 8])
    assert [pd.Timestamp(p) for p in w.periods] == list(pd.date_range("2023-09-01",
                                                                      periods=4, freq="MS"))
    r = w.routes
    # S1: BULK (3) via DC1 + lane 0.2 beats SUP1 (4); S2 has no lane from DC1: SUP1
    np.testing.assert_array_equal(r.source, [2, -1, -1])
    np.testing.assert_allclose(r.lane_cost, [0.2, 0.0, 0.0])
    np.testing.assert_array_equal(r.lead, [1, 1, 1])
    np.testing.assert_array_equal(r.is_dc, [False, False, True])
    # DC1 feeds S1, so it does not hand its stock to S2 first
    np.testing.assert_array_equal(r.parent, [-1, -1, -1])
    assert w.suppliers == ["BULK", "SUP1"]
    # route orders: S2 from SUP1 (code 1) at 4, DC1 from BULK (code 0) at 3
    np.testing.assert_array_equal(w.capacity.route_supplier, [-1, 1, 0])
    np.testing.assert_allclose(w.capacity.capacity[:, 0], [500.0, 1000.0])
    np.testing.assert_allclose(w.econ.route_cost[1:], [4.0, 3.0])
    assert w.econ.fixed_order_cost == 2.0
    np.testing.assert_array_equal(w.lead_real, np.ones((3, 4), int))  # no spread: planned
    # S1's planned path is BULK 1 + lane 1 = 2 periods, + R = 1
    assert w.plan_horizon == 3
    assert (w.review, w.unmet, w.season) == (1, "backorder", 12)
    assert w.review_origins() == [7, 8, 9, 10]
    assert build_window(panel, 8, 11, supply, None, 0.0, 0, review=2).review_origins() == [7, 9]


def test_drawn_and_true_lead_times():
    panel = tiny_panel()
    drawn = [build_window(panel, 8, 11, tiny_supply(sup1_std=2.0), None, 0.0, s)
             for s in (0, 0, 1)]
    s2 = drawn[0].lead_real[1]  # S2 orders from SUP1: mean 1 + |Z| x 2, rounded
    assert (s2 >= 1).all() and (s2 > 1).any()
    np.testing.assert_array_equal(drawn[0].lead_real, drawn[1].lead_real)  # seeded
    assert not np.array_equal(drawn[0].lead_real, drawn[2].lead_real)
    np.testing.assert_array_equal(drawn[0].lead_real[2], [1] * 4)  # BULK has no spread
    # the generator's realised lead times win over the table's, per supplier and period
    truth = pd.DataFrame({"supplier_id": ["SUP1"] * 4,
                          "period": pd.date_range("2023-09-01", periods=4, freq="MS"),
                          "lead_time": [1.0, 2.4, 3.6, 1.0]})
    w = build_window(panel, 8, 11, tiny_supply(sup1_std=2.0), truth, 0.0, 0)
    np.testing.assert_array_equal(w.lead_real[1], [1, 2, 4, 1])
    np.testing.assert_array_equal(w.supplier_leads[w.suppliers.index("SUP1"), 1], [1, 2, 4, 1])


def test_world_elasticity_from_the_truth_or_the_assumption(tiny, tmp_path):
    w = build_window(*tiny[:1], 8, 11, tiny[1], None, 0.0, 0)
    assert world_elasticity(w, None, None) is None
    np.testing.assert_allclose(world_elasticity(w, -2.0, None), [-2.0] * 3)
    pd.DataFrame({"item_id": ["A", "B"], "elasticity": [-1.5, -3.0]}).to_parquet(
        tmp_path / "truth_series.parquet")
    np.testing.assert_allclose(world_elasticity(w, -2.0, tmp_path), [-1.5] * 3)


def test_build_world_without_a_generator_uses_the_assumed_elasticity(tiny):
    spec = DatasetSpec(name="toy", source={"path": "unused.csv"}, freq="MS",
                       columns={c: c for c in ("item_id", "location_id", "period", "demand")})
    assert generator_truth(spec) is None
    w = build_world(tiny[0], spec, tiny[1], 8, 11, review=2, price_elasticity=-1.0, season=12)
    np.testing.assert_allclose(w.elasticity, [-1.0] * 3)
    assert w.review == 2 and w.review_origins() == [7, 9]


def test_routes_reject_a_dc_that_feeds_stores_and_hands_out_stock_first():
    with pytest.raises(ValueError, match="cannot also hand out"):
        Routes(np.array([0, 0, 1]), np.array([2, -1, -1]), np.zeros(3),
               np.array([False, False, True]), np.ones(3, bool), parent=np.array([-1, 2, -1]))
