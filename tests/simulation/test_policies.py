"""Replenishment policies: the oracle's bound, the classic order-up-to formula, echelon
base stock of a DC feeding stores, DC first, probit quantile shifts; policy specs."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from stockcast.simulation.engine import Economics, kpis, simulate
from stockcast.simulation.policies import (
    ClassicPolicy,
    OraclePolicy,
    order_up_to,
    shift_quantiles,
)
from stockcast.simulation.world import Routes


def test_oracle_zero_lead_time_is_perfect():
    rng = np.random.default_rng(0)
    demand = rng.integers(0, 20, size=(3, 8)).astype(float)
    lead = np.zeros_like(demand, dtype=int)
    econ = Economics.constant(3)
    tr = simulate(demand, OraclePolicy(demand, lead, 1), lead, econ, np.zeros(3), "lost")
    assert kpis(tr)["fill_rate"] == pytest.approx(1.0)
    np.testing.assert_allclose(tr.on_hand, 0.0, atol=1e-12)


def test_oracle_projects_lost_sales_and_orders_just_in_time():
    demand = np.array([[10.0, 10.0, 10.0]])
    lead = np.ones((1, 3), dtype=int)
    tr = simulate(demand, OraclePolicy(demand, lead, 1), lead, Economics.constant(1),
                  np.array([5.0]), "lost")
    # 5 of period 0 are lost whatever happens; the order of t0 covers period 1 exactly
    # (a position rule would order 20 - 5 = 15 and leave 5 idle), nothing arrives late
    np.testing.assert_allclose(tr.unmet[0], [5, 0, 0])
    np.testing.assert_allclose(tr.orders[0], [10, 10, 0])
    np.testing.assert_allclose(tr.on_hand[0], [0, 0, 0])


def test_oracle_draws_on_dc_stock_for_what_no_supplier_reaches_in_time():
    demand = np.array([[10.0] * 4, [0.0] * 4])  # store, idle DC
    lead = np.full((2, 4), 2)
    routes = Routes(np.array([2, 2]), np.array([-1, -1]), np.zeros(2), np.array([False, True]),
                    np.array([True, True]), parent=np.array([1, -1]),
                    parent_lead=np.array([0, 0]), parent_cost=np.array([0.1, 0.0]))
    econ = Economics.constant(2)
    tr = simulate(demand, OraclePolicy(demand, lead, 1, routes), lead, econ,
                  np.array([0.0, 100.0]), "lost")
    assert kpis(tr, np.array([True, False]))["fill_rate"] == pytest.approx(1.0)
    assert tr.orders[0].sum() == pytest.approx(0.0)  # the DC's 100 units are used first
    assert kpis(tr, np.array([False, True]))["internal_fill_rate"] == pytest.approx(1.0)
    alone = simulate(demand[:1], OraclePolicy(demand[:1], lead[:1], 1), lead[:1],
                     Economics.constant(1), np.zeros(1), "lost")
    assert kpis(alone)["fill_rate"] == pytest.approx(0.5)  # periods 0-1 are out of reach


def test_classic_order_up_to_formula():
    pre = np.array([[10.0, 12.0, 8.0, 14.0, 6.0, 10.0]])
    mean, sigma, lead, review, z = pre.mean(), pre.std(ddof=1), np.array([2]), 1, 1.645
    pol = ClassicPolicy(pre, lead, review, z, window=6)
    expected = mean * 3 + z * sigma * np.sqrt(3)
    assert order_up_to(np.array([mean]), np.array([sigma]), lead, review, z)[0] == pytest.approx(expected)
    lt = np.full((1, 1), 2)
    tr = simulate(np.array([[0.0]]), pol, lt, Economics.constant(1), np.array([4.0]))
    assert tr.orders[0, 0] == pytest.approx(expected - 4.0)


def two_stores_one_dc(dc_stock: float):
    """Stores 0, 1 fed by DC 2 (lane lead 0, cost 0.1); the DC orders with lead time 1."""
    routes = Routes(np.array([0, 0, 1]), np.array([2, 2, -1]), np.array([0.1, 0.1, 0.0]),
                    np.array([False, False, True]), np.array([True, True, True]))
    pre = np.array([[10.0] * 6, [10.0] * 6, [0.0] * 6])
    demand = np.array([[10.0] * 3, [10.0] * 3, [0.0] * 3])
    tr = simulate(demand, ClassicPolicy(pre, routes, 1, 0.0), np.ones((3, 3), int),
                  Economics.constant(3), np.array([0.0, 0.0, dc_stock]), "lost")
    return tr


def test_echelon_kpis_of_a_dc_feeding_two_stores():
    tr = two_stores_one_dc(15.0)
    store, dc = np.array([True, True, False]), np.array([False, False, True])
    # t0: the stores ask 10 each, the DC has 15 -> 7.5 each (pro rata), 2.5 each lost; the DC
    # orders its echelon target 20 x (1 + 0 + 1) = 40 minus 15 -> 25 (arrives t1);
    # t1: ships 20 of 25, orders 40 - 25 = 15; t2: ships 20 of 20, orders 20 (after the window)
    np.testing.assert_allclose(tr.orders[2], [25, 15, 20])
    np.testing.assert_allclose(tr.shipped_out[2], [15, 20, 20])
    np.testing.assert_allclose(tr.on_hand[2], [0, 5, 0])
    ks, kd, k = kpis(tr, store), kpis(tr, dc), kpis(tr)
    assert ks["fill_rate"] == pytest.approx(55 / 60)
    assert np.isnan(kd["fill_rate"]) and np.isnan(kd["cycle_service_level"])
    assert kd["internal_fill_rate"] == pytest.approx(55 / 60)
    assert kd["avg_inventory"] == pytest.approx(5 / 3)
    assert ks["avg_inventory"] + kd["avg_inventory"] == pytest.approx(k["avg_inventory"])
    assert ks["transfer_cost"] == pytest.approx(55 * 0.1)  # charged to the receiving store
    assert kd["ordering_cost"] == pytest.approx(60.0)
    assert kd["end_stock_credit"] == pytest.approx(20.0)  # the last order is still in transit


def test_dc_first_hands_out_idle_dc_stock_before_ordering():
    routes = Routes(np.array([1, 1, 1]), np.array([-1, -1, -1]), np.zeros(3),
                    np.array([False, False, True]), np.array([True, True, True]),
                    parent=np.array([2, 2, -1]), parent_lead=np.array([0, 0, 0]),
                    parent_cost=np.array([0.1, 0.1, 0.0]))
    pre = np.array([[10.0] * 6, [10.0] * 6, [0.0] * 6])
    demand = np.array([[10.0], [10.0], [0.0]])
    tr = simulate(demand, ClassicPolicy(pre, routes, 1, 0.0), np.ones((3, 1), int),
                  Economics.constant(3), np.array([0.0, 0.0, 15.0]), "lost")
    # each store wants 10 x (1 + 1) = 20: 7.5 from the DC now, 12.5 from the supplier
    np.testing.assert_allclose(tr.served[:2, 0], [7.5, 7.5])
    np.testing.assert_allclose(tr.orders[:2, 0], [12.5, 12.5])
    assert tr.orders[2, 0] == 0.0  # an idle DC is not replenished
    with pytest.raises(ValueError, match="cannot also hand out"):
        Routes(np.array([0, 0, 1]), np.array([2, -1, -1]), np.zeros(3),
               np.array([False, False, True]), np.ones(3, bool), parent=np.array([-1, 2, -1]))


def test_shift_quantiles_moves_levels_in_probit_space():
    fc = pd.DataFrame({"item_id": ["a", "b"], "location_id": ["x", "x"],
                       "q0.1": [1.0, 1.0], "q0.25": [2.0, 2.0], "q0.5": [3.0, 3.0],
                       "q0.75": [4.0, 4.0], "q0.9": [5.0, 5.0]})
    delta = float(special.ndtri(0.5) - special.ndtri(0.25))  # 0.25 -> 0.5 and 0.5 -> 0.75
    out = shift_quantiles(fc, delta)
    assert out.loc[0, "q0.25"] == pytest.approx(3.0)
    assert out.loc[0, "q0.5"] == pytest.approx(4.0)
    per_row = shift_quantiles(fc, pd.Series([delta], index=pd.MultiIndex.from_tuples(
        [("a", "x")], names=["item_id", "location_id"])))
    assert per_row.loc[0, "q0.5"] == pytest.approx(4.0)
    assert per_row.loc[1, "q0.5"] == pytest.approx(3.0)  # no shift for b
    cols = ["q0.1", "q0.25", "q0.5", "q0.75", "q0.9"]
    assert (np.diff(shift_quantiles(fc, -1.3)[cols].to_numpy(), axis=1) >= 0).all()


# ---------------------------------------------------------------- specs
def test_specs_build_their_policy_at_a_knob(tiny):
    from stockcast.simulation.policies import (
        ClassicSpec,
        OracleSpec,
        SeasonalNaiveSpec,
        SeasonalNaiveSSPolicy,
    )
    from stockcast.simulation.world import build_window

    world = build_window(*tiny[:1], 8, 11, tiny[1], None, 0.0, 0, season=12, unmet="backorder")
    classic = ClassicSpec(service=0.95, grid=[0.8, 0.99], window=4)
    assert classic.tunable and classic.grid == (0.8, 0.99)
    pol = classic.build(world, 0.9)
    assert isinstance(pol, ClassicPolicy) and pol.window == 4
    assert pol.z == pytest.approx(special.ndtri(0.9)) and pol.routes is world.routes
    assert classic.capacity(world) is world.capacity
    with pytest.raises(ValueError, match="needs a cycle service level"):
        classic.build(world, None)
    with pytest.raises(ValueError, match=r"lie in \(0, 1\)"):
        ClassicSpec(grid=[0.5, 1.0])
    seasonal = SeasonalNaiveSpec(service=0.9).build(world, 0.9)
    assert isinstance(seasonal, SeasonalNaiveSSPolicy) and seasonal.season == 12
    assert SeasonalNaiveSpec(season_length=4).build(world, 0.9).season == 4
    oracle = OracleSpec()
    assert not oracle.tunable and oracle.capacity(world) is None  # a bound
    assert isinstance(oracle.build(world, None), OraclePolicy)
    assert oracle.build(world, None).unmet == "backorder"
    with pytest.raises(ValueError, match="has no service knob"):
        OracleSpec(grid=[0.9])


class Recording(dict):
    """Forecasts by origin that remember which origins were looked up."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = []

    def get(self, key, default=None):
        self.asked.append(key)
        return super().get(key, default)


