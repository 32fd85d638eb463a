"""Optimization: distributions, newsvendor (closed form vs CVXPY), network plan, pricing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.data.supply import SupplyTables, derive_supply, validate_supply
from stockcast.errors import DataValidationError, InfeasibleProblemError
from stockcast.optimization import (
    DECISION_COLUMNS,
    EmpiricalDemand,
    PlanConfig,
    Planner,
    QuantileFunction,
    ScenarioNewsvendor,
    SolverFailedError,
    closed_form,
    critical_ratio,
    newsvendor_quantity,
    plan,
    protection_samples,
)
from stockcast.optimization.cuts import cut_levels
from stockcast.optimization.network import NetworkCache, build_network

LEVELS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98])


# ------------------------------------------------------------------------------------------
# tiny worlds
# ------------------------------------------------------------------------------------------


def forecast(spec: dict[tuple[str, str], tuple[float, float]], horizon: int = 1,
             levels: np.ndarray = LEVELS, price: float | None = None) -> pd.DataFrame:
    """Normal-demand forecast rows: ``{(item, loc): (mean, std)}`` per step."""
    rows = []
    for (item, loc), (mu, sd) in spec.items():
        for h in range(1, horizon + 1):
            row = {"item_id": item, "location_id": loc, "horizon": h,
                   "forecast_origin": pd.Timestamp("2024-01-01"),
                   "period": pd.Timestamp("2024-01-01") + pd.DateOffset(months=h)}
            if price is not None:
                row["price"] = price
            q = np.maximum(mu + sd * stats.norm.ppf(levels), 0.0)
            row.update({f"q{lv:g}": v for lv, v in zip(levels, q, strict=True)})
            rows.append(row)
    return pd.DataFrame(rows)


def world(items=("A",), stores=("S1",), *, econ=None, suppliers=None, lanes=None,
          capacity=None) -> SupplyTables:
    """One DC feeding ``stores``; defaults p=10, c=4, h=0, g=0, s=1, no stock."""
    locs = ["DC1", *stores]
    capacity = capacity or {}
    locations = pd.DataFrame({
        "location_id": locs, "echelon": ["dc"] + ["store"] * len(stores),
        "parent_id": [None] + ["DC1"] * len(stores),
        "capacity": [capacity.get(loc, 1e6) for loc in locs]})
    rows = []
    for item in items:
        for loc in locs:
            row = {"item_id": item, "location_id": loc, "unit_cost": 4.0, "price": 10.0,
                   "holding_cost": 0.0, "shortage_cost": 0.0, "salvage_value": 1.0,
                   "on_hand": 0.0, "in_transit": 0.0}
            row.update((econ or {}).get((item, loc), {}))
            rows.append(row)
    sup_rows = suppliers if suppliers is not None else [
        {"supplier_id": "SUP1", "item_id": item} for item in items]
    sup = pd.DataFrame([{"unit_cost": 4.0, "lead_time_mean": 0.0, "lead_time_std": 0.0,
                         "reliability": 1.0, "capacity": 1e6, "min_order_qty": 0.0,
                         "ships_to": "all", **r} for r in sup_rows])
    lane_df = pd.DataFrame([{"transfer_cost": 0.5, "lead_time": 0.0, **r}
                            for r in (lanes or [])],
                           columns=["from_id", "to_id", "transfer_cost", "lead_time"])
    return SupplyTables(locations, pd.DataFrame(rows), sup, lane_df)


def rows(result, action: str | None = None, location: str | None = None) -> pd.DataFrame:
    d = result.decisions
    if action:
        d = d[d["action"] == action]
    if location:
        d = d[d["location_id"] == location]
    return d


BASE = {"n_scenarios": 400, "review_period": 1.0}


# ------------------------------------------------------------------------------------------
# distributions
# ------------------------------------------------------------------------------------------


def test_quantile_function_interpolates_with_exponential_tails():
    v = np.array([[10.0, 20.0, 40.0], [0.0, 0.0, 5.0]])
    q = QuantileFunction(np.array([0.1, 0.5, 0.9]), v)
    out = q.ppf(np.array([0.1, 0.3, 0.5, 0.9, 0.95, 0.99, 0.01]))
    np.testing.assert_allclose(out[0, :5], [10, 15, 20, 40, 40 + 50 * 0.1 * np.log(2)])
    assert out[0, 5] > out[0, 4] > out[0, 3]
    assert out[0, 6] == pytest.approx(max(0.0, 10 - 2.5 * np.log(10)))
    assert np.all(out >= 0) and np.all(np.diff(q.ppf(np.linspace(0.001, 0.999, 50)), axis=1) >= 0)
    np.testing.assert_allclose(q.ppf_rows(np.array([0.3, 0.9])), [15.0, 5.0])


def test_protection_period_sums_steps_and_mixes_lead_time():
    steps = np.zeros((1, 3, 2))
    steps[0, :, :] = [[10, 10], [20, 20], [40, 40]]  # point masses per step
    lv = np.array([0.25, 0.75])
    one = protection_samples(steps, lv, review_period=1.0, n_samples=64)
    np.testing.assert_allclose(one, 10.0)
    frac = protection_samples(steps, lv, review_period=1.0, lead_mean=1.5, n_samples=64)
    np.testing.assert_allclose(frac, 10 + 20 + 0.5 * 40)
    beyond = protection_samples(steps, lv, review_period=1.0, lead_mean=4.0, n_samples=64)
    np.testing.assert_allclose(beyond, 10 + 20 + 40 + 40 + 40)  # last step repeats
    spread = protection_samples(steps, lv, review_period=1.0, lead_mean=1.0, lead_std=0.5,
                                n_samples=256)
    assert spread.std() > 5 and np.all(np.diff(spread[0]) >= 0)
    # E cum(2 + 0.5 Z): 30 + 0.5 E(Z+) 40 - 0.5 E(Z-) 20 = 30 + 0.5 phi(0) 20
    assert spread.mean() == pytest.approx(30.0 + 10 * stats.norm.pdf(0), rel=0.01)


def test_stratified_scenarios_reproduce_the_forecast_quantiles():
    mu, sd = np.array([100.0, 50.0]), np.array([30.0, 5.0])
    values = mu[:, None] + sd[:, None] * stats.norm.ppf(LEVELS)[None, :]
    d = EmpiricalDemand(protection_samples(values[:, None, :], LEVELS, review_period=1.0,
                                           n_samples=2000, seed=3))
    for lv in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(d.interpolated(lv), mu + sd * stats.norm.ppf(lv), rtol=0.01)
    y = np.array([110.0, 40.0])
    brute = np.maximum(d.samples - y[:, None], 0).mean(axis=1)
    np.testing.assert_allclose(d.expected_shortage(y), brute)
    np.testing.assert_allclose(d.expected_leftover(y),
                               np.maximum(y[:, None] - d.samples, 0).mean(axis=1))


# ------------------------------------------------------------------------------------------
# newsvendor
# ------------------------------------------------------------------------------------------


def test_critical_ratio_textbook_forms():
    assert critical_ratio(10, 4, 0, 0, 1) == pytest.approx(6 / 9)
    assert critical_ratio(12, 5, 1, 2, 0) == pytest.approx(9 / 15)
    assert critical_ratio(10, 4, 0.5, 0, 4) == pytest.approx(6 / 6.5)  # carry-over: s = c
    assert critical_ratio(3, 4, 0, 0, 1) == 0.0
    with pytest.raises(InfeasibleProblemError, match="unbounded"):
        critical_ratio(1.0, 4.0, 0.0, 0.0, 3.0)


def test_textbook_normal_newsvendor_closed_form_and_cvxpy():
    """mu=100, sigma=30, p=10, c=4, s=1: y* = 100 + 30 z(2/3) = 112.92, profit 501.8."""
    values = 100 + 30 * stats.norm.ppf(LEVELS)
    d = EmpiricalDemand(protection_samples(values[None, None, :], LEVELS, review_period=1.0,
                                           n_samples=2000))
    econ = {k: np.array([v]) for k, v in dict(price=10.0, unit_cost=4.0, holding=0.0,
                                               shortage=0.0, salvage=1.0).items()}
    out = closed_form(d, **econ)
    assert out.position[0] == pytest.approx(112.92, abs=1.0)
    z = stats.norm.ppf(2 / 3)
    assert out.expected_profit[0] == pytest.approx(6 * 100 - 9 * 30 * stats.norm.pdf(z), abs=3)
    cont = newsvendor_quantity(QuantileFunction(LEVELS, values[None]), 2 / 3)
    assert cont[0] == pytest.approx(112.92, abs=0.5)
    lp = ScenarioNewsvendor(1, 2000).solve(d, **econ)
    assert lp.position[0] == pytest.approx(out.position[0], abs=1e-3)
    assert lp.expected_cost == pytest.approx(10 * 100 - out.expected_profit[0], rel=1e-6)


def test_scenario_lp_equals_closed_form_vectorized_and_reuses_compilation():
    rng = np.random.default_rng(0)
    n, s = 6, 50
    scen = rng.gamma(3.0, 20.0, (n, s))
    econ = dict(price=rng.uniform(8, 12, n), unit_cost=rng.uniform(3, 6, n),
                holding=rng.uniform(0, 1, n), shortage=rng.uniform(0, 2, n),
                salvage=rng.uniform(0, 2, n))
    on_hand = np.array([0, 10, 200, 0, 5, 0.0])
    d = EmpiricalDemand(np.sort(scen, axis=1))
    ref = closed_form(d, on_hand=on_hand, **econ)
    nv = ScenarioNewsvendor(n, s)
    assert nv.problem.is_dcp(dpp=True)
    sol = nv.solve(scen, on_hand=on_hand, **econ)
    np.testing.assert_allclose(sol.position, ref.position, atol=1e-4)
    assert sol.order[2] == pytest.approx(0.0, abs=1e-6)  # already above target
    sol2 = nv.solve(scen * 1.5, on_hand=on_hand, **econ)  # parameters only: no rebuild
    ref2 = closed_form(EmpiricalDemand(np.sort(scen * 1.5, axis=1)), on_hand=on_hand, **econ)
    np.testing.assert_allclose(sol2.position, ref2.position, atol=1e-4)
    assert sol2.stats["setup_time_s"] < 1.0


def test_budgeted_newsvendor_orders_less():
    scen = np.random.default_rng(1).gamma(4.0, 25.0, (3, 100))
    econ = dict(price=np.full(3, 10.0), unit_cost=np.full(3, 4.0), holding=np.zeros(3),
                shortage=np.zeros(3), salvage=np.ones(3))
    free = ScenarioNewsvendor(3, 100).solve(scen, **econ)
    capped = ScenarioNewsvendor(3, 100, budget=True).solve(scen, budget=500.0, **econ)
    assert capped.budget_binding
    assert 4.0 * capped.order.sum() == pytest.approx(500.0, rel=1e-5)
    assert capped.order.sum() < free.order.sum()


# ------------------------------------------------------------------------------------------
# network plan
# ------------------------------------------------------------------------------------------


def test_single_item_plan_orders_up_to_the_critical_quantile():
    fc = forecast({("A", "S1"): (100.0, 30.0)})
    sup = world(econ={("A", "S1"): {"on_hand": 20.0}})
    res = plan(fc, sup, BASE)
    order = rows(res, "order")
    assert len(order) == 1 and order["source"].iat[0] == "SUP1"
    values = 100 + 30 * stats.norm.ppf(LEVELS)
    d = EmpiricalDemand(protection_samples(values[None, None, :], LEVELS, review_period=1.0,
                                           n_samples=400))
    target = d.quantile(2 / 3)[0]
    assert order["target"].iat[0] == pytest.approx(target)
    assert order["quantity"].iat[0] == pytest.approx(target - 20.0, abs=1e-3)
    assert order["critical_ratio"].iat[0] == pytest.approx(2 / 3)
    assert target == pytest.approx(112.92, abs=1.5)
    assert list(res.decisions.columns) == DECISION_COLUMNS
    assert "q@CR0.667" in order["quantiles_used"].iat[0]
    assert res.stats["status"] == "optimal" and res.stats["solver"] == "CLARABEL"
    for key in ("solve_time_s", "setup_time_s", "n_variables", "n_constraints", "objective"):
        assert key in res.stats
    exact = plan(fc, sup, {**BASE, "cut_levels": "exact"})
    assert rows(exact, "order")["quantity"].iat[0] == pytest.approx(target - 20.0, abs=1e-3)
    assert res.summary["n_orders"] == 1 and 0 < res.summary["expected_fill_rate"] < 1


def test_plan_reuses_the_compiled_problem_and_checks_status():
    sup = world(econ={("A", "S1"): {"on_hand": 20.0}})
    planner = Planner({**BASE, "seed": 11})
    first = planner.plan(forecast({("A", "S1"): (90.0, 30.0)}), sup)
    again = planner.plan(forecast({("A", "S1"): (120.0, 30.0)}), sup)
    assert first.stats["status"] == "optimal" and first.stats["compiled_now"]
    assert not again.stats["compiled_now"] and planner.problems.built == 1
    assert again.stats["setup_time_s"] < 0.5
    # the compiled problems belong to the planner: a new one compiles its own
    other = Planner({**BASE, "seed": 11}).plan(forecast({("A", "S1"): (120.0, 30.0)}), sup)
    assert other.stats["compiled_now"]
    assert other.stats["objective"] == pytest.approx(again.stats["objective"], rel=1e-9)
    assert rows(again, "order")["quantity"].iat[0] > rows(first, "order")["quantity"].iat[0]
    with pytest.warns(UserWarning), pytest.raises(SolverFailedError, match="user_limit"):
        plan(forecast({("A", "S1"): (90.0, 30.0)}), sup,
             {**BASE, "solver_options": {"max_iter": 1}})


def test_derived_supply_end_to_end_with_moq_and_disruption():
    rng = np.random.default_rng(4)
    keys = pd.DataFrame([{"item_id": f"I{i}", "location_id": f"L{j}",
                          "demand": float(rng.gamma(3, 15)), "price": 8.0 + i}
                         for i in range(4) for j in range(6)])
    sup = derive_supply(keys, {"n_dcs": 2, "seed": 2, "suppliers_per_item": [3, 3]}, freq="MS")
    spec = {(r.item_id, r.location_id): (r.demand, 0.3 * r.demand)
            for r in keys.itertuples()}
    res = plan(forecast(spec, horizon=3), sup, {
        **BASE, "price_elasticity": -2.0, "moq": True,
        "disruptions": [{"supplier_id": "SUP_regional", "down": True}]})
    assert res.stats["mip"] and res.stats["status"] == "optimal"
    assert {"order", "transfer"} <= set(res.decisions["action"])
    assert res.decisions["alternative"].str.len().gt(0).all()
    assert res.decisions.query("action != 'none'")["reason"].str.len().gt(0).all()
    assert res.disruptions[0].cost >= -1e-6 * abs(res.disruptions[0].objective_base)
    assert res.summary["n_item_locations"] == 24


def test_replans_at_another_stock_reuse_the_graph_and_equal_a_fresh_plan():
    rng = np.random.default_rng(5)
    keys = pd.DataFrame([{"item_id": f"I{i}", "location_id": f"L{j}",
                          "demand": float(rng.gamma(3, 15)), "price": 8.0 + i}
                         for i in range(3) for j in range(5)])
    sup = derive_supply(keys, {"n_dcs": 2, "seed": 3}, freq="MS")
    fc = forecast({(r.item_id, r.location_id): (r.demand, 0.3 * r.demand)
                   for r in keys.itertuples()}, horizon=2)
    cfg = {**BASE, "price_elasticity": -2.0, "disruptions": []}
    planner, graphs = Planner(cfg), NetworkCache()
    costs = PlanConfig.from_dict(cfg).cost_model()
    keys = fc[["item_id", "location_id"]].drop_duplicates()
    for scale in (0.0, 1.0, 3.0, 1.0):
        # stock moves between reviews: some nodes empty (their lanes close), others in excess
        stock = rng.gamma(2.0, 20.0 * scale, len(sup.economics)) * (rng.random(
            len(sup.economics)) < 0.6)
        tables = replace(sup, economics=sup.economics.assign(
            on_hand=stock, in_transit=np.round(stock / 3)))
        cached = graphs.build(keys, validate_supply(tables), costs)
        fresh = build_network(keys, validate_supply(tables), costs)
        for part in ("nodes", "arcs", "lanes", "groups", "locations"):
            pd.testing.assert_frame_equal(getattr(cached, part), getattr(fresh, part),
                                          check_dtype=False)
        res, ref = planner.plan(fc, tables), plan(fc, tables, cfg)
        assert res.stats["objective"] == pytest.approx(ref.stats["objective"], rel=1e-7)
        pd.testing.assert_frame_equal(res.decisions, ref.decisions)
    assert planner.networks.built == graphs.built == 1 and len(planner.networks) == 1
    # a changed cost is a new graph, not a stale one
    dearer = replace(sup, economics=sup.economics.assign(
        holding_cost=sup.economics["holding_cost"] + 0.5))
    a, b = planner.plan(fc, dearer), plan(fc, dearer, cfg)
    assert planner.networks.built == 2
    assert a.stats["objective"] == pytest.approx(b.stats["objective"], rel=1e-7)
    # without the texts: the same decisions, alternative and reason left empty
    lean = plan(fc, dearer, {**cfg, "explain": False})
    pd.testing.assert_frame_equal(lean.decisions.drop(columns=["alternative", "reason"]),
                                  b.decisions.drop(columns=["alternative", "reason"]))
    assert (lean.decisions[["alternative", "reason"]] == "").all().all()
    assert b.decisions["reason"].str.len().gt(0).all()


def test_cut_levels_bracket_the_critical_ratio():
    lv = cut_levels(np.array([0.3, 0.9]), 100)
    assert np.all((lv >= 0) & (lv <= 1))
    assert {0.29, 0.30} <= set(np.round(lv[0], 10)) and {0.89, 0.90} <= set(np.round(lv[1], 10))
    assert lv[:, 0].max() == 0 and lv[:, -1].min() == 1


def two_stores(lateral_cost: float, **kw) -> tuple[pd.DataFrame, SupplyTables]:
    fc = forecast({("A", "S1"): (100.0, 20.0), ("A", "S2"): (100.0, 20.0)})
    sup = world(stores=("S1", "S2"),
                econ={("A", "S1"): {"on_hand": 400.0}, ("A", "S2"): {"on_hand": 0.0}},
                lanes=[{"from_id": "S1", "to_id": "S2", "transfer_cost": lateral_cost}], **kw)
    return fc, sup


def test_transfer_chosen_over_order_when_cheaper():
    fc, sup = two_stores(0.5)
    res = plan(fc, sup, BASE)
    t = rows(res, "transfer", "S2")
    assert len(t) == 1 and t["source"].iat[0] == "S1"
    assert rows(res, "order", "S2").empty
    assert "transfer from S1 at 0.5/u vs order from SUP1 at 4/u" in t["alternative"].iat[0]
    # the sender's surplus costs 0.5/u + its salvage 1/u: ratio (10 - 1.5) / 9, exact cut
    exact = plan(fc, sup, {**BASE, "cut_levels": "exact"})
    assert t["position"].iat[0] == pytest.approx(rows(exact, "transfer")["position"].iat[0],
                                                 abs=1e-3)
    assert t["position"].iat[0] == pytest.approx(100 + 20 * stats.norm.ppf(8.5 / 9), abs=1.0)
    assert "above the order-up-to target" in t["reason"].iat[0]


def test_order_chosen_over_transfer_when_transfer_is_dearer():
    fc, sup = two_stores(6.0)
    res = plan(fc, sup, BASE)
    assert rows(res, "transfer").empty
    o = rows(res, "order", "S2")
    assert len(o) == 1 and "vs transfer from S1 at 6/u" in o["alternative"].iat[0]


def test_budget_binding_reduces_orders():
    spec = {("A", "S1"): (100.0, 30.0), ("B", "S1"): (50.0, 10.0)}
    sup = world(items=("A", "B"))
    free = plan(forecast(spec), sup, BASE)
    spend = free.summary["purchase_spend"]
    capped = plan(forecast(spec), sup, {**BASE, "budget": 0.5 * spend})
    assert capped.summary["purchase_spend"] == pytest.approx(0.5 * spend, rel=1e-5)
    assert capped.summary["order_units"] < free.summary["order_units"]
    assert "budget" in capped.summary["binding_constraints"]
    assert capped.summary["budget_shadow_price"] > 0
    assert rows(capped, "order")["binding_constraints"].str.contains("budget").all()
    assert capped.summary["total_expected_cost"] > free.summary["total_expected_cost"]


def test_location_capacity_limits_position():
    fc = forecast({("A", "S1"): (100.0, 30.0), ("B", "S1"): (100.0, 30.0)})
    res = plan(fc, world(items=("A", "B"), capacity={"S1": 150.0}), BASE)
    assert res.nodes.query("location_id == 'S1'")["position"].sum() == pytest.approx(150.0,
                                                                                     rel=1e-5)
    assert "location_capacity[S1]" in res.summary["binding_constraints"]
    assert rows(res, "order")["binding_constraints"].str.contains(
        r"location_capacity\[S1\]").all()


def test_supplier_capacity_splits_sourcing():
    sup = world(suppliers=[{"supplier_id": "CHEAP", "item_id": "A", "unit_cost": 3.0,
                            "capacity": 40.0},
                           {"supplier_id": "DEAR", "item_id": "A", "unit_cost": 5.0}])
    res = plan(forecast({("A", "S1"): (100.0, 30.0)}), sup, BASE)
    o = rows(res, "order").set_index("source")
    assert o.loc["CHEAP", "quantity"] == pytest.approx(40.0, rel=1e-5)
    assert o.loc["DEAR", "quantity"] > 10
    assert "supplier_capacity[CHEAP/A]" in o.loc["CHEAP", "binding_constraints"]


def test_moq_makes_a_mip_with_all_or_nothing_orders():
    sup = world(suppliers=[{"supplier_id": "BULK", "item_id": "A", "unit_cost": 3.0,
                            "min_order_qty": 150.0},
                           {"supplier_id": "LOCAL", "item_id": "A", "unit_cost": 4.5}])
    fc = forecast({("A", "S1"): (60.0, 10.0)})
    lp = plan(fc, sup, {**BASE, "moq": False})
    assert set(rows(lp, "order")["source"]) == {"BULK"}
    assert rows(lp, "order")["quantity"].iat[0] < 150
    mip = plan(fc, sup, {**BASE, "moq": True})
    assert mip.stats["mip"] and mip.stats["solver"] == "HIGHS"
    q = rows(mip, "order").set_index("source")["quantity"]
    assert q.get("BULK", 0.0) == 0.0 or q["BULK"] >= 150 - 1e-6
    assert mip.summary["total_expected_cost"] >= lp.summary["total_expected_cost"] - 1e-6
    big = plan(forecast({("A", "S1"): (200.0, 10.0)}), sup, {**BASE, "moq": True})
    assert "BULK" in set(rows(big, "order")["source"])


@pytest.mark.parametrize(
    ("good", "bad", "winner"),
    [
        ({"unit_cost": 4.0}, {"unit_cost": 4.4}, "GOOD"),
        ({"lead_time_mean": 0.0}, {"lead_time_mean": 3.0}, "GOOD"),
        ({"reliability": 0.99}, {"reliability": 0.6}, "GOOD"),
        ({"lead_time_std": 0.0}, {"lead_time_std": 2.0}, "GOOD"),
    ],
)
def test_supplier_choice_by_cost_lead_time_and_reliability(good, bad, winner):
    sup = world(econ={("A", "S1"): {"holding_cost": 0.1}},
                suppliers=[{"supplier_id": "GOOD", "item_id": "A", **good},
                           {"supplier_id": "BAD", "item_id": "A", **bad}])
    res = plan(forecast({("A", "S1"): (100.0, 20.0)}), sup, BASE)
    o = rows(res, "order")
    assert list(o["source"]) == [winner]
    assert "vs order from BAD" in o["alternative"].iat[0]


def test_disruption_replan_costs_and_switches_supplier():
    sup = world(stores=("S1", "S2"),
                suppliers=[{"supplier_id": "MAIN", "item_id": "A", "unit_cost": 4.0,
                             "capacity": 250.0},
                           {"supplier_id": "BACKUP", "item_id": "A", "unit_cost": 5.0,
                            "lead_time_mean": 1.0}])
    fc = forecast({("A", "S1"): (100.0, 20.0), ("A", "S2"): (80.0, 20.0)})
    res = plan(fc, sup, {**BASE, "disruptions": [
        {"supplier_id": "MAIN", "down": True},
        {"supplier_id": "MAIN", "lead_time_factor": 1.0, "capacity_factor": 0.5},
    ]})
    assert set(rows(res, "order")["source"]) == {"MAIN"}
    down = res.disruptions[0]
    assert down.label == "MAIN down" and down.cost > 0
    changed = down.changed_sourcing.set_index(["location_id", "source"])
    assert changed.loc[("S1", "MAIN"), "quantity_after"] == 0
    assert changed.loc[("S1", "BACKUP"), "quantity_after"] > 0
    assert set(rows_of(down.decisions, "order")["source"]) == {"BACKUP"}
    half = res.disruptions[1]
    assert 0 < half.cost < down.cost


def _lead_time_world(backup_cost: dict[str, float]) -> SupplyTables:
    items = tuple(backup_cost)
    return world(items=items, econ={(i, "S1"): {"holding_cost": 0.1} for i in items},
                 suppliers=[*({"supplier_id": "MAIN", "item_id": i, "lead_time_mean": 1.0}
                              for i in items),
                            *({"supplier_id": "BACKUP", "item_id": i, "unit_cost": c}
                              for i, c in backup_cost.items())])


def test_slowed_supplier_is_kept_where_it_still_wins_and_the_note_says_by_how_much():
    # MAIN (lead 1, landed 4.1) beats BACKUP for both items; at lead x3 its landed cost is
    # 4.3 (holding 0.1 x 2 more periods): item A moves to BACKUP (4.2), item C keeps MAIN
    # (BACKUP 6.0). The outage moves both.
    sup = _lead_time_world({"A": 4.2, "C": 6.0})
    fc = forecast({("A", "S1"): (100.0, 20.0), ("C", "S1"): (100.0, 20.0)}, horizon=4)
    res = plan(fc, sup, {**BASE, "disruptions": [{"supplier_id": "MAIN", "down": True},
                                                 {"supplier_id": "MAIN",
                                                  "lead_time_factor": 3.0}]})
    down, slow = res.disruptions

    def ordered(d: pd.DataFrame, item: str, source: str) -> float:
        o = d[(d["action"] == "order") & (d["item_id"] == item) & (d["source"] == source)]
        return float(o["quantity"].sum())

    assert ordered(res.decisions, "A", "MAIN") > 0 and ordered(res.decisions, "C", "MAIN") > 0
    assert ordered(slow.decisions, "A", "BACKUP") > 0
    assert ordered(slow.decisions, "A", "MAIN") < 1e-3
    assert ordered(slow.decisions, "C", "MAIN") > 0 and ordered(down.decisions, "C", "BACKUP") > 0
    assert 0 < slow.cost < down.cost
    assert slow.note == ("lead time x3 raises MAIN's landed cost by 0.2/u on average where it "
                         "supplied (pipeline and spread holding; each item-location keeps its "
                         "base protection period)")
    assert not down.note


def test_slowed_supplier_beaten_everywhere_equals_the_outage_and_says_why():
    sup = _lead_time_world({"A": 4.15})
    fc = forecast({("A", "S1"): (100.0, 20.0)}, horizon=4)
    res = plan(fc, sup, {**BASE, "disruptions": [{"supplier_id": "MAIN", "down": True},
                                                 {"supplier_id": "MAIN",
                                                  "lead_time_factor": 3.0}]})
    down, slow = res.disruptions
    assert slow.cost == pytest.approx(down.cost, rel=1e-6) and down.cost > 0
    np.testing.assert_allclose(slow.changed_sourcing["quantity_after"],
                               down.changed_sourcing["quantity_after"], rtol=1e-6)
    assert slow.note.startswith("same plan as 'MAIN down'")
    assert "lead time x3 raises MAIN's landed cost by 0.2/u" in slow.note
    assert "it now exceeds the alternative's for every item-location it supplied" in slow.note
    assert "A@S1: 4.3/u vs BACKUP 4.15/u" in slow.note
    assert "equals the outage" in slow.note


def rows_of(decisions: pd.DataFrame, action: str) -> pd.DataFrame:
    return decisions[decisions["action"] == action]


def test_markdown_recommended_for_excess_stock():
    fc = forecast({("A", "S1"): (100.0, 20.0), ("A", "S2"): (100.0, 20.0)})
    sup = world(stores=("S1", "S2"), econ={("A", "S1"): {"on_hand": 500.0, "salvage_value": 1.0},
                                           ("A", "S2"): {"on_hand": 90.0}})
    res = plan(fc, sup, {**BASE, "price_elasticity": -2.0, "markdowns": [0.1, 0.2, 0.3]})
    md = rows(res, "markdown")
    assert list(md["location_id"]) == ["S1"]
    assert md["price"].iat[0] < 10.0
    assert "excess stock" in md.loc[md.index[0], "reason"]
    assert "vs list 10" in md["alternative"].iat[0]
    assert rows(res, location="S2")["price"].eq(10.0).all()  # not excess: list price
    assert res.summary["n_markdowns"] == 1 and res.summary["n_excess"] == 1


def normal_profit(p: float, mu: float, sd: float, c: float, s: float) -> float:
    cu, co = p - c, c - s
    z = stats.norm.ppf(cu / (cu + co))
    return (p - c) * mu - (cu + co) * sd * stats.norm.pdf(z)


def test_pricing_picks_the_profit_maximizing_price_on_known_elasticity():
    prices, c, s, eps = [10.0, 9.0, 8.0, 7.0], 6.0, 3.0, -4.0
    mu = {p: 100.0 * (p / 10.0) ** eps for p in prices}
    expected = {p: normal_profit(p, mu[p], 0.2 * mu[p], c, s) for p in prices}
    best = max(expected, key=expected.get)
    assert best == 8.0
    fc = forecast({("A", "S1"): (mu[10.0], 0.2 * mu[10.0])})
    price_fc = pd.concat([forecast({("A", "S1"): (mu[p], 0.2 * mu[p])}, price=p)
                          for p in prices[1:]], ignore_index=True)
    sup = world(econ={("A", "S1"): {"unit_cost": c, "salvage_value": s}},
                suppliers=[{"supplier_id": "SUP1", "item_id": "A", "unit_cost": c}])
    res = plan(fc, sup, {**BASE, "pricing_scope": "all"}, price_forecasts=price_fc)
    assert res.nodes.loc[0, "price"] == pytest.approx(best)
    got = res.pricing.profit[0]
    np.testing.assert_allclose(got, [expected[p] for p in prices], rtol=0.02)
    md = rows(res, "markdown")
    assert md["price"].iat[0] == 8.0 and "higher expected profit" in md["reason"].iat[0]
    excess_only = plan(fc, sup, BASE, price_forecasts=price_fc)
    assert rows(excess_only, "markdown").empty


def test_network_safety_stock_and_service_floor():
    spec = {("A", "S1"): (100.0, 30.0), ("A", "S2"): (100.0, 30.0)}
    sup = world(stores=("S1", "S2"),
                econ={("A", "S1"): {"price": 5.0}, ("A", "S2"): {"price": 5.0}})
    base = plan(forecast(spec), sup, BASE)
    ss = plan(forecast(spec), sup, {**BASE, "network_service_level": 0.95})
    pooled = 200 + stats.norm.ppf(0.95) * 30 * np.sqrt(2)
    assert ss.nodes["position"].sum() == pytest.approx(pooled, rel=0.02)
    assert ss.nodes["position"].sum() > base.nodes["position"].sum()
    assert "network_safety_stock[A]" in ss.summary["binding_constraints"]
    floor = plan(forecast(spec), sup, {**BASE, "min_service_level": 0.9})
    pos = floor.nodes.query("demand")["position"].to_numpy()
    assert np.all(pos >= 100 + 30 * stats.norm.ppf(0.9) - 1.5)


def test_dc_cross_dock_path_sets_the_protection_period():
    sup = world(suppliers=[{"supplier_id": "BULK", "item_id": "A", "unit_cost": 3.0,
                            "ships_to": "DC1", "lead_time_mean": 2.0}],
                lanes=[{"from_id": "DC1", "to_id": "S1", "transfer_cost": 0.2,
                        "lead_time": 1.0}])
    res = plan(forecast({("A", "S1"): (50.0, 10.0)}, horizon=4), sup, BASE)
    node = res.nodes.query("location_id == 'S1'").iloc[0]
    assert node["ref_source"] == "BULK via DC1" and node["ref_lead_mean"] == 3.0
    assert rows(res, "order")["location_id"].tolist() == ["DC1"]
    t = rows(res, "transfer")
    assert t["source"].tolist() == ["DC1"] and "P=4" in t["quantiles_used"].iat[0]
    assert t["quantity"].iat[0] == pytest.approx(rows(res, "order")["quantity"].iat[0],
                                                 rel=1e-5)


def test_none_rows_explain_themselves():
    fc = forecast({("A", "S1"): (100.0, 30.0)})
    res = plan(fc, world(econ={("A", "S1"): {"on_hand": 400.0}}), BASE)
    none = rows(res, "none")
    assert len(none) == 1 and none["quantity"].iat[0] == 0
    assert "covers the order-up-to target" in none["reason"].iat[0]
    assert "not needed" in none["alternative"].iat[0]


# ------------------------------------------------------------------------------------------
# infeasible and bad inputs
# ------------------------------------------------------------------------------------------


def test_capacity_below_committed_stock_raises_naming_location_and_items():
    sup = world(items=("A", "B"), capacity={"S1": 100.0},
                econ={("A", "S1"): {"in_transit": 80.0}, ("B", "S1"): {"on_hand": 60.0}})
    fc = forecast({("A", "S1"): (50.0, 5.0), ("B", "S1"): (50.0, 5.0)})
    with pytest.raises(InfeasibleProblemError,
                       match=r"location capacity at S1.*140.*exceeds capacity 100.*items: B, A"):
        plan(fc, sup, BASE)


def test_budget_that_cannot_cover_minimum_orders_raises():
    sup = world(items=("A", "B"))
    fc = forecast({("A", "S1"): (100.0, 10.0), ("B", "S1"): (10.0, 1.0)})
    with pytest.raises(InfeasibleProblemError,
                       match=r"budget 50 cannot cover the minimum orders needed for "
                             r"min_service_level.*items: A"):
        plan(fc, sup, {**BASE, "budget": 50.0, "min_service_level": 0.9})


def test_supplier_capacity_below_required_stock_raises():
    sup = world(suppliers=[{"supplier_id": "SUP1", "item_id": "A", "capacity": 5.0}])
    with pytest.raises(InfeasibleProblemError, match=r"supplier capacity for items: A"):
        plan(forecast({("A", "S1"): (100.0, 10.0)}), sup,
             {**BASE, "network_service_level": 0.9})


def test_infeasible_combination_found_by_elastic_diagnosis():
    sup = world(stores=("S1", "S2"), capacity={"S1": 50.0, "S2": 50.0, "DC1": 10.0})
    fc = forecast({("A", "S1"): (100.0, 10.0), ("A", "S2"): (100.0, 10.0)})
    with pytest.raises(InfeasibleProblemError, match=r"infeasible: .*location_capacity at"):
        plan(fc, sup, {**BASE, "network_service_level": 0.9})


def test_bad_forecast_and_missing_economics_raise_data_errors():
    fc = forecast({("A", "S1"): (100.0, 10.0)})
    crossed = fc.copy()
    crossed.loc[0, "q0.9"] = 1.0
    with pytest.raises(DataValidationError, match=r"forecast.*quantiles_monotone.*rows: 0"):
        plan(crossed, world(), BASE)
    unknown = forecast({("A", "S9"): (100.0, 10.0)})
    with pytest.raises(DataValidationError, match=r"forecast.location_id: economics_row.*A@S9"):
        plan(unknown, world(), BASE)
    gap = forecast({("A", "S1"): (100.0, 10.0)}, horizon=3)
    with pytest.raises(DataValidationError, match="complete_horizons"):
        plan(gap[gap["horizon"] != 2], world(), BASE)
    bad_sup = world()
    bad_sup.economics.loc[0, "holding_cost"] = -1.0
    with pytest.raises(DataValidationError, match=r"economics.holding_cost.*rows: 0"):
        plan(fc, bad_sup, BASE)


def test_plan_config_from_dict_validates():
    cfg = PlanConfig.from_dict({"budget": 10, "disruptions": [{"supplier_id": "X",
                                                                "down": True}],
                                "markdowns": [0.2]})
    assert cfg.disruptions[0].label == "X down" and cfg.markdowns == (0.2,)
    with pytest.raises(ValueError, match="unknown PlanConfig keys"):
        PlanConfig.from_dict({"budgett": 1})
    with pytest.raises(ValueError, match="min_service_level"):
        PlanConfig.from_dict({"min_service_level": 1.5})
    with pytest.raises(ValueError, match="supplies none"):
        plan(forecast({("A", "S1"): (10.0, 1.0)}), world(),
             {**BASE, "disruptions": [{"supplier_id": "NOPE", "down": True}]})
