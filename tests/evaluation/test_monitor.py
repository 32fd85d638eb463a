"""Drift band rules against known numbers."""

from __future__ import annotations

import pytest

from stockcast.evaluation import monitor


def test_band_rules_against_known_numbers():
    ref = {"reference_pinball_scaled": 0.10, "reference_coverage_80": 0.80, "reference_bias_scaled": 0.05}
    band = {"pinball_ratio_max": 1.5, "coverage_drop_max": 0.2, "bias_shift_max": 0.2}
    ok = {"monitor_pinball_scaled": 0.149, "monitor_coverage_80": 0.61, "monitor_bias_scaled": -0.24}
    assert monitor.breaches(ok, ref, band, "overall") == []
    bad = {"monitor_pinball_scaled": 0.16, "monitor_coverage_80": 0.55, "monitor_bias_scaled": -0.4}
    found = {b["rule"]: b for b in monitor.breaches(bad, ref, band, "overall")}
    assert set(found) == {"pinball_ratio_max", "coverage_drop_max", "bias_shift_max"}
    assert found["pinball_ratio_max"]["value"] == pytest.approx(1.6)
    assert found["coverage_drop_max"]["value"] == pytest.approx(0.25)
    assert found["bias_shift_max"]["value"] == pytest.approx(0.35)
    # a bias that shrank (or changed sign without growing) is not drift
    better = {"monitor_pinball_scaled": 0.09, "monitor_coverage_80": 0.8, "monitor_bias_scaled": -0.05}
    assert monitor.breaches(better, {**ref, "reference_bias_scaled": 0.45}, band, "overall") == []
    # a rule set to null is not checked
    assert monitor.breaches(bad, ref, {**band, "pinball_ratio_max": None, "coverage_drop_max": None, "bias_shift_max": None}, "x") == []


