"""Matched service: interpolation against a hand-made curve, grid extension and refinement,
unreachable targets, comparisons with classic and the bounds, targets, warm-up."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from stockcast.simulation.engine import Economics
from stockcast.simulation.matching import (
    answer_lines,
    bootstrap_intervals,
    match_target,
    matched_table,
    resolve_target,
    warmup_note,
    warmup_periods,
)
from stockcast.simulation.world import Routes, Window


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


def test_an_extension_the_plan_cannot_solve_ends_the_search_with_the_reason():
    from stockcast.errors import InfeasibleProblemError

    def run(k):  # plans up to knob 0.97; beyond it the solver gives up
        if k > 0.97:
            raise InfeasibleProblemError("network plan is unbounded")
        return {"fill_rate": 0.8 * k, "avg_inventory": 100 * k}

    pts = {k: run(k) for k in (0.5, 0.9)}
    res = match_target(pts, 0.95, run, expand=5, refine=2, values=("avg_inventory",))
    assert not res["reached"] and np.isnan(res["avg_inventory"])
    assert res["status"].startswith("unreachable: highest fill rate reached 0.7200")
    assert "beyond knob 0.9 the plan could not be solved (network plan is unbounded)" in res["status"]


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
    table = pd.DataFrame({"policy": ["classic", "oracle"], "fill_rate": [0.91, 0.97]})
    assert resolve_target("classic", table, {"classic": 0.95, "stockcast": 0.93}) == ("classic", 0.91)
    assert resolve_target("common", table, {"classic": 0.95, "stockcast": 0.93}) == ("common", 0.93)
    assert resolve_target(0.9, table, {}) == ("0.9", 0.9)
    with pytest.raises(ValueError, match="not a simulated policy"):
        resolve_target("lightgbm_opt", table, {})
    with pytest.raises(ValueError, match=r"not in \(0, 1\)"):
        resolve_target(1.5, table, {})


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


def test_matched_service_tunes_each_policy_and_reports_the_untuned_at_their_run():
    from stockcast.simulation.matching import matched_service

    # fill = knob / 1.05 (classic) and knob / 1.02 (stockcast); inventory 100 x knob
    slope = {"classic": 1.05, "stockcast": 1.02}
    calls = []

    def kpis_at(name, k):
        calls.append((name, k))
        return {"fill_rate": k / slope[name], "avg_inventory": 100 * k,
                "avg_inventory_value": 200 * k, "total_cost": 10 * k,
                "controllable_cost": k, "working_capital": 300 * k}

    evaluated = pd.DataFrame([
        {"policy": "stockcast", **kpis_at("stockcast", 0.9)},
        {"policy": "classic", **kpis_at("classic", 0.95)},
        {"policy": "oracle", "fill_rate": 0.99, "avg_inventory": 50.0,
         "avg_inventory_value": 100.0, "total_cost": 5.0, "controllable_cost": 0.5,
         "working_capital": 150.0}])
    calls.clear()
    found = matched_service(kpis_at, evaluated, {"classic": [0.8, 0.95, 0.99],
                                                 "stockcast": [0.8, 0.99]},
                            ["classic", 0.5], untuned={"oracle": "perfect foresight"},
                            expand=2, refine=3, tolerance=1e-4)
    assert found.targets == [("classic", pytest.approx(0.95 / 1.05)), ("0.5", 0.5)]
    m = found.matched.set_index(["target", "policy"])
    assert list(found.matched["policy"][:3]) == ["stockcast", "classic", "oracle"]
    assert m.loc[("classic", "classic"), "avg_inventory"] == pytest.approx(95.0)
    # stockcast reaches classic's fill rate 0.9048 at knob 0.9048 x 1.02: less inventory
    assert m.loc[("classic", "stockcast"), "avg_inventory"] == pytest.approx(
        100 * 0.95 / 1.05 * 1.02, rel=1e-3)
    assert m.loc[("classic", "stockcast"), "avg_inventory_reduction_vs_classic_pct"] == (
        pytest.approx(100 * (1 - 1.02 / 1.05), rel=1e-2))
    oracle = m.loc[("classic", "oracle")]
    assert oracle["reached"] and oracle["n_runs"] == 0 and oracle["avg_inventory"] == 50.0
    assert oracle["status"] == "perfect foresight, not tuned: fill 0.9900"
    # a target below every grid extends it downwards
    assert m.loc[("0.5", "classic"), "reached"] and m.loc[("0.5", "classic"), "n_runs"] >= 1
    assert ("oracle", 0.9) not in calls and all(n != "oracle" for n, _ in calls)
    assert set(found.curves["policy"]) == {"classic", "stockcast"}
    assert len(found.curves) == len(set(calls))  # every run is on the curves, once


def _untuned(policy, target="0.95", **kw):
    """A matched row read at the policy's main run (no bracketing knobs)."""
    return {"policy": policy, "target": target, "target_fill_rate": 0.95, "reached": True,
            "knob_a": np.nan, "knob_b": np.nan, "weight": np.nan, **kw}


