"""Hydra callbacks: a multirun becomes one MLflow parent run with a child run per job; an
Optuna sweep writes its best trial out as an experiment file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from stockcast.tracking.mlflow_utils import PARENT_RUN_FILE, get_experiment_id


class MLflowMultirunParent(Callback):
    """Creates the parent run when a sweep starts and closes it when the sweep ends.

    The parent run id is written to ``<sweep dir>/.mlflow_parent_run_id`` so that every
    job, in this process or on another node (SLURM launcher), attaches to it.
    """

    def __init__(self, experiment_name: str) -> None:
        self.experiment_name = experiment_name

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        client = mlflow.MlflowClient()
        run = client.create_run(
            get_experiment_id(self.experiment_name),
            run_name=f"sweep-{sweep_dir.name}",
            tags={"stockcast.sweep_dir": str(sweep_dir), "stockcast.role": "sweep-parent"},
        )
        overrides = list(config.hydra.overrides.task)
        client.log_param(run.info.run_id, "sweep_overrides", " ".join(overrides)[:6000])
        (sweep_dir / PARENT_RUN_FILE).write_text(run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        marker = sweep_dir / PARENT_RUN_FILE
        if not marker.exists():
            return
        client = mlflow.MlflowClient()
        parent = marker.read_text().strip()
        children = client.search_runs(
            [client.get_run(parent).info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent}'",
        )
        failed = [c for c in children if c.info.status != "FINISHED"]
        client.set_terminated(parent, "FAILED" if failed or not children else "FINISHED")


class WriteBestExperiment(Callback):
    """After an Optuna sweep: the best trial as an experiment file of its own.

    The file (``path``, default ``conf/experiment/<name>.yaml``) holds the best trial's
    parameters on top of the experiment the sweep ran with, so
    ``python train.py experiment=<name>`` trains it; it is also logged to the sweep's MLflow
    parent run (``best_experiment.yaml``) with the best value.
    """

    def __init__(self, path: str, metric: str | None = None) -> None:
        self.path = Path(path)
        self.metric = metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        results = sweep_dir / "optimization_results.yaml"
        if not results.exists():  # not an Optuna sweep, or it failed before the end
            return
        best = OmegaConf.load(results)
        if "best_params" not in best:
            return
        base = config.hydra.runtime.choices.get("experiment")
        nested = OmegaConf.create({})
        for key, value in best.best_params.items():
            OmegaConf.update(nested, str(key), value, force_add=True)
        header = [
            "# @package _global_",
            f"# Best trial of the Optuna sweep in {sweep_dir} (objective {self.metric or 'optimized_metric'}"
            f" = {float(best.best_value):.6g}, minimised on the validation window).",
            f"# Train it: python train.py experiment={self.path.stem}",
        ]
        body = OmegaConf.to_yaml(nested)
        if base not in (None, "null", "None"):
            body = f"defaults:\n  - {base}\n" + body
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(header) + "\n" + body)
        marker = sweep_dir / PARENT_RUN_FILE
        if marker.exists():
            client = mlflow.MlflowClient()
            parent = marker.read_text().strip()
            client.log_text(parent, self.path.read_text(), "best_experiment.yaml")
            client.log_metric(parent, f"best_{self.metric or 'value'}", float(best.best_value))
            client.set_tag(parent, "stockcast.best_experiment", str(self.path))
