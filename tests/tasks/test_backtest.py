"""Backtest task end to end: the smoke TFT on Stallion, the true-distribution policy on
synthetic data, and the policy catalog."""

import mlflow
import pytest
from hydra.utils import instantiate

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
    (no model needed), and stockcast-like gaps to it are reported; so does the attainable
    law (only what is known at each review), which knows less than the truth."""
    cfg = compose_config("backtest", ["experiment=smoke", "data=synthetic", "max_series=6",
                                      "backtest.policies=[true_distribution,"
                                      "attainable_distribution,classic,oracle]",
                                      # its protection period (6) is fitted on 10 periods
                                      "backtest.validation_periods=10"],
                         tmp_path)
    bt = run(cfg)
    assert set(bt.table["policy"]) == {"true_distribution", "attainable_distribution",
                                       "classic", "oracle"}
    diag = bt.diagnostics.set_index("policy")
    assert diag.loc["attainable_distribution", "pinball"] >= diag.loc["true_distribution", "pinball"]
    assert "avg_inventory_gap_to_attainable_distribution_pct" in bt.matched
    # where its validation window is too short for its protection period, a bound is
    # dropped with a note and the backtest goes on
    short = run(compose_config("backtest", ["experiment=smoke", "data=synthetic", "max_series=4",
                                            "backtest.policies=[attainable_distribution,classic]"],
                               tmp_path / "short"))
    assert set(short.table["policy"]) == {"classic"}
    assert any(n.startswith("attainable_distribution skipped: no validation origin") for n in short.notes)
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
    cfg = compose_config("backtest", ["experiment=smoke", "backtest.tuning.n_jobs=0"], tmp_path)
    with pytest.raises(ValueError, match=r"backtest.tuning.n_jobs=0: use auto or a positive"):
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


def test_baseline_forecasters_are_cached_and_the_model_is_not(tmp_path):
    from stockcast.baselines import LightGBMBaseline
    from stockcast.forecast.cache import CachedForecaster
    from stockcast.tasks.backtest import _policy_specs

    cfg = compose_config("backtest", ["experiment=smoke",
                                      "backtest.policies=[stockcast,lightgbm_opt,classic]"],
                         tmp_path)
    model = LightGBMBaseline(name="the_model")  # any forecaster stands in for the model
    spec = instantiate(cfg.data)
    specs = _policy_specs(cfg, list(cfg.backtest.policies), {"spec": spec, "model": model}, [])
    assert specs["stockcast"].forecaster is model
    cached = specs["lightgbm_opt"].forecaster
    assert isinstance(cached, CachedForecaster) and cached.name == "lightgbm_opt"
    assert str(cached.cache_dir) == str(cfg.backtest.cache_dir)
    cfg.backtest.cache_dir = None
    plain = _policy_specs(cfg, ["lightgbm_opt"], {"spec": spec, "model": model}, [])
    assert isinstance(plain["lightgbm_opt"].forecaster, LightGBMBaseline)


def test_synthetic_year_is_a_year_held_out_with_planner_targets(tmp_path):
    cfg = compose_config("backtest", ["data=synthetic_year"], tmp_path)
    assert cfg.data.source.generator.periods == 260
    assert cfg.data.split.test_periods == 52
    assert list(cfg.backtest.matched.targets) == ["classic", 0.9, 0.95, 0.98]
    assert {"stockcast_fill", "frontier", "true_distribution"} <= set(cfg.backtest.policies)
    # its recipe: a year-long encoder (the data config) and 3 seeds (the experiment)
    train = compose_config("train", ["data=synthetic_year", "experiment=synthetic_year"], tmp_path / "t")
    assert train.data.window.max_encoder_length == 52 and train.data.window.min_encoder_length == 13
    assert (train.ensemble.size, train.ensemble.kind) == (3, "seeds")


def test_backtest_planner_targets_frontier_and_answer_first_report(tracking_uri, tmp_path):
    """Targets at classic's fill and planner fills: every "% vs classic" figure has a
    bootstrap interval, the frontier runs beside the true-distribution policy, each target
    has its sentence (saying so where classic has no point there), and the report opens
    with them."""
    cfg = compose_config("backtest", [
        "experiment=smoke", "data=synthetic", "max_series=4", "data.split.test_periods=12",
        "backtest.policies=[true_distribution,frontier,classic,oracle]",
        "backtest.headline=true_distribution", "backtest.matched.targets=[classic,0.9,0.95]",
        "backtest.bootstrap.n=200", "backtest.catalog.frontier.levels=9",
        "backtest.tuning.fill_targets=[0.8,0.95]"], tmp_path)
    bt = run(cfg)
    m = bt.matched.set_index(["target", "policy"])
    assert list(dict.fromkeys(bt.matched["target"])) == ["classic", "0.9", "0.95"]
    row = m.loc[("classic", "true_distribution")]
    col = "avg_inventory_reduction_vs_classic_pct"
    assert row["reached"] and row[f"{col}_lo"] <= row[col] <= row[f"{col}_hi"]
    assert "avg_inventory_gap_to_frontier_pct" in bt.matched
    assert len(bt.traces["frontier"].demand[0]) == 12
    mine = [line for line in bt.headline if not line.startswith("  ")]
    assert len(mine) == 3 and mine[0].startswith("at classic's fill rate")
    for target, line in zip(["0.9", "0.95"], mine[1:], strict=True):
        assert line.startswith(f"at {100 * float(target):g}% fill")
        if not m.loc[(target, "true_distribution"), "reached"]:
            assert "true_distribution cannot reach it" in line or "serves more" in line
        elif m.loc[(target, "classic"), "reached"]:
            assert "inventory than classic" in line
        else:
            assert "classic cannot reach it" in line or "classic serves more" in line
    answer = (tmp_path / "answer.txt").read_text(encoding="utf-8")
    assert answer.splitlines()[0] == bt.headline[0]
    html = (tmp_path / "backtest_report.html").read_text(encoding="utf-8")
    assert html.index("The answer") < html.index("<img") < html.index("<table")
    metrics = mlflow.get_run(bt.run_id).data.metrics
    assert f"true_distribution_matched_{col}_lo" in metrics


def test_retraining_along_the_window_forecasts_later_origins_with_a_new_version(
        smoke_train, tmp_path):
    """backtest.retrain_every=2: the model under test forecasts the first two review
    origins; a model warm-started on the data known at the third forecasts the rest and is
    registered apart."""
    result, _ = smoke_train
    cfg = compose_config("backtest", [
        "experiment=smoke", f"model={result.model_version}", "max_series=4",
        "backtest.policies=[stockcast,classic]", "backtest.retrain_every=2",
        "backtest.retrain.model_name=retrain-test-tft",
        "backtest.retrain.overrides=['experiment=smoke','max_series=4',"
        "'permutation_importance.enabled=false','figures=false']"], tmp_path)
    bt = run(cfg)
    notes = [n for n in bt.notes if n.startswith("retrained on the data until")]
    assert len(notes) == 1 and "models:/retrain-test-tft/" in notes[0]
    versions = mlflow.MlflowClient().search_model_versions("name='retrain-test-tft'")
    assert len(versions) >= 1
    origins = bt.forecasts["stockcast"]["forecast_origin"].drop_duplicates()
    assert len(origins) == len(bt.traces["stockcast"].demand[0]) == 3
