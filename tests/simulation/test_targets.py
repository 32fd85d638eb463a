"""Fill-rate mode and the frontier on the tiny network: levels read off a forecaster's
distribution, the Lagrangian choice of per item-location levels against brute force."""

import itertools

import numpy as np
import pytest

from stockcast.simulation.engine import kpis, per_series, simulate
from stockcast.simulation.matching import warmup_periods
from stockcast.simulation.targets import FillRateSpec, FrontierSpec
from stockcast.simulation.world import build_window
from tests.simulation.conftest import Perfect, constant_forecasts, tiny_panel, tiny_supply


def tiny_world(periods=24, swing=4.0):
    panel = tiny_panel(periods, swing=swing)
    return build_window(panel, 8, periods - 1, tiny_supply(), None, 0.0, 0)


def run(world, policy):
    return simulate(world.demand, policy, world.lead_real, world.econ, world.on_hand0,
                    world.unmet, world.review, world.supplier_leads, world.elasticity,
                    world.capacity)


def test_lagrangian_choice_is_the_least_stock_meeting_the_target():
    """Three item-locations, five levels each (concave served-vs-stock curves): for every
    network target the choice holds the least stock brute force finds."""
    stock = np.array([[0, 2, 5, 9, 14], [0, 1, 3, 6, 10], [0, 4, 9, 15, 22]], float)
    served = np.array([[0, 6, 9, 11, 12], [0, 5, 7, 8, 8.5], [0, 8, 14, 18, 20]], float)
    spec = FrontierSpec(forecaster=Perfect(), levels=5)
    grid = spec.grid_levels()
    curves = {"served": served, "stock": stock, "demand": np.array([12.0, 8.5, 20.0]),
              "grid": grid}
    total = curves["demand"].sum()
    for target in (0.3, 0.5, 0.7, 0.85, 0.95):
        theta = spec.choose(curves, target)
        k = np.searchsorted(grid, theta)
        got_stock = stock[np.arange(3), k].sum()
        assert served[np.arange(3), k].sum() >= target * total - 1e-9
        best = min(stock[np.arange(3), c].sum()
                   for c in itertools.product(range(5), repeat=3)
                   if served[np.arange(3), c].sum() >= target * total - 1e-9)
        # the sweep + greedy trim finds the brute-force optimum here (the Lagrangian
        # alone stops at 7 units for 30%: a duality gap on discrete levels)
        assert got_stock == pytest.approx(best)


def test_frontier_meets_its_target_with_no_more_stock_than_equal_levels():
    world = tiny_world()
    forecasts = constant_forecasts(world, mean=10.0)
    spec = FrontierSpec(forecaster=Perfect(), levels=9)
    warm = warmup_periods("auto", world)
    curves = spec.curves(world, forecasts)
    stores = np.flatnonzero(world.echelon != "dc")
    # S1 (fed by the empty DC) loses its first periods whatever the level: 94% at most
    top = curves["served"].max(axis=1).sum() / curves["demand"].sum()
    assert top == pytest.approx(219 / 233)
    for target in (0.8, 0.9):
        tr = run(world, spec.build(world, target, forecasts))
        fill = per_series(tr, warm)["served"][stores].sum() / curves["demand"].sum()
        assert fill >= target - 1e-9
        stock = per_series(tr, warm)["avg_inventory"][stores].sum()
        # every single level that reaches the target for both stores holds at least as much
        ok = [k for k in range(len(curves["grid"]))
              if curves["served"][:, k].sum() >= target * curves["demand"].sum()]
        assert stock <= min(curves["stock"][:, k].sum() for k in ok) + 1e-6


def test_fill_rate_mode_serves_more_as_the_target_rises():
    world = tiny_world()
    forecasts = constant_forecasts(world, mean=10.0)
    spec = FillRateSpec(forecaster=Perfect(), grid=[0.8, 0.95])
    fills = [kpis(run(world, spec.build(world, t, forecasts)), start=2)["fill_rate"]
             for t in (0.6, 0.8, 0.95)]
    assert fills[0] <= fills[1] <= fills[2]
    assert fills[2] > 0.9
    net = FillRateSpec(forecaster=Perfect(), allocation="network")
    assert kpis(run(world, net.build(world, 0.95, forecasts)), start=2)["fill_rate"] > 0.85
    with pytest.raises(ValueError, match="allocation must be one of"):
        FillRateSpec(forecaster=Perfect(), allocation="pooled")


def test_fitted_lead_time_must_be_fitted_first():
    world = tiny_world()
    spec = FillRateSpec(forecaster=Perfect(), lead_time_demand="direct")
    assert spec.needs_fit
    with pytest.raises(ValueError, match="fitted on validation forecasts first"):
        spec.build(world, 0.9, constant_forecasts(world))
