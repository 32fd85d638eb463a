"""pipeline.py: the main job's four steps in one process, each as its own entry point runs it."""

from __future__ import annotations

import time

import mlflow
import pytest
from omegaconf import OmegaConf

from stockcast.tasks.pipeline import StepFailed, run

pytestmark = pytest.mark.slow  # a smoke training, evaluation, plan and backtest


def test_the_pipeline_runs_every_step_and_ends_with_the_answer(tracking_uri, tmp_path):
    printed: list[str] = []
    t0 = int(time.time() * 1000)
    overrides = ["experiment=smoke", "model_name=pipeline-tft", f"paths.log_dir={tmp_path}"]
    results = run(overrides, echo=printed.append)
    assert list(results) == ["train", "evaluate", "optimize", "backtest"]
    assert printed[0] == f"$ python train.py {' '.join(overrides)}"
    assert "== the answer ==" in printed[-1] and printed[-1].rstrip().splitlines()[-1].startswith("next: ")
    # each step's folder as its entry point's: outputs, its log file, the composed config
    for step in results:
        (folder,) = (tmp_path / step / "runs").iterdir()
        assert (folder / f"{step}.log").exists()
        cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
        assert cfg.paths.output_dir == str(folder) and cfg.model_name == "pipeline-tft"
    assert (next((tmp_path / "backtest" / "runs").iterdir()) / "backtest_report.html").exists()
    # every step's MLflow runs finished; the backtest planned with the model trained first
    version = results["train"].model_version
    for experiment in ("stockcast-train", "stockcast-evaluate", "stockcast-optimize", "stockcast-backtest"):
        runs = mlflow.search_runs(experiment_names=[experiment],
                                  filter_string=f"attributes.start_time >= {t0}")
        assert len(runs) and (runs["status"] == "FINISHED").all(), experiment
    assert str(results["backtest"].model_version) == str(version)


def test_an_unknown_step_runs_nothing_and_a_failing_step_is_named(tracking_uri, tmp_path):
    with pytest.raises(ValueError, match=r"unknown step\(s\) \['plan'\]"):
        run(["experiment=smoke"], steps=["train", "plan"])
    assert not tmp_path.joinpath("train").exists()  # nothing ran
    with pytest.raises(StepFailed, match="step optimize failed") as err:
        run(["experiment=smoke", "model_name=pipeline-missing", f"paths.log_dir={tmp_path}"],
            steps=["optimize"], echo=lambda _: None)
    assert err.value.step == "optimize" and "pipeline-missing" in str(err.value)
