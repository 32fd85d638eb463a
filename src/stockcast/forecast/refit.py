"""Final refit on train + validation: serve a model that has seen the most recent data.

Early stopping needs a validation window the model does not train on, so the early-stopped
TFT never sees the last ``val_periods`` periods before the test window, while every
baseline is fitted on all the history before its forecast origin. With ``refit.enabled``
training goes on, after the early-stopped run, with a fresh model fitted on train +
validation for the number of epochs early stopping chose, replaying that run's
learning-rate schedule epoch by epoch (the plateau scheduler has no held-out loss to watch
any more). The test window is still never used for fitting or selection.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

from stockcast.cpus import loader_workers
from stockcast.data.spec import DatasetSpec
from stockcast.forecast.dataset import dataset_kwargs
from stockcast.schema import TIME_IDX


class LearningRateRecorder(Callback):
    """Records the learning rate of every parameter group at the start of each epoch.

    The record is part of the run's checkpoints, so a resumed run still knows the epochs
    trained before the interruption.
    """

    def __init__(self) -> None:
        self.by_epoch: dict[int, list[float]] = {}

    def state_dict(self) -> dict[str, dict[int, list[float]]]:
        return {"by_epoch": dict(self.by_epoch)}

    def load_state_dict(self, state_dict: dict[str, dict[int, list[float]]]) -> None:
        self.by_epoch = {int(k): list(v) for k, v in state_dict.get("by_epoch", {}).items()}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.optimizers:
            groups = trainer.optimizers[0].param_groups
            self.by_epoch[int(trainer.current_epoch)] = [float(g["lr"]) for g in groups]


def learning_rate_schedule(by_epoch: dict[int, list[float]], epochs: int, initial: float) -> list[float]:
    """Learning rate of each of ``epochs`` epochs as recorded (first parameter group).

    Epochs without a record get the rate of the nearest recorded epoch after them (before a
    resumed run's checkpoint), else before them (``refit.epochs`` beyond the run), or
    ``initial`` when nothing was recorded. The list is passed to the TFT as
    ``learning_rate``, which pytorch-forecasting turns into a per-epoch schedule.
    """
    known = sorted(by_epoch)
    out = []
    for e in range(int(epochs)):
        later = [k for k in known if k >= e]
        nearest = later[0] if later else (known[-1] if known else None)
        out.append(float(by_epoch[nearest][0]) if nearest is not None else float(initial))
    return out


def best_epochs(checkpoint: str | Path) -> int:
    """Epochs the model in a Lightning checkpoint had trained.

    Read from the fit loop's progress (training epochs processed): a checkpoint written at
    the end of epoch ``k`` and one written after ``fit`` returned both count ``k + 1``,
    while their ``epoch`` fields differ by one.
    """
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    progress = state.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    if "processed" in progress:
        return int(progress["processed"])
    return int(state["epoch"]) + 1


def refit(
    build: Callable[[TimeSeriesDataSet], TemporalFusionTransformer],
    trainer_factory: Callable[..., L.Trainer],
    panel: pd.DataFrame,
    spec: DatasetSpec,
    end: int,
    epochs: int,
    loader: dict,
    checkpoint: Path,
) -> tuple[TemporalFusionTransformer, TimeSeriesDataSet]:
    """Train a fresh model on every period up to ``end`` (train + validation).

    Args:
        build: Makes the model from its training dataset (with the replayed learning-rate
            schedule, see :func:`learning_rate_schedule`).
        trainer_factory: ``Trainer`` factory (the task's trainer config); it gets
            ``max_epochs`` and no validation, callbacks, logger or checkpointing.
        panel: Canonical panel; rows after ``end`` (the test window) are dropped here.
        spec: Dataset spec (roles, window).
        end: Last ``time_idx`` used (the end of the validation window).
        epochs: Epochs to train (what early stopping chose).
        loader: ``batch_size``, ``num_workers``, ``pin_memory``.
        checkpoint: Where the refitted model's checkpoint is written.

    Returns:
        The refitted model (eval mode) and its training dataset (encoders and scalers fitted
        on train + validation; the registered model carries its parameters).
    """
    if epochs < 1:
        raise ValueError(f"refit: epochs must be >= 1, got {epochs}")
    data = panel[panel[TIME_IDX] <= int(end)]
    training = TimeSeriesDataSet(data, **dataset_kwargs(spec))
    workers = loader_workers(loader.get("num_workers", 0))
    train_dl = training.to_dataloader(
        train=True,
        batch_size=int(loader.get("batch_size", 128)),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=bool(loader.get("pin_memory", False)),
    )
    model = build(training)
    trainer = trainer_factory(
        max_epochs=int(epochs),
        min_epochs=int(epochs),
        callbacks=[],
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, train_dl)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(checkpoint))
    return model.eval(), training
