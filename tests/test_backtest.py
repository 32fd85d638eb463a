"""Backtest: simulation numerics on toy series (known answers) + one end-to-end smoke run."""

import mlflow
import numpy as np
import pytest

from stockcast.simulation.engine import Decision, Economics, kpis, simulate
from stockcast.simulation.policies import ClassicPolicy, OraclePolicy, order_up_to
from tests.conftest import compose_config


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
    assert k["shortage_cost"] == pytest.approx(2 * (0.5 + 2.0))  # goodwill + lost margin
    assert k["ordering_cost"] == pytest.approx(10 + 2.0)
    assert k["end_stock_credit"] == pytest.approx(5)
    assert k["total_cost"] == pytest.approx(0.8 + 5 + 12 - 5)
    assert k["stockout_frequency"] == pytest.approx(1 / 3)
    assert k["cycle_service_level"] == pytest.approx(2 / 3)


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


def test_oracle_zero_lead_time_is_perfect():
    rng = np.random.default_rng(0)
    demand = rng.integers(0, 20, size=(3, 8)).astype(float)
    lead = np.zeros_like(demand, dtype=int)
    econ = Economics.constant(3)
    tr = simulate(demand, OraclePolicy(demand, lead, 1), lead, econ, np.zeros(3), "lost")
    assert kpis(tr)["fill_rate"] == pytest.approx(1.0)
    np.testing.assert_allclose(tr.on_hand, 0.0, atol=1e-12)


def test_classic_order_up_to_formula():
    pre = np.array([[10.0, 12.0, 8.0, 14.0, 6.0, 10.0]])
    mean, sigma, lead, review, z = pre.mean(), pre.std(ddof=1), np.array([2]), 1, 1.645
    pol = ClassicPolicy(pre, lead, review, z, window=6)
    expected = mean * 3 + z * sigma * np.sqrt(3)
    assert order_up_to(np.array([mean]), np.array([sigma]), lead, review, z)[0] == pytest.approx(expected)
    lt = np.full((1, 1), 2)
    tr = simulate(np.array([[0.0]]), pol, lt, Economics.constant(1), np.array([4.0]))
    assert tr.orders[0, 0] == pytest.approx(expected - 4.0)


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


def test_backtest_end_to_end(smoke_train, tmp_path):
    from stockcast.simulation.backtest import run

    result, _ = smoke_train
    cfg = compose_config("backtest", ["experiment=smoke", f"model_ref={result.model_version}",
                                      "max_series=4"], tmp_path)
    bt = run(cfg)
    assert mlflow.get_run(bt.run_id).info.status == "FINISHED"
    assert set(bt.table["policy"]) == {"stockcast", "classic", "seasonal_naive_ss", "oracle"}
    assert (tmp_path / "backtest_report.html").exists()
    assert bt.table.set_index("policy").loc["oracle", "fill_rate"] >= bt.table["fill_rate"].min()
