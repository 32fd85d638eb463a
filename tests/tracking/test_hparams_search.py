"""Hyperparameter search: Hydra's Optuna sweeper, trials as child runs, best trial as an experiment."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from tests.conftest import compose_config

pytestmark = pytest.mark.slow  # an Optuna sweep of two trainings in a subprocess


def test_optuna_sweep_logs_trials_under_one_parent_and_writes_the_best_experiment(tmp_path, tracking_uri):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    best_file = tmp_path / "experiment" / "tuned_tft.yaml"
    # the shipped search with a tiny space (a config of its own on an extra search path)
    extra = tmp_path / "conf" / "hparams_search"
    extra.mkdir(parents=True)
    (extra / "tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - tft_optuna\n  - _self_\nhydra:\n  sweeper:\n    params:\n"
        "      tft.hidden_size: choice(2, 4)\n      tft.dropout: interval(0.1, 0.2)\n"
    )
    cmd = [
        sys.executable, "train.py", "-m", "hparams_search=tiny", "experiment=smoke",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
        "trainer.max_epochs=1", "max_series=4", "calibration.min_rows_per_bin=5",
        f"hydra.callbacks.best_experiment.path={best_file}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("stockcast-train")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags.get("stockcast.role") == "sweep-parent"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    # the objective is the validation-window pinball, and the best trial is the lowest
    scores = {r.data.params["tft.hidden_size"] + "/" + r.data.params["tft.dropout"]: r.data.metrics["val_uncalibrated_pinball"] for r in trials}
    best = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert float(best.best_value) == min(scores.values())
    assert parent[0].data.metrics["best_val_uncalibrated_pinball"] == float(best.best_value)
    # the best trial as an experiment file: on top of the sweep's own experiment
    text = best_file.read_text()
    assert text.startswith("# @package _global_") and "  - smoke" in text
    written = OmegaConf.load(best_file)
    assert written.tft.hidden_size == best.best_params["tft.hidden_size"]
    # ... that composes like any experiment
    (PROJECT_ROOT / "conf" / "experiment" / "_test_tuned.yaml").write_text(text)
    try:
        cfg = compose_config("train", ["experiment=_test_tuned"], tmp_path / "compose")
        assert cfg.tft.hidden_size == best.best_params["tft.hidden_size"] and cfg.max_series == 12
    finally:
        (PROJECT_ROOT / "conf" / "experiment" / "_test_tuned.yaml").unlink()
