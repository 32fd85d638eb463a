"""Backtest task end to end: the smoke TFT on Stallion, the true-distribution policy on
synthetic data, and the policy catalog."""

import mlflow
import pytest

from stockcast.tasks.backtest import run, summary
from tests.conftest import compose_config


def test_backtest_end_to_end(smoke_train, tmp_path):
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
    text = summary(bt)
    assert "matched fill rate" in text and "== the answer ==" in text
    # the answer ends the console: the backtest's headline and where to look next
    tail = text.split("== the answer ==")[1]
    assert "backtest: " in tail and "classic" in tail and "next: mlflow ui" in tail and "report: " in tail
    # the model forecast every review origin once, before the simulations
    origins = bt.forecasts["stockcast"]["forecast_origin"].drop_duplicates()
    assert len(origins) == len(bt.traces["stockcast"].demand[0])
    assert "true_distribution skipped: dataset stallion has no generator truth" in bt.notes


def test_backtest_synthetic_true_distribution(tracking_uri, tmp_path):
    """On synthetic data the generator's true quantiles + the optimizer run as a policy
    (no model needed), and stockcast-like gaps to it are reported."""
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


def test_policy_selection_is_checked_before_anything_runs(tmp_path):
    cfg = compose_config("backtest", ["experiment=smoke", "backtest.policies=[classic,nope]"],
                         tmp_path)
    with pytest.raises(ValueError, match=r"backtest.policies: unknown \['nope'\]"):
        run(cfg)
    cfg = compose_config("backtest", ["experiment=smoke", "backtest.unmet=sideways"], tmp_path)
    with pytest.raises(ValueError, match="backtest.unmet=sideways"):
        run(cfg)


def test_catalog_entries_compose_and_unfilled_keys_are_named(tracking_uri, tmp_path):
    cfg = compose_config("backtest", ["experiment=smoke", "max_series=2",
                                      "~backtest.catalog.lightgbm_opt",
                                      "backtest.policies=[classic,mine]",
                                      "+backtest.catalog.mine={_target_:stockcast.simulation."
                                      "policies.OptimizerSpec,forecaster:{_target_:stockcast."
                                      "forecast.truth.TruthForecaster,truth:???}}"], tmp_path)
    assert "lightgbm_opt" not in cfg.backtest.catalog
    spec = cfg.backtest.catalog.classic
    assert spec.service == 0.95 and list(spec.grid) == [0.8, 0.99]  # the smoke grid
    with pytest.raises(ValueError, match=r"backtest.catalog.mine.forecaster: \['truth'\] left"):
        run(cfg)
