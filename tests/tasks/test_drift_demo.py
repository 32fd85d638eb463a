"""drift_demo.py: the continuous-learning loop end to end; a failed retrain keeps the champion."""

from __future__ import annotations

import mlflow
import pytest

from stockcast.tasks import drift_demo
from stockcast.tracking.registry import current_champion
from tests.conftest import LEAN_EVALUATE, LEAN_TRAIN, compose_config

pytestmark = pytest.mark.slow  # the continuous-learning loop: several trainings and checks


def test_drift_demo_end_to_end(tracking_uri, tmp_path):
    cfg = compose_config("drift_demo", ["experiment=smoke", "demo.initial_periods=116", "demo.steps=5", "demo.cooldown=2"], tmp_path)
    cfg.demo.train = [*cfg.demo.train, *LEAN_TRAIN]
    cfg.demo.evaluate = [*cfg.demo.evaluate, *LEAN_EVALUATE]
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
    cfg.demo.train = [*cfg.demo.train, *LEAN_TRAIN]
    cfg.demo.evaluate = [*cfg.demo.evaluate, *LEAN_EVALUATE]
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