def test_optimizer_policy_plans_with_the_forecast_of_each_review_origin(tiny):
    from stockcast.optimization.plan import PlanConfig
    from stockcast.simulation.policies import OptimizerPolicy, OptimizerSpec
    from stockcast.simulation.world import build_window
    from tests.simulation.conftest import constant_forecasts

    world = build_window(*tiny[:1], 8, 11, tiny[1], None, 0.0, 0, review=2)
    forecasts = Recording(constant_forecasts(world))
    from tests.simulation.conftest import Perfect

    spec = OptimizerSpec(forecaster=Perfect(), plan=PlanConfig(n_scenarios=16, moq=False),
                         grid=[0.8], price_elasticity=None)
    assert spec.tunable and spec.capacity(world) is world.capacity
    with pytest.raises(ValueError, match="must implement forecast"):
        OptimizerSpec(forecaster=None)
    pol = spec.build(world, None, forecasts)
    assert isinstance(pol, OptimizerPolicy) and pol.routes is world.routes
    tr = simulate(world.demand, pol, world.lead_real, world.econ, world.on_hand0, "lost", 2,
                  world.supplier_leads, None, world.capacity)
    assert forecasts.asked == [7, 9]  # the last observed period before each review
    assert len(pol.plans) == 2 and tr.orders.shape == (3, 4)
    assert kpis(tr)["ordering_cost"] > 0  # no stock at the start: the plans must buy
    with pytest.raises(ValueError, match="needs the forecasts"):
        spec.build(world, None)
    missing = spec.build(world, None, {7: forecasts[7]})
    with pytest.raises(ValueError, match="no forecast for review origin time_idx 9"):
        simulate(world.demand, missing, world.lead_real, world.econ, world.on_hand0, "lost",
                 2, world.supplier_leads)
