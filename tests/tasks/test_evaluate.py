"""evaluate.py: baselines side by side, rolling origins without leakage, champion gate."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from stockcast.tracking.registry import load_bundle, resolve_model
from tests.conftest import LEAN_EVALUATE, LEAN_TRAIN, compose_config


def _evaluate(tmp_path, overrides, figures=False):
    from stockcast.tasks.evaluate import run

    lean = [] if figures else LEAN_EVALUATE
    return run(compose_config("evaluate", ["experiment=smoke", *lean, *overrides], tmp_path))


@pytest.fixture(scope="module")
def second_model(smoke_train, tmp_path_factory):
    from stockcast.tasks.train import run

    out = tmp_path_factory.mktemp("second")
    return run(compose_config("train", ["experiment=smoke", "seed=7", "trainer.max_epochs=1", *LEAN_TRAIN], out))


def test_evaluate_compares_tft_with_baselines(smoke_train, tmp_path):
    result, _ = smoke_train
    ev = _evaluate(tmp_path, [f"model={result.model_version}"], figures=True)
    # the smoke model carries a quantile calibration: it is also scored without it
    assert set(ev.summary.model) == {"tft", "tft_uncalibrated", "naive", "seasonal_naive", "moving_average"}
    # every model is scored on exactly the same rows
    keys = {name: set(map(tuple, t[["item_id", "location_id", "period", "forecast_origin"]].astype(str).to_numpy())) for name, t in ev.forecasts.items()}
    assert len({frozenset(k) for k in keys.values()}) == 1
    tft = ev.forecasts["tft"]
    assert sorted(tft.forecast_origin.unique()) == [pd.Timestamp("2017-09-01"), pd.Timestamp("2017-11-01")]
    assert tft.period.min() == pd.Timestamp("2017-10-01") and tft.demand.notna().all()
    client = mlflow.MlflowClient()
    for name, run_id in ev.child_runs.items():
        child = client.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == ev.run_id
        assert child.info.status == "FINISHED"
        assert {"test_mae", "test_pinball", "test_mase", "test_coverage_80", "test_width_96"} <= set(child.data.metrics)
        row = ev.summary.set_index("model").loc[name]
        assert child.data.metrics["test_mae"] == pytest.approx(row["mae"])
    arts = {a.path for d in ("summary", "interpretation", "calibration", "forecasts") for a in client.list_artifacts(ev.run_id, d)}
    for expected in ("summary/comparison.md", "summary/comparison.csv", "summary/comparison.png", "calibration/tft_reliability.png", "interpretation/variable_importance.csv", "interpretation/attention.png", "forecasts/fan_worst.png"):
        assert expected in arts, expected
    own = ev.forecasts["tft_uncalibrated"]
    assert np.array_equal(tft["q0.5"].to_numpy(), own["q0.5"].to_numpy())
    assert not np.allclose(tft[["q0.1", "q0.9"]].to_numpy(), own[["q0.1", "q0.9"]].to_numpy())
    imp = ev.importance
    assert set(imp.role) == {"static", "encoder", "decoder"}
    assert np.allclose(imp.groupby("role").importance.sum(), 1.0)


def test_naive_baseline_matches_last_value(smoke_train, tmp_path):
    result, _ = smoke_train
    ev = _evaluate(tmp_path, [f"model={result.model_version}", "evaluation.n_origins=1"])
    # figures=false (LEAN_EVALUATE): the tables are logged, the charts are not
    client = mlflow.MlflowClient()
    arts = {a.path for d in ("summary", "interpretation", "calibration", "forecasts") for a in client.list_artifacts(ev.run_id, d)}
    assert {"summary/comparison.csv", "interpretation/variable_importance.csv"} <= arts
    assert not [a for a in arts if a.endswith(".png")]
    naive = ev.forecasts["naive"]
    panel = pd.read_parquet("data/stallion.parquet")
    last = panel[panel.date == "2017-09-01"].set_index(["sku", "agency"]).volume
    got = naive.set_index(["item_id", "location_id"])["q0.5"].groupby(level=[0, 1]).first()
    for (item, loc), v in got.items():
        assert v == pytest.approx(last[(item, loc)])


def test_future_actuals_do_not_leak_into_tft_forecasts(smoke_train):
    from stockcast.data.panel import load_panel, select_series

    result, _ = smoke_train
    bundle = load_bundle(resolve_model(result.model_version, "stockcast-tft"))
    panel = select_series(load_panel(bundle.spec), None, 12)
    a = bundle.forecast(panel, [56], 3)
    poisoned = panel.copy()
    after = poisoned.time_idx > 56
    poisoned.loc[after, "demand"] *= 100
    poisoned.loc[after, "industry_volume"] *= 100
    b = bundle.forecast(poisoned, [56], 3)
    assert len(a) == 12 * 3
    pd.testing.assert_frame_equal(a, b)


def test_model_references_resolve(smoke_train):
    result, _ = smoke_train
    by_version = resolve_model(result.model_version, "stockcast-tft")
    assert resolve_model(f"models:/stockcast-tft/{result.model_version}", "x").version == by_version.version
    assert resolve_model(result.run_id, "stockcast-tft").version == by_version.version
    assert int(resolve_model("latest", "stockcast-tft").version) >= int(by_version.version)
    # null = the champion when there is one, else the latest version
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("stockcast-tft", "champion", by_version.version)
    assert resolve_model(None, "stockcast-tft").version == by_version.version
    client.delete_registered_model_alias("stockcast-tft", "champion")
    assert resolve_model(None, "stockcast-tft").version == resolve_model("latest", "stockcast-tft").version
    with pytest.raises(LookupError, match="no version of 'stockcast-tft' was trained by run"):
        resolve_model("0123456789abcdef", "stockcast-tft")


def test_champion_moves_only_on_improvement(smoke_train, second_model, tmp_path):
    client = mlflow.MlflowClient()
    a, b = smoke_train[0].model_version, second_model.model_version
    try:
        client.delete_registered_model_alias("stockcast-tft", "champion")
    except mlflow.exceptions.MlflowException:
        pass
    first = _evaluate(tmp_path / "a", [f"model={a}", "evaluation.price_factors=[]"])
    assert first.champion["promoted"] and first.champion["reason"] == "no champion yet"
    assert client.get_model_version_by_alias("stockcast-tft", "champion").version == a

    again = _evaluate(tmp_path / "a2", [f"model={a}", "evaluation.price_factors=[]"])
    assert not again.champion["promoted"] and again.champion["reason"] == "already the champion"

    outcomes = []
    for greater in (False, True):
        client.set_registered_model_alias("stockcast-tft", "champion", a)
        ev = _evaluate(tmp_path / f"b{greater}", [f"model={b}", f"champion.greater_is_better={greater}", "evaluation.price_factors=[]"])
        d = ev.champion
        assert d["champion_version"] == a and d["challenger_version"] == b
        better = d["challenger_score"] > d["champion_score"] if greater else d["challenger_score"] < d["champion_score"]
        assert d["promoted"] == better
        alias = client.get_model_version_by_alias("stockcast-tft", "champion").version
        assert alias == (b if better else a)
        run = mlflow.get_run(ev.run_id)
        assert run.data.tags["champion.decision"] == ("promoted" if better else "kept")
        assert run.data.metrics["champion_test_pinball"] == pytest.approx(d["champion_score"])
        outcomes.append(d["promoted"])
    assert sorted(outcomes) == [False, True], "the gate must go both ways on the same pair"


def test_baselines_are_cached_by_data_and_config(smoke_train, tmp_path):
    result, _ = smoke_train
    cache = tmp_path / "cache"
    args = [f"model={result.model_version}", "evaluation.price_factors=[]", f"evaluation.cache_dir={cache}"]
    first = mlflow.get_run(_evaluate(tmp_path / "1", args).run_id).data.metrics
    assert first["baseline_cache_misses"] == 3 and first["baseline_cache_hits"] == 0
    again = _evaluate(tmp_path / "2", args)
    second = mlflow.get_run(again.run_id).data.metrics
    assert second["baseline_cache_hits"] == 3 and second["baseline_cache_misses"] == 0
    # a changed baseline config is another key
    changed = mlflow.get_run(_evaluate(tmp_path / "3", [*args, "baselines.moving_average.window=3"]).run_id).data.metrics
    assert changed["baseline_cache_misses"] == 1 and changed["baseline_cache_hits"] == 2


def test_synthetic_evaluation_reports_ratios_to_the_true_quantiles(synthetic_smoke_train, tmp_path):
    result, _ = synthetic_smoke_train
    ev = _evaluate(tmp_path, ["model_name=synthetic-smoke-tft", f"model={result.model_version}", "evaluation.price_factors=[]",
                              "baselines.lightgbm={_target_:stockcast.baselines.LightGBMBaseline,n_estimators:20,num_leaves:7}"])
    assert "true_quantiles" in set(ev.summary.model)
    truth = ev.relative["true_quantiles"].set_index("model")
    assert truth.loc["true_quantiles", "pinball"] == pytest.approx(1.0)
    # the physical limit: no forecaster beats the true distribution by much on its own data
    assert truth.loc["tft", "pinball"] > 0.9
    # lightgbm is the reference baseline: ratios to it are reported too, per horizon as well
    lgb = ev.relative["lightgbm"].set_index("model")
    assert lgb.loc["lightgbm", "mae"] == pytest.approx(1.0)
    by_h = ev.relative["lightgbm_by_horizon"]
    assert set(by_h.horizon) == {1, 2, 3} and (by_h[by_h.model == "lightgbm"].mae_ratio == 1.0).all()
    m = mlflow.get_run(ev.run_id).data.metrics
    assert m["test_pinball_vs_true_quantiles"] == pytest.approx(truth.loc["tft", "pinball"])
    # the attainable limit (only what is known at the origin) is reported beside it: never
    # better than the clairvoyant truth, and the model's ratio to it is logged too
    attainable = ev.relative["attainable_quantiles"].set_index("model")
    assert truth.loc["attainable_quantiles", "pinball"] >= 1.0
    assert attainable.loc["tft", "pinball"] == pytest.approx(
        truth.loc["tft", "pinball"] / truth.loc["attainable_quantiles", "pinball"], rel=1e-6)
    assert m["test_pinball_vs_attainable_quantiles"] == pytest.approx(attainable.loc["tft", "pinball"])
    assert "attainable_quantiles_by_horizon" in ev.relative
    # neither truth is a baseline the model is measured against
    assert mlflow.get_run(ev.run_id).data.tags["summary.best_baseline"] not in {"true_quantiles", "attainable_quantiles"}


def test_champion_gate_can_decide_on_backtest_cost(smoke_train, second_model, tmp_path):
    """champion.metric=backtest_controllable_cost: both models' quantiles plan the test
    window, tuned to one fill rate; the lower controllable cost wins."""
    client = mlflow.MlflowClient()
    a, b = smoke_train[0].model_version, second_model.model_version
    client.set_registered_model_alias("stockcast-tft", "champion", a)
    ev = _evaluate(tmp_path / "dec", [f"model={b}", "max_series=4", "evaluation.price_factors=[]",
                                      "champion.metric=backtest_controllable_cost",
                                      "champion.backtest.fill=0.8",
                                      "champion.backtest.grid=[0.7,0.95]",
                                      "champion.backtest.plan.n_scenarios=32"])
    d = ev.champion
    assert d["metric"] == "test_backtest_controllable_cost"
    assert d["champion_version"] == a and d["challenger_version"] == b
    assert np.isfinite(d["challenger_score"]) and np.isfinite(d["champion_score"])
    assert d["promoted"] == (d["challenger_score"] < d["champion_score"])
    run = mlflow.get_run(ev.run_id)
    assert run.data.metrics["champion_test_backtest_controllable_cost"] == pytest.approx(
        d["champion_score"])
    # the scores are an artifact of the run, one row per model, both at one fill rate
    scores = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=ev.run_id, artifact_path="champion_decision_scores.csv", dst_path=str(tmp_path)))
    assert set(scores["model"]) == {"challenger", "champion"}
    assert scores["target_fill_rate"].nunique() == 1
    assert scores.set_index("model").loc["champion", "controllable_cost"] == pytest.approx(
        d["champion_score"])
    holder = client.get_model_version_by_alias("stockcast-tft", "champion").version
    assert holder == (b if d["promoted"] else a)
    client.set_registered_model_alias("stockcast-tft", "champion", a)


@pytest.mark.slow
def test_training_prefetches_the_baselines_evaluate_reads(tracking_uri, tmp_path):
    """prefetch_baselines: train.py computes evaluate's baseline tables in a second process
    while it trains; the evaluation after it reads every one from the cache (and, with a
    cache already full, training starts no process at all)."""
    from hydra.utils import instantiate

    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.dataset import TimeSplit
    from stockcast.tasks.train import _prefetch_baselines
    from stockcast.tasks.train import run as train

    cache = tmp_path / "cache"
    shared = [f"evaluation.cache_dir={cache}", "model_name=prefetch-test-tft"]
    cfg = compose_config("train", ["experiment=smoke", "prefetch_baselines.enabled=true",
                                   "prefetch_baselines.n_jobs=2", *shared], tmp_path / "t")
    trained = train(cfg)
    assert len(list(cache.glob("*.parquet"))) == 3  # naive, seasonal_naive, moving_average
    metrics = mlflow.get_run(trained.run_id).data.metrics
    assert {"time_baseline_prefetch_wait_s", "time_baseline_prefetch_naive_s",
            "time_baseline_prefetch_moving_average_s"} <= set(metrics)
    ev = _evaluate(tmp_path / "e", [*shared, f"model={trained.model_version}", "evaluation.price_factors=[]"])
    got = mlflow.get_run(ev.run_id).data.metrics
    assert got["baseline_cache_hits"] == 3 and got["baseline_cache_misses"] == 0
    # the stored tables are the ones the baselines give on evaluate's panel
    from stockcast.config import build_baselines

    bundle = load_bundle(resolve_model(trained.model_version, "prefetch-test-tft"))
    naive = build_baselines(cfg.baselines, bundle.spec)[0]
    import ast

    origins = ast.literal_eval(mlflow.get_run(ev.run_id).data.params["origins"])
    panel = select_series(load_panel(bundle.spec), bundle.series)
    direct = naive.forecast(panel, origins, 3, bundle.quantiles)
    pd.testing.assert_frame_equal(ev.forecasts["naive"].reset_index(drop=True)[direct.columns], direct)
    # a full cache: nothing to start
    spec = instantiate(cfg.data)
    panel = select_series(load_panel(spec), None, cfg.max_series)
    assert _prefetch_baselines(cfg, spec, panel, TimeSplit.from_panel(panel, spec)) is None
