"""Continuous learning: data as of a date, regime changes, warm start, drift monitor, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.data.synthetic import generate
from stockcast.errors import DataValidationError
from stockcast.evaluation import monitor
from stockcast.tasks import drift_demo
from stockcast.tasks import monitor as monitor_task
from stockcast.tracking.registry import current_champion
from tests.conftest import compose_config

MONITOR_MODEL = "monitor-test-tft"


# ---------------------------------------------------------------------------- data as of a date
def test_until_keeps_only_the_data_known_then(tmp_path):
    cfg = compose_config("train", ["data.until=2016-06-15"], tmp_path)
    panel = load_panel(instantiate(cfg.data))
    assert panel["period"].max() == pd.Timestamp("2016-06-01")
    assert panel["time_idx"].min() == 0  # the calendar still starts at the first period


def test_until_before_the_data_names_the_table_and_column(tmp_path):
    cfg = compose_config("train", ["data.until=2010-01-01"], tmp_path)
    with pytest.raises(DataValidationError, match=r"demand.*date.*until=2010-01-01"):
        load_panel(instantiate(cfg.data))


def test_until_must_be_a_date(tmp_path):
    cfg = compose_config("train", ["data.until=soon"], tmp_path)
    with pytest.raises(Exception, match="until=.soon. is not a date"):
        instantiate(cfg.data)


# ---------------------------------------------------------------------------- regime change
def test_level_shift_multiplies_the_true_mean_from_its_period_on():
    base = generate(n_items=3, n_stores=2, periods=40, quantiles=None)
    shifted = generate(n_items=3, n_stores=2, periods=40, quantiles=None, regime_change={"kind": "level", "period": -10, "size": 0.5})
    ratio = (shifted.truth["truth_demand"]["mean"] / base.truth["truth_demand"]["mean"]).to_numpy().reshape(6, -1)
    np.testing.assert_allclose(ratio[:, :30], 1.0)
    np.testing.assert_allclose(ratio[:, 30:], 0.5)
    assert shifted.params["regime_change"] == {"kind": "level", "period": 30, "size": 0.5, "date": str(shifted.demand["period"].unique()[30].date())}


def test_sentiment_shock_moves_the_index_and_demand_follows_with_the_lag():
    kw = dict(n_items=2, n_stores=1, n_dcs=1, periods=30, quantiles=None, sentiment_lag=2)
    base, shock = generate(**kw), generate(**kw, regime_change={"kind": "sentiment", "period": 20, "size": -3.0})
    s0, s1 = base.covariates["sentiment"], shock.covariates["sentiment"]
    jump = (s1["sentiment"] - s0["sentiment"]).to_numpy().reshape(2, -1)  # columns: periods -2..29
    np.testing.assert_allclose(jump[:, :20], 0.0)
    np.testing.assert_allclose(jump[:, 20:], -3.0)  # observed from period 18 = 20 - lag
    effect = shock.truth["truth_series"]["sentiment_effect"].to_numpy()
    ratio = (shock.truth["truth_demand"]["mean"] / base.truth["truth_demand"]["mean"]).to_numpy().reshape(2, -1)
    np.testing.assert_allclose(ratio[:, :20], 1.0)
    np.testing.assert_allclose(ratio[:, 20:], np.broadcast_to(np.exp(-3.0 * effect)[:, None], ratio[:, 20:].shape))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "meteor", "period": 5}, "kind must be one of"),
        ({"kind": "level", "period": 99}, "must fall inside the history"),
        ({"kind": "level", "period": 5, "size": 0}, "size must be > 0"),
        ({"kind": "level", "when": 5}, "unknown key"),
    ],
)
def test_bad_regime_change_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        generate(n_items=2, n_stores=1, periods=20, quantiles=None, regime_change=change)


# ---------------------------------------------------------------------------- warm start + monitor
@pytest.fixture(scope="module")
def early_model(tmp_path_factory, tracking_uri):
    """A smoke model trained on Stallion up to June 2017 (10 series): later data is 'new'."""
    from stockcast.tasks.train import run

    out = tmp_path_factory.mktemp("early")
    cfg = compose_config("train", ["experiment=smoke", "max_series=10", "data.until=2017-06-01", f"model_name={MONITOR_MODEL}"], out)
    return run(cfg)


def test_warm_start_copies_weights_by_label_and_adds_new_locations(early_model, tmp_path):
    from stockcast.forecast.dataset import TimeSplit, training_dataset
    from stockcast.forecast.warm_start import warm_start
    from stockcast.tracking.registry import load_bundle, resolve_model

    old = load_bundle(resolve_model(early_model.model_version, MONITOR_MODEL))
    cfg = compose_config("train", ["experiment=smoke", "max_series=14"], tmp_path)
    spec = instantiate(cfg.data)
    from stockcast.data.panel import select_series

    panel = select_series(load_panel(spec), None, 14)
    training = training_dataset(panel, spec, TimeSplit.from_panel(panel, spec))
    model, report = warm_start(instantiate(cfg.tft), training, old.model, old.dataset_parameters)

    old_loc = old.dataset_parameters["categorical_encoders"]["location_id"].classes_
    new_loc = training.get_parameters()["categorical_encoders"]["location_id"].classes_
    old_w = old.model.input_embeddings.embeddings["location_id"].weight.detach()
    new_w = model.input_embeddings.embeddings["location_id"].weight.detach()
    shared = [c for c in new_loc if c in old_loc and c != "nan"]
    added = sorted(c for c in new_loc if c not in old_loc)
    assert shared and added
    for label in shared:  # same vector, wherever its code moved
        assert np.allclose(new_w[new_loc[label]], old_w[old_loc[label]])
    for label in added:  # new location: mean of the known vectors
        assert np.allclose(new_w[new_loc[label]], old_w.mean(dim=0), atol=1e-6)
    assert report.new_labels["location_id"] == added
    # everything else has the same shapes (same covariates, same architecture): all copied
    assert report.reinitialised == []
    assert model.hparams.hidden_size == old.model.hparams.hidden_size
    state, old_state = model.state_dict(), old.model.state_dict()
    key = next(k for k in state if "lstm_encoder" in k)
    assert np.allclose(state[key], old_state[key])


def test_train_with_init_from_fine_tunes_and_records_its_origin(early_model, tmp_path):
    from stockcast.tasks.train import run

    cfg = compose_config("train", ["experiment=smoke", "max_series=14", f"model_name={MONITOR_MODEL}", f"init_from=models:/{MONITOR_MODEL}/{early_model.model_version}"], tmp_path)
    result = run(cfg)
    rec = mlflow.get_run(result.run_id)
    assert rec.info.status == "FINISHED"
    assert rec.data.tags["stockcast.init_from"] == f"{MONITOR_MODEL}/{early_model.model_version}"
    assert rec.data.metrics["warm_start_new_location_ids"] >= 1
    assert rec.data.params["warm_start.hidden_size"] == "4"
    assert int(result.model_version) > int(early_model.model_version)
    version = mlflow.MlflowClient().get_model_version(MONITOR_MODEL, result.model_version)
    assert version.tags["data_end"] == "2017-12-01"


def test_init_from_unknown_model_fails_before_any_run(tracking_uri, tmp_path):
    from stockcast.tasks.train import run

    n_runs = len(mlflow.search_runs(search_all_experiments=True))
    cfg = compose_config("train", ["experiment=smoke", f"model_name={MONITOR_MODEL}", "init_from=999"], tmp_path)
    with pytest.raises(LookupError, match="999"):
        run(cfg)
    assert len(mlflow.search_runs(search_all_experiments=True)) == n_runs


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


def _monitor_cfg(tmp_path, *extra):
    return compose_config("monitor", ["experiment=smoke", f"model_name={MONITOR_MODEL}", f"monitor.alert_file={tmp_path / 'alert.json'}", *extra], tmp_path)


def test_monitor_flags_drift_writes_the_alert_and_logs_the_run(early_model, tmp_path):
    # a band no forecast can meet: drift, whatever the model
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=0.0"))
    assert result.status == "drift" and result.exit_code == 3
    # newly arrived = after the model's data_end (2017-06-01), newest `window` of them
    assert result.periods == ["2017-09-01", "2017-10-01", "2017-11-01", "2017-12-01"]
    alert = json.loads((tmp_path / "alert.json").read_text())
    assert alert["drift"] is True and alert["model"]["data_end"] == "2017-06-01"
    assert {"scope": "overall", "rule": "pinball_ratio_max"}.items() <= alert["breaches"][0].items()
    assert alert["metrics"]["monitor_pinball_ratio"] == pytest.approx(result.metrics["monitor_pinball_ratio"])
    # the issued forecasts were made one period ahead, from data up to the period before
    f = result.forecasts
    assert (f["horizon"] == 1).all() and set(f["period"].dt.strftime("%Y-%m-%d")) == set(result.periods)
    assert (f["forecast_origin"] < f["period"]).all()
    rec = mlflow.get_run(result.run_id)
    assert rec.info.status == "FINISHED" and rec.data.tags["monitor.drift"] == "true"
    assert rec.data.metrics["monitor_drift"] == 1.0 and "reference_pinball_scaled" in rec.data.metrics


def test_monitor_inside_the_band_is_ok(early_model, tmp_path):
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=100", "monitor.band.coverage_drop_max=1", "monitor.band.bias_shift_max=100", "monitor.as_of=2017-08-01"))
    assert result.status == "ok" and result.exit_code == 0 and result.breaches == []
    assert result.periods == ["2017-07-01", "2017-08-01"]  # as_of cuts the data at August
    assert json.loads((tmp_path / "alert.json").read_text())["status"] == "ok"


def test_monitor_with_no_new_actuals(early_model, tmp_path):
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.as_of=2017-06-01"))
    assert result.status == "no_new_actuals" and result.exit_code == 0 and result.periods == []


def test_monitor_cli_exit_code_is_what_a_scheduler_reads(early_model, tmp_path, tracking_uri):
    alert = tmp_path / "cli_alert.json"
    cmd = [sys.executable, "monitor.py", f"model_name={MONITOR_MODEL}", f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=0", f"monitor.alert_file={alert}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "status DRIFT" in proc.stdout
    assert json.loads(alert.read_text())["exit_code"] == 3


# ---------------------------------------------------------------------------- the demo
def test_drift_demo_end_to_end(tracking_uri, tmp_path):
    cfg = compose_config("drift_demo", ["experiment=smoke", "demo.initial_periods=116", "demo.steps=5", "demo.cooldown=2"], tmp_path)
    result = drift_demo.run(cfg)
    tl = result.timeline
    assert list(tl["period"]) == ["2023-03-27", "2023-04-03", "2023-04-10", "2023-04-17", "2023-04-24"]
    assert result.summary["shock_period"] == "2023-04-24"  # week 120 of the generator
    # the alias follows the gate's decisions, period by period
    for cur, nxt in zip(tl.to_dict("records"), tl.to_dict("records")[1:], strict=False):
        if cur["action"].endswith("promoted"):
            assert nxt["champion"] == int(cur["new_version"])
        else:
            assert nxt["champion"] == cur["champion"]
    champ = current_champion(cfg.model_name, "champion")
    last = tl.iloc[-1]
    assert int(champ.version) == (int(last["new_version"]) if last["action"].endswith("promoted") else last["champion"])
    # served vs never-retrained vs truth scored for every period
    assert len(result.scores) == 5 and result.scores[["served_pinball_scaled", "static_pinball_scaled", "truth_pinball_scaled"]].notna().all().all()
    assert (result.scores["truth_pinball_scaled"] < result.scores["static_pinball_scaled"]).mean() >= 0.6
    rec = mlflow.get_run(result.run_id)
    assert rec.info.status == "FINISHED"
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"timeline.csv", "summary.json", "drift_demo.png", "scores_by_period.csv"} <= arts
    monitors = mlflow.search_runs(experiment_names=["stockcast-monitor"], filter_string=f"tags.drift_demo_run = '{result.run_id}'")
    assert len(monitors) == 5 and (monitors["status"] == "FINISHED").all()


def test_failed_retrain_keeps_the_champion_and_marks_the_run_failed(tracking_uri, tmp_path):
    cfg = compose_config("drift_demo", ["experiment=smoke", "model_name=failed-retrain-tft"], tmp_path)
    first = drift_demo._train(cfg, "2023-03-20", tmp_path / "first", [], "test")
    drift_demo._evaluate(cfg, first.model_version, tmp_path / "first_evaluate")
    assert current_champion("failed-retrain-tft", "champion").version == first.model_version
    cfg.demo.retrain = ["loader.batch_size=0"]  # the DataLoader refuses: training crashes mid-run
    action, new_version = drift_demo._retrain(cfg, "2023-04-24", tmp_path / "retrain", "test")
    assert action == "retrain failed (champion kept)" and new_version is None
    assert current_champion("failed-retrain-tft", "champion").version == first.model_version
    versions = mlflow.MlflowClient().search_model_versions("name='failed-retrain-tft'")
    assert [v.version for v in versions] == [first.model_version]
    failed = mlflow.search_runs(experiment_names=["stockcast-train"], filter_string="tags.drift_demo_run = 'test'", order_by=["start_time DESC"])
    assert failed.iloc[0]["status"] == "FAILED"
    assert "batch_size" in (tmp_path / "retrain" / "retrain_error.txt").read_text()
