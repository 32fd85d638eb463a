"""Hydra callback: a Hydra multirun becomes one MLflow parent run with a child run per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

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
