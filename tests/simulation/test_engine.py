"""Simulation engine: exact numerics on toy series (lost sales, backorders, markdowns, order
lines, supplier capacity, transfers), KPIs after a warm-up, and no peeking at the future."""

import numpy as np
import pytest

from stockcast.simulation.engine import (
    Decision,
    Economics,
    SupplierCapacity,
    execute_transfers,
    kpis,
    simulate,
)
from stockcast.simulation.policies import ClassicPolicy


def fixed_orders(orders):
    orders = np.asarray(orders, dtype=float)
    return lambda view: Decision(orders[:, view.t])


ECON = Economics.constant(1, unit_cost=1.0, price=3.0, holding=0.1, shortage=0.5, fixed_order_cost=2.0)


def test_lost_sales_numerics():
    demand = np.array([[5.0, 5.0, 5.0]])
    lead = np.ones((1, 3), dtype=int)
    tr = simulate(demand, fixed_orders([[0, 10, 0]]), lead, ECON, np.array([8.0]), "lost")
    # t0: 8-5=3; t1: 3 -> serve 3, lose 2, order 10 arrives t2; t2: 10-5=5
    np.testing.assert_allclose(tr.on_hand[0], [3, 0, 5])
    np.testing.assert_allclose(tr.unmet[0], [0, 2, 0])
    k = kpis(tr)
    assert k["fill_rate"] == pytest.approx(13 / 15)
    assert k["lost_sales"] == 2
    assert k["holding_cost"] == pytest.approx(0.1 * 8)
    assert k["shortage_cost"] == pytest.approx(2 * (0.5 + 3.0))  # goodwill + lost revenue
    assert k["ordering_cost"] == pytest.approx(10 + 2.0)
    assert k["end_stock_credit"] == pytest.approx(5)
    assert k["start_stock_value"] == pytest.approx(8)
    assert k["total_cost"] == pytest.approx(0.8 + 7 + 12 - 5 + 8)
    # = list value of the demand - profit (the starting stock counted as bought at unit cost):
    # 45 - (13 x 3 - 8 - 12 - 0.8 - 2 x 0.5 + 5)
    assert k["total_cost"] == pytest.approx(45 - (39 - 8 - 12 - 0.8 - 1.0 + 5))
    # controllable cost = total - unit cost x demand (15 units)
    assert k["controllable_cost"] == pytest.approx(k["total_cost"] - 15)
    assert k["stockout_frequency"] == pytest.approx(1 / 3)
    assert k["cycle_service_level"] == pytest.approx(2 / 3)


def test_kpis_after_warmup_value_the_inherited_stock():
    demand = np.array([[5.0, 5.0, 5.0]])
    lead = np.ones((1, 3), dtype=int)
    tr = simulate(demand, fixed_orders([[0, 10, 0]]), lead, ECON, np.array([8.0]), "lost")
    k = kpis(tr, start=1)
    # from period 1: stock 3 on hand + 0 in transit... the order of t1 is placed in period 1
    assert k["start_stock_value"] == pytest.approx(3.0)
    assert k["fill_rate"] == pytest.approx(8 / 10)
    assert k["avg_inventory"] == pytest.approx((0 + 5) / 2)
    assert k["total_cost"] == pytest.approx(0.1 * 5 + 2 * 3.5 + 12 - 5 + 3.0)
    assert k["controllable_cost"] == pytest.approx(k["total_cost"] - 10.0)
    with pytest.raises(ValueError, match="start 3 outside"):
        kpis(tr, start=3)


def test_backorder_numerics():
    demand = np.array([[5.0, 5.0, 5.0]])
    lead = np.ones((1, 3), dtype=int)
    tr = simulate(demand, fixed_orders([[0, 10, 0]]), lead, ECON, np.array([8.0]), "backorder")
    # t1 backlog 2; t2 receipt 10 clears 2, serves 5 -> 3 left
    np.testing.assert_allclose(tr.on_hand[0], [3, 0, 3])
    np.testing.assert_allclose(tr.backlog[0], [0, 2, 0])
    k = kpis(tr)
    assert k["fill_rate"] == pytest.approx(13 / 15)
    assert k["shortage_cost"] == pytest.approx(2 * 0.5)  # no lost margin


