"""Protection-period demand from a forecaster's behaviour: independence, summed quantiles,
the Gaussian copula and the direct method against cases whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.optimization.distribution import QuantileFunction, protection_samples
from stockcast.optimization.leadtime import LeadTimeDemand, fit_lead_time_demand
from stockcast.optimization.planning import PlanConfig

LEVELS = np.array([0.005, 0.01, 0.02, 0.05, *np.round(np.arange(0.1, 0.91, 0.05), 2), 0.95,
                   0.98, 0.99, 0.995])


def normal_steps(n: int, horizon: int, mean: float, sd: float) -> np.ndarray:
    """``(n, horizon, K)`` quantiles of Normal(mean, sd) at :data:`LEVELS`."""
    q = stats.norm.ppf(LEVELS, mean, sd)
    return np.broadcast_to(q, (n, horizon, len(LEVELS))).copy()


def validation_table(n_series=500, n_origins=6, horizon=4, rho=0.5, forecast_mean=100.0,
                     true_mean=100.0, sd=10.0, seed=1) -> pd.DataFrame:
    """Normal forecasts whose errors have exchangeable correlation ``rho`` across the
    horizons of one origin (a level misjudged for the whole horizon)."""
    rng = np.random.default_rng(seed)
    cov = sd**2 * (rho * np.ones((horizon, horizon)) + (1 - rho) * np.eye(horizon))
    rows = []
    q = stats.norm.ppf(LEVELS, forecast_mean, sd)
    for o in range(n_origins):
        y = true_mean + rng.multivariate_normal(np.zeros(horizon), cov, size=n_series)
        for i in range(n_series):
            for h in range(horizon):
                rows.append({"item_id": f"i{i}", "location_id": "L",
                             "forecast_origin": pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=o),
                             "horizon": h + 1, "demand": y[i, h],
                             **{f"q{lv:g}": v for lv, v in zip(LEVELS, q, strict=True)}})
    return pd.DataFrame(rows)


def sum_quantile(model: LeadTimeDemand, level: float, p: int = 3, mean=100.0, sd=10.0) -> float:
    steps = normal_steps(1, 4, mean, sd)
    s = model.samples(steps, LEVELS, review_period=1.0, lead_mean=float(p - 1), lead_std=0.0,
                      n_samples=1024, seed=3)
    return float(np.quantile(s[0], level))


def test_summed_is_the_sum_of_the_steps_quantiles():
    steps = normal_steps(2, 3, 50.0, 5.0)
    s = protection_samples(steps, LEVELS, review_period=3.0, n_samples=400, seed=0,
                           dependence="comonotone")
    qf = QuantileFunction(LEVELS, steps[0, :1, :][0][None, :])
    mid = (np.arange(400) + 0.5) / 400
    np.testing.assert_allclose(s[0], np.sort(3 * qf.ppf(mid)[0]), rtol=1e-9)
    # and it is wider than the independent sum
    ind = protection_samples(steps, LEVELS, review_period=3.0, n_samples=400, seed=0)
    assert s[0].std() == pytest.approx(5.0 * 3, rel=0.05)
    assert ind[0].std() == pytest.approx(5.0 * np.sqrt(3), rel=0.05)


def test_direct_method_recovers_the_sum_of_correlated_errors():
    """Errors with correlation 0.5 across horizons: the sum over P = 3 has sd
    10 sqrt(3 + 6 x 0.5) = 24.5, not the independent 17.3. The direct method (PITs of the
    realised 3-period sums at validation origins) gets the 5% and 95% quantiles right;
    independence does not."""
    cv = validation_table()
    direct = fit_lead_time_demand("direct", cv, review_period=1.0, seed=0)
    assert set(direct.calibration) == {1, 2, 3, 4}
    true_sd = 10 * np.sqrt(3 + 6 * 0.5)
    for level in (0.05, 0.5, 0.95):
        truth = 300 + stats.norm.ppf(level) * true_sd
        assert sum_quantile(direct, level) == pytest.approx(truth, abs=3.0)
    indep = LeadTimeDemand()
    assert sum_quantile(indep, 0.95) == pytest.approx(300 + 1.645 * 10 * np.sqrt(3), abs=2.0)
    assert sum_quantile(indep, 0.95) < 300 + 1.645 * true_sd - 8


def test_direct_method_corrects_a_biased_forecaster():
    """A forecaster 10% low at every step (errors independent): the direct method moves
    the protection-period median to the realised 300, independence stays at 270."""
    cv = validation_table(rho=0.0, forecast_mean=90.0, true_mean=100.0)
    direct = fit_lead_time_demand("direct", cv, review_period=1.0, seed=0)
    assert sum_quantile(direct, 0.5, mean=90.0) == pytest.approx(300.0, abs=2.5)
    assert sum_quantile(LeadTimeDemand(), 0.5, mean=90.0) == pytest.approx(270.0, abs=1.0)


def test_copula_fits_the_correlation_of_normal_scores():
    cv = validation_table(rho=0.5)
    cop = fit_lead_time_demand("copula", cv, seed=0)
    off = cop.correlation[np.triu_indices(4, 1)]
    assert off == pytest.approx(np.full(6, 0.5), abs=0.06)
    truth = 300 + 1.645 * 10 * np.sqrt(6)
    assert sum_quantile(cop, 0.95) == pytest.approx(truth, abs=2.5)
    # independent errors: no correlation found
    none = fit_lead_time_demand("copula", validation_table(rho=0.0), seed=0)
    assert np.abs(none.correlation[np.triu_indices(4, 1)]).max() < 0.07


def test_pit_of_a_point_mass_is_spread_over_its_levels():
    qf = QuantileFunction(np.array([0.25, 0.5, 0.75]), np.array([[0.0, 0.0, 2.0],
                                                                  [1.0, 2.0, 3.0]]))
    mid = qf.cdf_rows(np.array([0.0, 2.0]))
    assert mid[1] == pytest.approx(0.5, abs=1e-3)
    assert mid[0] == pytest.approx(0.25, abs=1e-2)  # [0, 0.5] -> midpoint 0.25
    draws = np.array([qf.cdf_rows(np.array([0.0, 2.0]), rng=np.random.default_rng(s))[0]
                      for s in range(200)])
    assert 0.0 <= draws.min() and draws.max() <= 0.5 + 1e-3
    assert draws.mean() == pytest.approx(0.25, abs=0.04)


def test_plan_config_names_the_constructions():
    assert PlanConfig.from_dict({"lead_time_demand": "summed"}).lead_time_demand == "summed"
    with pytest.raises(ValueError, match="lead_time_demand must be one of"):
        PlanConfig.from_dict({"lead_time_demand": "gaussian"})
    with pytest.raises(ValueError, match="needs PIT values fitted on validation forecasts"):
        LeadTimeDemand.of("direct")
