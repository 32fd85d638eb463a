"""Backtest: simulation numerics on toy series (known answers), matched-service search, echelon
KPIs, and end-to-end smoke runs (TFT on Stallion, true-distribution policy on synthetic)."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import special

from stockcast.simulation.backtest import (
    Window,
    match_target,
    matched_table,
    summary_text,
    warmup_note,
    warmup_periods,
)
from stockcast.simulation.engine import (
    Decision,
    Economics,
    SupplierCapacity,
    execute_transfers,
    kpis,
    simulate,
)
from stockcast.simulation.policies import (
    ClassicPolicy,
    OraclePolicy,
    Routes,
    order_up_to,
    shift_quantiles,
)
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


# ---------------------------------------------------------------- matched service
def curve(points):
    return {k: {"fill_rate": f, "avg_inventory": inv, "total_cost": c}
            for k, (f, inv, c) in points.items()}


def test_matched_interpolates_between_the_bracketing_runs():
    pts = curve({0.5: (0.80, 50.0, 9.0), 0.8: (0.90, 100.0, 10.0), 0.95: (0.94, 140.0, 12.0)})
    res = match_target(pts, 0.92, values=("avg_inventory", "total_cost"))
    assert res["reached"] and res["n_runs"] == 0
    assert res["avg_inventory"] == pytest.approx(120.0)
    assert res["total_cost"] == pytest.approx(11.0)
    z = special.ndtri([0.8, 0.95])
    assert res["knob"] == pytest.approx(special.ndtr(z.mean()))
    assert "0.9000" in res["status"] and "0.9400" in res["status"]


def test_matched_refines_and_extends_with_new_runs():
    # fill = knob / 1.05 and inventory = 100 x knob: the search must land near the target
    run = lambda k: {"fill_rate": k / 1.05, "avg_inventory": 100 * k}  # noqa: E731
    pts = {k: run(k) for k in (0.5, 0.6)}
    res = match_target(pts, 0.9, run, expand=4, refine=3, tolerance=1e-3,
                       values=("avg_inventory",))
    assert res["reached"]
    assert res["n_runs"] >= 2 and len(pts) == 2 + res["n_runs"]
    assert max(pts) > 0.9  # the grid was extended toward 1 until it bracketed the target
    assert res["avg_inventory"] == pytest.approx(100 * 0.9 * 1.05, rel=2e-3)


def test_unreachable_target_is_reported_with_what_was_reached():
    run = lambda k: {"fill_rate": min(0.9, k), "avg_inventory": 100 * k}  # noqa: E731
    pts = {k: run(k) for k in (0.5, 0.8, 0.95)}
    res = match_target(pts, 0.93, run, expand=5, refine=2, values=("avg_inventory",))
    assert not res["reached"] and np.isnan(res["avg_inventory"])
    assert res["status"].startswith("unreachable: highest fill rate reached 0.9000")
    assert res["n_runs"] == 1  # one extension showed the fill rate no longer moves
    low = match_target({0.5: run(0.5)}, 0.2, None, values=("avg_inventory",))
    assert "lowest fill rate reached 0.5000" in low["status"]


def test_matched_table_compares_with_classic_and_the_bounds():
    rows = [{"policy": p, "target": "classic", "reached": True, "avg_inventory": inv,
             "total_cost": cost, "controllable_cost": op}
            for p, inv, cost, op in (("classic", 200.0, 1000.0, 100.0),
                                     ("stockcast", 150.0, 950.0, 60.0),
                                     ("oracle", 100.0, 900.0, 40.0))]
    df = matched_table(rows).set_index("policy")
    assert df.loc["stockcast", "avg_inventory_reduction_vs_classic_pct"] == pytest.approx(25.0)
    assert df.loc["stockcast", "total_cost_reduction_vs_classic_pct"] == pytest.approx(5.0)
    assert df.loc["stockcast", "controllable_cost_reduction_vs_classic_pct"] == pytest.approx(40.0)
    assert df.loc["stockcast", "avg_inventory_gap_to_oracle_pct"] == pytest.approx(50.0)
    assert df.loc["stockcast", "controllable_cost_gap_to_oracle"] == pytest.approx(20.0)
    assert "avg_inventory_gap_to_true_distribution_pct" not in df


def test_matched_targets_resolve_to_fill_rates():
    from stockcast.simulation.backtest import _target

    table = pd.DataFrame({"policy": ["classic", "oracle"], "fill_rate": [0.91, 0.97]})
    assert _target("classic", table, {"classic": 0.95, "stockcast": 0.93}) == ("classic", 0.91)
    assert _target("common", table, {"classic": 0.95, "stockcast": 0.93}) == ("common", 0.93)
    assert _target(0.9, table, {}) == ("0.9", 0.9)
    with pytest.raises(ValueError, match="not a simulated policy"):
        _target("lightgbm_opt", table, {})
    with pytest.raises(ValueError, match=r"not in \(0, 1\)"):
        _target(1.5, table, {})


def test_warmup_auto_is_the_longest_planned_store_lead_time():
    routes = Routes(np.array([1, 3, 5]), np.full(3, -1), np.zeros(3),
                    np.array([False, False, True]), np.ones(3, bool))
    win = Window(pd.DataFrame(), list(range(6)), 0, np.zeros((3, 6)), np.zeros((3, 0)),
                 Economics.constant(3), np.zeros(3), routes, np.zeros((3, 6), int),
                 np.zeros((0, 3, 6), int), [], 4)
    assert warmup_periods("auto", win) == 3  # the DC's lead time does not count
    assert warmup_periods(0, win) == 0
    with pytest.raises(ValueError, match="warmup"):
        warmup_periods(6, win)
    assert warmup_note("auto", win) is None
    # a window shorter than twice the lead time: auto is capped at half of it, with a note
    short = Window(pd.DataFrame(), list(range(4)), 0, np.zeros((3, 4)), np.zeros((3, 0)),
                   Economics.constant(3), np.zeros(3), routes, np.zeros((3, 4), int),
                   np.zeros((0, 3, 4), int), [], 4)
    assert warmup_periods("auto", short) == 2
    assert "warm-up capped at 2" in warmup_note("auto", short)
    assert warmup_note(1, short) is None


# ---------------------------------------------------------------- end to end
def test_backtest_end_to_end(smoke_train, tmp_path):
    from stockcast.simulation.backtest import run

    result, _ = smoke_train
    cfg = compose_config("backtest", ["experiment=smoke", f"model={result.model_version}",
                                      "max_series=4"], tmp_path)
    bt = run(cfg)
    assert mlflow.get_run(bt.run_id).info.status == "FINISHED"
    assert set(bt.table["policy"]) == {"stockcast", "classic", "seasonal_naive_ss", "oracle"}
    assert (tmp_path / "backtest_report.html").exists()
    assert {"store", "dc"} <= set(bt.by_echelon["echelon"])
    dc = bt.by_echelon[bt.by_echelon["echelon"] == "dc"]
    assert dc["fill_rate"].isna().all()
    assert set(bt.by_location["echelon"]) == {"store", "dc"}
    m = bt.matched.set_index("policy")
    assert m.loc["classic", "reached"]
    assert m.loc["classic", "avg_inventory_reduction_vs_classic_pct"] == pytest.approx(0.0)
    assert bt.diagnostics.set_index("policy").loc["stockcast", "coverage_80"] >= 0
    run_data = mlflow.get_run(bt.run_id).data
    assert "stockcast_dc_avg_inventory" in run_data.metrics
    assert "classic_matched_avg_inventory" in run_data.metrics
    text = summary_text(bt)
    assert "KPIs per echelon" in text and "matched fill rate" in text


def test_backtest_synthetic_true_distribution(tracking_uri, tmp_path):
    """On synthetic data the generator's true quantiles + the optimizer run as a policy
    (no model needed), and stockcast-like gaps to it are reported."""
    from stockcast.simulation.backtest import run

    cfg = compose_config("backtest", ["experiment=smoke", "data=synthetic", "max_series=6",
                                      "backtest.policies=[true_distribution,classic,oracle]"],
                         tmp_path)
    bt = run(cfg)
    assert set(bt.table["policy"]) == {"true_distribution", "classic", "oracle"}
    k = bt.table.set_index("policy")
    assert k.loc["oracle", "fill_rate"] >= k.loc["classic", "fill_rate"] - 1e-9
    # the true quantiles are calibrated by construction (integer quantiles of a count
    # distribution: the closed interval covers at least its nominal 80%, give or take noise)
    cov = bt.diagnostics.set_index("policy").loc["true_distribution", "coverage_80"]
    assert cov >= 0.7
    assert "avg_inventory_gap_to_true_distribution_pct" in bt.matched
    assert mlflow.get_run(bt.run_id).info.status == "FINISHED"
