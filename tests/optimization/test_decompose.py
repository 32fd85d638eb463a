"""The plan decomposed by item on a Dask LocalCluster equals the single LP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.data.supply import derive_supply, validate_supply
from stockcast.optimization import Planner, plan
from stockcast.optimization.decompose import (
    BlockPlanner,
    block_tables,
    decompose_mode,
    item_blocks,
    should_decompose,
    split_tables,
    storage_shares,
)
from stockcast.optimization.plan import plan_with_disruptions
from stockcast.optimization.planning import PlanConfig

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def network(n_items: int = 6, n_stores: int = 8, seed: int = 3, **supply):
    rng = np.random.default_rng(seed)
    keys = pd.DataFrame([{"item_id": f"I{i}", "location_id": f"S{j}",
                          "demand": float(rng.gamma(3, 15)), "price": 8.0 + i}
                         for i in range(n_items) for j in range(n_stores)])
    sup = derive_supply(keys, {"n_dcs": 2, "seed": seed, "periods_per_year": 52, **supply})
    rows = []
    for r in keys.itertuples():
        for h in (1, 2, 3):
            q = np.maximum(r.demand * (1 + 0.35 * stats.norm.ppf(LEVELS)), 0.0)
            rows.append({"item_id": r.item_id, "location_id": r.location_id, "horizon": h,
                         "forecast_origin": pd.Timestamp("2024-01-01"),
                         **{f"q{lv:g}": v for lv, v in zip(LEVELS, q, strict=True)}})
    return pd.DataFrame(rows), sup


BASE = {"n_scenarios": 64, "moq": False, "price_elasticity": -2.0, "pricing_scope": "all"}


def budget_of(fc, sup, share: float = 0.6) -> float:
    free = plan(fc, sup, BASE)
    return share * (free.summary["purchase_spend"] + free.summary["transfer_spend"])


def test_decomposed_plan_equals_the_single_lp_under_a_binding_budget(client):
    fc, sup = network()
    cfg = {**BASE, "budget": budget_of(fc, sup), "decompose": False}
    single = plan(fc, sup, cfg)
    assert "budget" in single.summary["binding_constraints"]
    dec = Planner({**cfg, "decompose": True, "block_size": 16}, client=client).plan(fc, sup)
    st = dec.stats
    assert st["decomposed"] and st["n_blocks"] >= 3 and st["status"] == "optimal"
    assert 1 <= st["n_rounds"] <= 3
    assert dec.summary["n_item_locations"] == single.summary["n_item_locations"] == 48
    gap = (st["objective"] - single.stats["objective"]) / abs(single.stats["objective"])
    assert -1e-6 <= gap <= 0.005  # feasible for the same problem, so never below the LP
    spend = dec.summary["purchase_spend"] + dec.summary["transfer_spend"]
    assert spend <= cfg["budget"] * (1 + 1e-6)
    assert "budget" in dec.summary["binding_constraints"]
    assert st["lagrangian_bound"] <= single.stats["objective"] * (1 + 1e-5)
    assert st["probes"] and st["probes"][0][0] > 0  # probed from the pooled closed form
    keys = ["item_id", "location_id"]
    assert set(map(tuple, dec.nodes[keys].to_numpy())) == set(
        map(tuple, single.nodes[keys].to_numpy()))
    assert dec.pricing.price.shape == (48,)


def test_decomposed_plan_respects_shared_storage(client):
    fc, sup = network(store_capacity_factor=3.0, dc_capacity_factor=1.5)
    cfg = {**BASE, "decompose": True, "block_size": 16}
    dec = Planner(cfg, client=client).plan(fc, sup)
    single = plan(fc, sup, {**cfg, "decompose": False})
    assert any(b.startswith("location_capacity[") for b in
               single.summary["binding_constraints"])
    caps = sup.locations.set_index("location_id")["capacity"]
    held = dec.nodes.groupby("location_id")["position"].sum()
    assert (held <= caps.reindex(held.index) * (1 + 1e-6) + 1e-6).all()
    # storage shares are approximate where storage binds (decompose module docstring)
    assert dec.stats["storage_binding_blocks"] >= 1
    gap = (dec.stats["objective"] - single.stats["objective"]) / abs(single.stats["objective"])
    assert -1e-6 <= gap <= 0.10


def test_decomposed_disruption_replans_the_main_supplier(client):
    fc, sup = network(n_items=4, n_stores=6)
    cfg = {**BASE, "budget": budget_of(fc, sup, 0.8), "decompose": True, "block_size": 12,
           "disruptions": [{"supplier_id": "auto", "down": True}],
           "keep_block_problems": False}  # the re-plan rebuilds its block's problem
    res = plan_with_disruptions(fc, sup, cfg, planner=Planner(cfg, client=client))
    (down,) = res.disruptions
    orders = res.decisions[res.decisions["action"] == "order"]
    main = orders.groupby("source")["quantity"].sum().idxmax()
    assert down.label == f"{main} down" and down.cost > 0
    assert not (down.decisions.query("action == 'order'")["source"] == main).any()


def test_blocks_modes_and_storage_shares():
    fc = pd.DataFrame({"item_id": ["A"] * 5 + ["B"] * 3 + ["C"] * 2,
                       "location_id": [f"S{i}" for i in range(5)] + ["S0", "S1", "S2"]
                       + ["S0", "S1"]})
    blocks = item_blocks(fc, block_size=5, min_blocks=2)
    assert sorted(map(sorted, blocks)) == [["A"], ["B", "C"]]
    assert item_blocks(fc, block_size=100) == [["A", "B", "C"]]
    assert decompose_mode(True) == "true" and decompose_mode("AUTO") == "auto"
    with pytest.raises(ValueError, match="optimizer.values.decompose"):
        decompose_mode("sometimes")
    with pytest.raises(ValueError, match="decompose"):
        PlanConfig.from_dict({"decompose": "sometimes"})
    auto = PlanConfig(decompose="auto", decompose_min_item_locations=100)
    assert should_decompose(auto, 100, 5) and not should_decompose(auto, 99, 5)
    assert not should_decompose(PlanConfig(decompose=True), 10, 1)  # one item: nothing to split
    committed = np.array([[2.0, 0.0], [1.0, 1.0]])
    wanted = np.array([[6.0, 0.0], [3.0, 5.0]])
    shares = storage_shares(np.array([10.0, 4.0]), committed, wanted)
    np.testing.assert_allclose(shares.sum(axis=0), [10.0, 4.0])
    assert (shares >= committed).all()
    np.testing.assert_allclose(shares[:, 0], [2 + 7 * 4 / 6, 1 + 7 * 2 / 6])


def test_split_tables_and_lazy_storage_rows():
    fc, sup = network(n_items=4, n_stores=5)
    tables = validate_supply(sup)
    blocks = item_blocks(fc, block_size=10)
    parts = split_tables(fc, tables, None, blocks)
    for items, (bfc, bsup, _) in zip(blocks, parts, strict=True):
        one = block_tables(fc, tables, None, items)[0]
        pd.testing.assert_frame_equal(bfc, one)
        assert set(bfc["item_id"]) == set(items) == set(bsup.economics["item_id"])
    cfg = PlanConfig.from_dict(BASE)
    block = BlockPlanner(*parts[0][:2], cfg)
    n_locs = len(tables.locations)
    roomy = block.solve(None, None, np.full(n_locs, 1e9))
    assert not block._storage_rows and not np.any(roomy.loc_dual)
    _, held, _ = block.storage_request(None)
    busy = int(np.argmax(roomy.loc_use - held))  # where the block stocks up most
    tight = np.full(n_locs, 1e9)
    tight[busy] = held[busy] + 0.5 * (roomy.loc_use[busy] - held[busy])
    out = block.solve(None, None, tight)
    assert block._storage_rows  # the check after the solve added the storage rows
    assert out.loc_use[busy] <= tight[busy] * (1 + 1e-6) + 1e-6
    assert out.objective > roomy.objective
    curve = block.pooled_spend_curve(np.array([0.0, 0.1, 1.0, 100.0]))
    assert np.all(np.diff(curve) <= 1e-9) and curve[-1] == pytest.approx(0.0, abs=1e-9)


def test_decomposed_plan_with_a_budget_that_does_not_bind(client):
    fc, sup = network()
    cfg = {**BASE, "budget": budget_of(fc, sup, 1.05), "decompose": False}
    single = plan(fc, sup, cfg)
    assert "budget" not in single.summary["binding_constraints"]
    dec = Planner({**cfg, "decompose": True, "block_size": 16}, client=client).plan(fc, sup)
    st = dec.stats
    assert st["n_rounds"] == 1 and st["rounds"][0]["price"] == 0.0  # the free plan fits
    assert st["objective"] == pytest.approx(single.stats["objective"], rel=1e-5)
    assert st["lagrangian_bound"] == pytest.approx(st["objective"])


def _outcome(dual):
    from stockcast.optimization.decompose import BlockOutcome

    return BlockOutcome(0.0, 0.0, dual, np.zeros(1), None, 0.0, 0.0, "optimal", False)


def test_correction_equalizes_budget_duals_of_blocks_with_linear_spend():
    # block k spends a_k - c_k * price: a = (100, 200), c = (100, 300); budget 150 is met
    # at one price 0.375 with shares (62.5, 87.5)
    from stockcast.optimization.decompose import _Coordinator

    coord = _Coordinator([], PlanConfig.from_dict({}), np.zeros(1))
    near = {"price": 0.3, "spend": 180.0, "block_spend": np.array([70.0, 110.0])}
    recovered = [{"shares": np.array([75.0, 75.0]),
                  "outcomes": [_outcome(0.25), _outcome(125.0 / 300.0)]}]
    shares = coord._corrected_shares(near, recovered, 150.0)
    np.testing.assert_allclose(shares, [62.5, 87.5])
    # duals that already agree: nothing to correct; a block without a dual (MOQs): none
    agreed = [{"shares": shares, "outcomes": [_outcome(0.375), _outcome(0.376)]}]
    assert coord._corrected_shares(near, agreed, 150.0) is None
    mip = [{"shares": shares, "outcomes": [_outcome(None), _outcome(0.4)]}]
    assert coord._corrected_shares(near, mip, 150.0) is None


def test_log_step_kept_inside_a_bracket_the_log_line_barely_moves():
    from stockcast.optimization.decompose import _log_step

    # spend falls from 4.5 to 2.46 between prices 0.26 and 0.50; aiming at 4.4 the
    # log-linear step lands next to the low end, the safeguarded step 20 % inside
    pts = [(0.26, 4.5), (0.50, 2.46)]
    assert _log_step(pts, 4.4) < 0.27
    lam = _log_step(pts, 4.4, keep=0.2)
    assert np.log(lam) == pytest.approx(np.log(0.26) + 0.2 * (np.log(0.5) - np.log(0.26)))
    assert _log_step([(0.26, 4.5)], 4.4, keep=0.2) == _log_step([(0.26, 4.5)], 4.4)


def test_mixture_of_two_priced_solves_is_a_feasible_plan_between_the_bounds():
    fc, sup = network(n_items=4, n_stores=5)
    tables = validate_supply(sup)
    (bfc, bsup, _), = split_tables(fc, tables, None, [sorted(fc["item_id"].unique())])
    block = BlockPlanner(bfc, bsup, PlanConfig.from_dict({**BASE, "budget": 1e9}))
    cap = np.full(len(tables.locations), 1e9)
    cheap, dear = block.solve(None, None, cap, price=0.05), block.solve(None, None, cap, 0.3)
    assert dear.spend < cheap.spend
    mixed = block.mix(0, 1, 0.25, price=0.1)
    assert mixed.spend == pytest.approx(0.75 * cheap.spend + 0.25 * dear.spend)
    assert mixed.objective == pytest.approx(0.75 * cheap.objective + 0.25 * dear.objective)
    assert mixed.budget_dual == 0.1 and mixed.solve_time_s == 0.0
    # the LP under a budget row at the mixture's spend: between the Lagrangian bounds of
    # the two priced solves and the mixture (a feasible point of the same LP)
    exact = block.solve(None, mixed.spend, cap)
    lagrangian = max(o.objective + p * (o.spend - mixed.spend)
                     for o, p in ((cheap, 0.05), (dear, 0.3)))
    assert lagrangian - 1e-6 <= exact.objective <= mixed.objective + 1e-6
    # the mixture is reported like any solve: its positions, spend and budget
    block.select(2, mixed.spend)
    res = block.result()
    np.testing.assert_allclose(res.nodes["position"].sum(), mixed.loc_use.sum(), rtol=1e-9)
    assert res.summary["purchase_spend"] + res.summary["transfer_spend"] == pytest.approx(
        mixed.spend)
    assert res.stats["mixed"] == 0.25


def test_decomposed_plan_mixes_two_priced_rounds_that_bracket_the_budget(client):
    fc, sup = network(seed=4)
    cfg = {**BASE, "budget": budget_of(fc, sup, 0.6), "decompose": False}
    single = plan(fc, sup, cfg)
    dec = Planner({**cfg, "decompose": True, "block_size": 16}, client=client).plan(fc, sup)
    st = dec.stats
    mixed = [r for r in st["rounds"] if "mixed" in r]
    assert len(mixed) == 1 and 0 < mixed[0]["mixed"] < 1
    assert st["n_rounds"] == 2 and len(st["rounds"]) == 3  # two priced rounds, no solve more
    spend = dec.summary["purchase_spend"] + dec.summary["transfer_spend"]
    assert spend == pytest.approx(cfg["budget"], rel=1e-6)
    gap = (st["objective"] - single.stats["objective"]) / abs(single.stats["objective"])
    assert -1e-6 <= gap <= 0.003
    assert st["objective"] - st["lagrangian_bound"] <= 0.003 * abs(st["objective"])
