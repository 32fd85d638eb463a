"""The compiled CVXPY network problem: DPP check, planner-owned cache keyed by structure."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from stockcast.optimization import NotDPPError
from stockcast.optimization.solving import require_dpp


def test_require_dpp_accepts_parameters_in_affine_places():
    x = cp.Variable(3, nonneg=True)
    c, b = cp.Parameter(3, name="c"), cp.Parameter(nonneg=True, name="b")
    require_dpp(cp.Problem(cp.Minimize(c @ x), [cp.sum(x) <= b]), "toy")


def test_require_dpp_names_the_problem_and_parameters_when_not_dpp():
    x = cp.Variable(3, nonneg=True)
    p, q = cp.Parameter(name="price"), cp.Parameter(name="markup")
    prob = cp.Problem(cp.Minimize(p * q * cp.sum(x)), [cp.sum(x) >= 1])
    assert prob.is_dcp() and not prob.is_dcp(dpp=True)
    with pytest.raises(NotDPPError, match=r"toy plan: .*not DPP.*markup, price"):
        require_dpp(prob, "toy plan")
    concave = cp.Problem(cp.Minimize(cp.sqrt(cp.sum(x))), [cp.sum(x) >= 1])
    with pytest.raises(NotDPPError, match="not DCP"):
        require_dpp(concave, "bad")


def test_problem_cache_keys_by_structure_and_evicts_oldest(small_net):
    from stockcast.optimization.problem import Flags, ProblemCache

    net, levels = small_net
    cache = ProblemCache(size=2)
    a = cache.get(net, levels, Flags())
    assert cache.get(net, levels, Flags()) is a and cache.built == 1
    b = cache.get(net, levels, Flags(budget=True))
    assert b is not a and b.problem.is_dcp(dpp=True) and "budget" in b.params
    cache.get(net, levels + 0.0, Flags(service=True))
    assert len(cache) == 2 and cache.built == 3
    assert cache.get(net, levels, Flags()) is not a  # evicted, rebuilt
    with pytest.raises(ValueError, match="size"):
        ProblemCache(size=0)


@pytest.fixture
def small_net():
    import pandas as pd

    from stockcast.data.supply import SupplyTables, validate_supply
    from stockcast.optimization.cuts import cut_levels
    from stockcast.optimization.network import build_network

    locations = pd.DataFrame({"location_id": ["DC1", "S1"], "echelon": ["dc", "store"],
                              "parent_id": [None, "DC1"], "capacity": [1e4, 1e4]})
    econ = pd.DataFrame([{"item_id": "A", "location_id": loc, "unit_cost": 4.0, "price": 10.0,
                          "holding_cost": 0.1, "shortage_cost": 0.0, "salvage_value": 1.0,
                          "on_hand": 5.0, "in_transit": 0.0} for loc in ("DC1", "S1")])
    sup = pd.DataFrame([{"supplier_id": "SUP1", "item_id": "A", "unit_cost": 4.0,
                         "lead_time_mean": 1.0, "lead_time_std": 0.0, "reliability": 1.0,
                         "capacity": 1e3, "min_order_qty": 0.0, "ships_to": "all"}])
    lanes = pd.DataFrame([{"from_id": "DC1", "to_id": "S1", "transfer_cost": 0.2,
                           "lead_time": 0.0}])
    tables = validate_supply(SupplyTables(locations, econ, sup, lanes))
    keys = pd.DataFrame({"item_id": ["A"], "location_id": ["S1"]})
    net = build_network(keys, tables)
    return net, cut_levels(np.array([0.6]), 100)
