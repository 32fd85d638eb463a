"""The TFT's training data as a ``LightningDataModule``: one place that builds the datasets.

Encoders and scalers are fitted once, on the whole training window
(:func:`~stockcast.forecast.dataset.training_dataset`), never on a rank's shard
(pytorch-forecasting issue 1825). Under DDP every rank builds them from the same full training
data, which is deterministic, and :meth:`TFTDataModule.setup` checks with the strategy's own
``broadcast`` that every rank holds exactly rank 0's encoders before a batch is drawn (so a
rank can never train with other categories or scales than the model that is saved).
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import lightning.pytorch as L
import pandas as pd
from pytorch_forecasting import TimeSeriesDataSet
from torch.utils.data import DataLoader, Dataset

from stockcast.cpus import loader_workers
from stockcast.data.spec import DatasetSpec
from stockcast.forecast.dataset import TimeSplit, training_dataset, window_dataset


def encoder_fingerprint(dataset: TimeSeriesDataSet) -> str:
    """Hash of a dataset's fitted encoders and scalers (categorical classes, target
    normalizer and real-variable scalers): equal fingerprints = identical preprocessing."""
    params = dataset.get_parameters()
    parts: list[Any] = []
    for name in sorted(params.get("categorical_encoders") or {}):
        enc = params["categorical_encoders"][name]
        parts.append((name, sorted(map(str, getattr(enc, "classes_", {}) or {}))))
    norm = params.get("target_normalizer")
    parts.append(("target", _state(norm)))
    for name in sorted(params.get("scalers") or {}):
        parts.append((name, _state(params["scalers"][name])))
    return hashlib.sha256(pickle.dumps(parts)).hexdigest()


def _state(obj: Any) -> Any:
    """The fitted state of a normalizer/scaler as plain, comparable values."""
    if obj is None:
        return None
    out = []
    for key in sorted(vars(obj)):
        value = vars(obj)[key]
        if key.endswith("_") or key in ("center", "transformation", "method", "groups"):
            if isinstance(value, pd.DataFrame | pd.Series):
                value = value.round(10).to_json()
            elif hasattr(value, "tolist"):
                value = value.tolist()
            out.append((key, repr(value)))
    return (type(obj).__name__, out)


class TFTDataModule(L.LightningDataModule):
    """Training and validation dataloaders of one training run.

    Args:
        panel: Canonical panel (all periods; the datasets cut it by ``split``).
        spec: Dataset spec (covariate roles, windows, normalizer).
        split: Train / validation / test boundaries.
        batch_size: Training batch size (validation uses 4x).
        num_workers: DataLoader workers for training batches (``auto``:
            :func:`~stockcast.cpus.loader_workers`).
        pin_memory: Pin host memory (GPU training).
        training: An already built training dataset (e.g. a refit's); default: built here.
    """

    def __init__(
        self,
        panel: pd.DataFrame,
        spec: DatasetSpec,
        split: TimeSplit,
        *,
        batch_size: int = 128,
        num_workers: int | str = 0,
        pin_memory: bool = False,
        training: TimeSeriesDataSet | None = None,
    ) -> None:
        super().__init__()
        self.panel, self.spec, self.split = panel, spec, split
        self.batch_size, self.pin_memory = int(batch_size), bool(pin_memory)
        self.num_workers = loader_workers(num_workers)
        self.training = training if training is not None else training_dataset(panel, spec, split)
        self.fingerprint = encoder_fingerprint(self.training)
        #: Every rank's :attr:`fingerprint` by global rank, filled by :meth:`setup` (one entry
        #: in a single process): what rank 0 logs to show all ranks trained alike.
        self.rank_fingerprints: list[str] = [self.fingerprint]
        self.validation: TimeSeriesDataSet | None = None
        self._val_batches: list | None = None

    def setup(self, stage: str | None = None) -> None:
        """Build the validation dataset; under DDP check every rank holds rank 0's encoders.

        Every rank's fingerprint reaches every rank (one ``broadcast`` per source rank, the
        strategy's own collective: gloo on CPU, NCCL on GPUs), so all ranks fail together,
        with the same message, when any differs.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            self.rank_fingerprints = [
                trainer.strategy.broadcast(self.fingerprint, src=rank)
                for rank in range(trainer.world_size)
            ]
            reference = self.rank_fingerprints[0]
            differ = [r for r, fp in enumerate(self.rank_fingerprints) if fp != reference]
            if differ:
                raise RuntimeError(
                    f"dataset encoders of rank(s) {differ} differ from rank 0's "
                    f"({', '.join(self.rank_fingerprints[r][:12] for r in differ)} vs "
                    f"{reference[:12]}): every rank must build them from the same full training data"
                )
        if self.validation is None:
            self.validation = window_dataset(self.training, self.panel, self.split.val_start, self.split.val_end)

    def train_dataloader(self):
        return self.training.to_dataloader(
            train=True,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def val_dataloader(self):
        if self.validation is None:
            self.setup("fit")
        loader = self.validation.to_dataloader(train=False, batch_size=self.batch_size * 4,
                                               num_workers=0)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            return loader  # the strategy shards the samples over the ranks
        if self._val_batches is None:
            self._val_batches = list(loader)
        return DataLoader(_Batches(self._val_batches), batch_size=None, shuffle=False)


class _Batches(Dataset):
    """The validation batches, collated once: the validation window's samples are the same
    every epoch (no shuffling, no random lengths), and building them in Python took about
    half of each validation pass (1.8 s of 3.5 s per epoch on Stallion). Served as they
    are (``batch_size=None``): the model reads its batches and never writes into them."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.batches[i]
