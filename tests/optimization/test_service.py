"""Fill-rate targets: Sobel's correction on textbook cases, levels per item and per network."""

import numpy as np
import pytest
from scipy import stats

from stockcast.optimization.distribution import EmpiricalDemand, protection_samples
from stockcast.optimization.service import (
    expected_on_hand,
    fill_rate_levels,
    sobel_fill_rate,
)


def normal_loss(mean, sd, s):
    """E(D - s)+ of Normal(mean, sd)."""
    k = (s - mean) / sd
    return sd * (stats.norm.pdf(k) - k * (1 - stats.norm.cdf(k)))


def test_deterministic_cycle():
    """Demand 10 a period, L = 2, R = 1: S = 25 covers the lead time (20) and half of the
    cycle's 10 units; S = 15 leaves the cycle unserved (its shortage was there when the
    order arrived: Sobel's correction), S = 35 serves all."""
    lr = EmpiricalDemand(np.full((3, 4), 30.0))
    lead = EmpiricalDemand(np.full((3, 4), 20.0))
    fill = sobel_fill_rate(lr, lead, np.array([25.0, 15.0, 35.0]))
    np.testing.assert_allclose(fill, [0.5, 0.0, 1.0])
    # without the correction, S = 15 would read 1 - 15/10 < 0
    np.testing.assert_allclose(fill_rate_levels(lr, lead, 0.5), [25.0] * 3, atol=1e-6)


def test_normal_textbook_case():
    """Weekly demand Normal(100, 20), L = 2, R = 1: the fill rate at S from the normal loss
    function (1 - [sigma_3 G(k_3) - sigma_2 G(k_2)] / 100) and the level for 95%."""
    steps = np.broadcast_to(stats.norm.ppf(np.linspace(0.0025, 0.9975, 199), 100, 20),
                            (1, 3, 199)).copy()
    levels = np.linspace(0.0025, 0.9975, 199)
    lr = EmpiricalDemand(protection_samples(steps, levels, review_period=1.0, lead_mean=2.0,
                                            n_samples=20000, seed=0))
    lead = EmpiricalDemand(protection_samples(steps, levels, review_period=0.0,
                                              lead_mean=2.0, n_samples=20000, seed=0))
    for s in (300.0, 320.0, 340.0):
        exact = 1 - (normal_loss(300, 20 * np.sqrt(3), s) - normal_loss(200, 20 * np.sqrt(2), s)) / 100
        assert sobel_fill_rate(lr, lead, np.array([s]))[0] == pytest.approx(exact, abs=2e-3)
    # 95% fill: solve the closed form for S
    grid = np.linspace(250, 400, 30001)
    closed = grid[np.argmax(1 - (normal_loss(300, 20 * np.sqrt(3), grid)
                                 - normal_loss(200, 20 * np.sqrt(2), grid)) / 100 >= 0.95)]
    assert fill_rate_levels(lr, lead, 0.95)[0] == pytest.approx(closed, abs=0.6)


def test_network_allocation_meets_the_target_with_less_stock():
    """Two nodes, one fast and steady, one slow and erratic: equal 90% targets against the
    least stock for a network fill of 90%."""
    rng = np.random.default_rng(0)
    fast_r = rng.normal(100, 10, (1, 4000))
    slow_r = rng.gamma(0.5, 10, (1, 4000))
    lead_fast, lead_slow = rng.normal(200, 14, (1, 4000)), rng.gamma(1.0, 10, (1, 4000))
    lr = EmpiricalDemand(np.sort(np.vstack([lead_fast + fast_r, lead_slow + slow_r]), 1))
    lead = EmpiricalDemand(np.sort(np.vstack([lead_fast, lead_slow]), 1))
    mean_r = lr.mean - lead.mean
    each = fill_rate_levels(lr, lead, 0.9)
    pooled = fill_rate_levels(lr, lead, 0.9, allocation="network")
    fill_each = (mean_r * sobel_fill_rate(lr, lead, each)).sum() / mean_r.sum()
    fill_pool = (mean_r * sobel_fill_rate(lr, lead, pooled)).sum() / mean_r.sum()
    assert fill_each >= 0.9 - 1e-6 and fill_pool >= 0.9 - 1e-3
    assert expected_on_hand(lr, lead, pooled).sum() < expected_on_hand(lr, lead, each).sum()


def test_targets_are_checked():
    d = EmpiricalDemand(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"fill-rate target must lie in \(0, 1\)"):
        fill_rate_levels(d, d, 1.0)
    with pytest.raises(ValueError, match="allocation must be one of"):
        fill_rate_levels(d, d, 0.9, allocation="pooled")