def test_bootstrap_intervals_resample_item_locations_for_the_ratio_of_sums():
    """Half of classic's stock in every series: every replicate says 50% less (a zero-width
    interval); a policy that is better on some series only gets an interval around its
    point estimate; a row without its reference gets none."""
    per = {"classic": [10.0, 20.0, 30.0, 40.0], "half": [5.0, 10.0, 15.0, 20.0],
           "mixed": [1.0, 20.0, 30.0, 40.0], "alone": [1.0, 1.0, 1.0, 1.0]}
    rows = [_untuned(p, avg_inventory=sum(v),
                     avg_inventory_reduction_vs_classic_pct=100 * (100 - sum(v)) / 100)
            for p, v in per.items() if p != "alone"]
    rows.append(_untuned("alone", target="0.9", avg_inventory=4.0,
                         avg_inventory_reduction_vs_classic_pct=96.0))
    out = bootstrap_intervals(pd.DataFrame(rows),
                              lambda p, k: {"avg_inventory": np.asarray(per[p])},
                              n_boot=400, seed=1, comparisons=(
                                  ("classic", "avg_inventory",
                                   "avg_inventory_reduction_vs_classic_pct", "less"),))
    out = out.set_index("policy")
    col = "avg_inventory_reduction_vs_classic_pct"
    assert out.loc["half", f"{col}_lo"] == pytest.approx(50.0)
    assert out.loc["half", f"{col}_hi"] == pytest.approx(50.0)
    lo, hi = out.loc["mixed", f"{col}_lo"], out.loc["mixed", f"{col}_hi"]
    assert out.loc["mixed", col] == pytest.approx(9.0)
    assert 0.0 <= lo < 9.0 < hi
    assert np.isnan(out.loc["alone", f"{col}_lo"])  # no classic at its target


def test_answer_lines_state_each_target_and_when_classic_cannot_reach_it():
    col = "avg_inventory_reduction_vs_classic_pct"
    ccol = "controllable_cost_reduction_vs_classic_pct"
    m = pd.DataFrame([
        {"target": "classic", "target_fill_rate": 0.8, "policy": "stockcast", "reached": True,
         "avg_inventory": 60.0, "best_fill": 0.99, col: 40.0, f"{col}_lo": 35.0,
         f"{col}_hi": 45.0, ccol: 10.0},
        {"target": "classic", "target_fill_rate": 0.8, "policy": "classic", "reached": True,
         "avg_inventory": 100.0, "best_fill": 0.85, col: 0.0, ccol: 0.0},
        {"target": "classic", "target_fill_rate": 0.8, "policy": "true_distribution",
         "reached": True, "avg_inventory": 50.0, "best_fill": 0.99, col: 50.0},
        {"target": "0.95", "target_fill_rate": 0.95, "policy": "stockcast", "reached": True,
         "avg_inventory": 90.0, "best_fill": 0.99, col: np.nan},
        {"target": "0.95", "target_fill_rate": 0.95, "policy": "classic", "reached": False,
         "avg_inventory": np.nan, "best_fill": 0.85, "best_inventory": 130.0, col: np.nan},
        {"target": "0.98", "target_fill_rate": 0.98, "policy": "stockcast", "reached": False,
         "avg_inventory": np.nan, "best_fill": 0.97, col: np.nan},
        {"target": "0.98", "target_fill_rate": 0.98, "policy": "classic", "reached": False,
         "avg_inventory": np.nan, "best_fill": 0.85, "best_inventory": 130.0, col: np.nan},
    ])
    m = pd.concat([m, pd.DataFrame([
        {"target": "0.5", "target_fill_rate": 0.5, "policy": "stockcast", "reached": False,
         "avg_inventory": np.nan, "best_fill": 0.99, "fill_lo": 0.93, col: np.nan}])],
        ignore_index=True)
    lines = answer_lines(m)
    assert lines[0] == ("at classic's fill rate (0.800) stockcast holds 40.0% [35.0, 45.0] "
                        "less inventory than classic at 10.0% lower controllable cost; "
                        "1.20x the inventory of the true-distribution policy")
    assert lines[1] == ("at 95% fill stockcast holds 90 units; classic cannot reach it "
                        "(highest fill 0.850, holding 130 units there)")
    assert lines[2] == "at 98% fill: stockcast cannot reach it (highest fill 0.970)"
    # a target below the curve: the lowest knob already serves more
    assert lines[3] == ("at 50% fill: stockcast serves more even at its lowest knob (lowest "
                        "fill 0.930): no point at this target")
    assert answer_lines(m, policy="nobody") == []