def test_total_cost_is_demand_value_minus_profit_with_markdowns():
    demand = np.array([[4.0, 4.0]])
    econ = Economics.constant(1, unit_cost=1.0, price=3.0, holding=0.1, shortage=0.5)
    # a 20% markdown with elasticity -2 lifts demand to 4 x 0.8^-2 = 6.25 per period
    pol = lambda v: Decision(np.zeros(1), price_factor=np.array([0.8]),  # noqa: E731
                             demand_factor=np.array([0.8 ** -2]))
    tr = simulate(demand, pol, np.ones((1, 2), int), econ, np.array([10.0]), "lost")
    np.testing.assert_allclose(tr.served[0], [6.25, 3.75])
    k = kpis(tr)
    revenue = 0.8 * 3.0 * 10.0
    # the 10 units in stock at the start are counted as bought at unit cost 1
    profit = revenue - 10.0 - 0.1 * 3.75 - 0.5 * 2.5  # holding of t0's leftover, goodwill
    assert k["total_cost"] == pytest.approx(3.0 * 8.0 - profit)
    assert k["controllable_cost"] == pytest.approx(3.0 * 8.0 - profit - 8.0)


def test_order_lines_use_the_supplier_lead_time_and_price():
    demand = np.array([[0.0, 4.0]])
    leads = np.zeros((2, 1, 2), dtype=int)
    leads[1, 0, 0] = 1  # supplier 1 delivers an order of t0 at t1
    pol = lambda v: Decision(np.zeros(1), lines=np.array([[0, 5.0, 1, 2.0]]) if v.t == 0 else None)  # noqa: E731
    tr = simulate(demand, pol, np.zeros((1, 2), int), ECON, np.zeros(1), supplier_leads=leads)
    np.testing.assert_allclose(tr.on_hand[0], [0, 1])
    assert kpis(tr)["ordering_cost"] == pytest.approx(5 * 2.0 + 2.0)
    with pytest.raises(ValueError, match="supplier_leads"):
        simulate(demand, pol, np.zeros((1, 2), int), ECON, np.zeros(1))


def test_supplier_capacity_cuts_every_order_pro_rata():
    cap = SupplierCapacity(item=np.array([0, 0, 1]), route_supplier=np.array([0, 0, 0]),
                           capacity=np.array([[10.0, np.inf]]))
    pol = lambda v: Decision(np.array([12.0, 8.0, 50.0]))  # noqa: E731
    tr = simulate(np.zeros((3, 1)), pol, np.ones((3, 1), int), Economics.constant(3),
                  np.zeros(3), capacity=cap)
    np.testing.assert_allclose(tr.orders[:, 0], [6.0, 4.0, 50.0])
    assert kpis(tr)["capacity_cut"] == pytest.approx(10.0)
    assert kpis(tr)["ordering_cost"] == pytest.approx(60.0)  # what is cut is not paid


def test_transfers_are_cut_pro_rata_when_the_source_is_short():
    moved, asked = execute_transfers(np.array([6.0, 0.0, 0.0]),
                                     np.array([[0, 1, 6.0, 0, 0.1], [0, 2, 3.0, 0, 0.1]]))
    np.testing.assert_allclose(moved, [4.0, 2.0])
    np.testing.assert_allclose(asked, [9.0, 0.0, 0.0])



def test_no_peeking():
    rng = np.random.default_rng(1)
    pre = rng.uniform(5, 15, size=(2, 6))
    d1 = rng.uniform(5, 15, size=(2, 6))
    d2 = d1.copy()
    d2[:, 4:] *= 5.0  # change the future from period 4 on
    lead = np.ones_like(d1, dtype=int)
    runs = [simulate(d, ClassicPolicy(pre, np.array([1, 1]), 1, 1.0), lead, Economics.constant(2),
                     np.full(2, 20.0)) for d in (d1, d2)]
    np.testing.assert_allclose(runs[0].orders[:, :5], runs[1].orders[:, :5])
    assert not np.allclose(runs[0].orders[:, 5], runs[1].orders[:, 5])
