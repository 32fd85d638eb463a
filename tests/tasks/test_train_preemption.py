"""SIGTERM during training (what SLURM and Kubernetes send before killing a job)."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as L
import mlflow
import pytest
import torch

from tests.conftest import LEAN_TRAIN, compose_config


class SigtermAt(L.Callback):
    """Sends this process a SIGTERM when training reaches ``epoch``/``batch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_exits_non_zero_kills_the_run_and_resumes_without_duplicate_steps(tmp_path, tracking_uri):
    from stockcast.tasks.train import PREEMPTED_EXIT_CODE, run

    base = ["experiment=smoke", "trainer.max_epochs=3", "register_model=false", *LEAN_TRAIN]
    kill = ["+callbacks.sigterm._target_=tests.tasks.test_train_preemption.SigtermAt",
            "+callbacks.sigterm.epoch=1", "+callbacks.sigterm.batch=0"]
    with pytest.raises(SystemExit) as stop:
        run(compose_config("train", [*base, *kill], tmp_path / "a"))
    assert stop.value.code == PREEMPTED_EXIT_CODE
    runs = mlflow.search_runs(experiment_names=["stockcast-train"], order_by=["start_time DESC"], max_results=1)
    run_id = runs.iloc[0]["run_id"]
    assert runs.iloc[0]["status"] == "KILLED"
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    # the checkpoint holds the epoch in progress (1 batch into epoch 1), not the last epoch end
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["epoch"] == 1 and state["global_step"] == 3 + 1

    resumed = run(compose_config("train", [*base, f"ckpt_path={last}"], tmp_path / "b"))
    assert resumed.run_id == run_id and resumed.metrics["epochs_trained"] == 3
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss_step")]
    assert len(steps) == len(set(steps)) == 3 * 3  # every step once, none redone
    assert len(client.get_metric_history(run_id, "val_loss")) == 3
