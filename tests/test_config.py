"""Every config group composes and instantiates; Hydra multirun gives a parent MLflow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import mlflow
import pytest
from hydra.utils import instantiate

from stockcast import PROJECT_ROOT
from stockcast.data.spec import DatasetSpec
from tests.conftest import LEAN_TRAIN, compose_config

CONF = PROJECT_ROOT / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("data", _options("data"))
def test_every_data_config_builds_a_spec(data, tmp_path):
    cfg = compose_config("train", [f"data={data}"], tmp_path)
    spec = instantiate(cfg.data)
    assert isinstance(spec, DatasetSpec) and spec.name
    assert spec.window["max_prediction_length"] >= 1


@pytest.mark.parametrize("trainer", _options("trainer"))
def test_every_trainer_config_composes(trainer, tmp_path):
    cfg = compose_config("train", [f"trainer={trainer}"], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if trainer in ("gpu", "ddp"):
        assert cfg.trainer.accelerator == "gpu" and "mixed" in cfg.trainer.precision
        assert trainer != "ddp" or cfg.trainer.strategy == "ddp"
    else:
        t = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert isinstance(t, L.Trainer)


@pytest.mark.parametrize("experiment", _options("experiment"))
@pytest.mark.parametrize("task", ["train", "evaluate", "monitor", "drift_demo", "optimize", "backtest"])
def test_every_experiment_composes_for_every_task(task, experiment, tmp_path):
    if not (CONF / f"{task}.yaml").exists():
        pytest.skip(f"no {task}.yaml")
    cfg = compose_config(task, [f"experiment={experiment}"], tmp_path)
    assert cfg.task_name == task


def test_model_callbacks_and_logger_instantiate(tmp_path, tracking_uri):
    cfg = compose_config("train", ["experiment=smoke"], tmp_path)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in callbacks} == {"ModelCheckpoint", "EarlyStopping", "LearningRateMonitor"}
    assert cfg.tft.loss.quantiles == cfg.quantiles
    logger = instantiate(cfg.logger.lightning, run_id=None)
    assert type(logger).__name__ == "MLflowRunLogger"


def test_command_line_overrides_reach_the_config(tmp_path):
    cfg = compose_config("train", ["tft.hidden_size=64", "trainer.max_epochs=3", "data.split.test_periods=4", "quantiles=[0.1,0.5,0.9]"], tmp_path)
    assert cfg.tft.hidden_size == 64 and cfg.trainer.max_epochs == 3
    assert instantiate(cfg.data).split["test_periods"] == 4
    assert list(cfg.tft.loss.quantiles) == [0.1, 0.5, 0.9]


@pytest.mark.slow
def test_multirun_makes_one_parent_with_a_child_per_job(tmp_path, tracking_uri):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [
        sys.executable, "train.py", "-m", "experiment=smoke", "tft.hidden_size=2,4",
        "trainer.max_epochs=1", "register_model=false", "max_series=4", *LEAN_TRAIN,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(experiment_names=["stockcast-train"])
    finally:
        mlflow.set_tracking_uri(tracking_uri)
    parents = runs[runs["tags.stockcast.role"] == "sweep-parent"]
    assert len(parents) == 1 and parents.iloc[0]["status"] == "FINISHED"
    children = runs[runs["tags.mlflow.parentRunId"] == parents.iloc[0]["run_id"]]
    assert sorted(children["params.tft.hidden_size"]) == ["2", "4"]
    assert (children["status"] == "FINISHED").all()
    assert Path(tmp_path / "sweep" / ".mlflow_parent_run_id").exists()
