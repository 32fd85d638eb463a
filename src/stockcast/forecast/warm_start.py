"""Warm start: a new TFT for new data, initialised from a trained one.

``python train.py init_from=models:/stockcast-tft@champion`` fits the dataset's encoders and
scalers on the data as it is now (so new items and locations get codes) and builds a TFT
with the *initial model's architecture*; then every weight is copied over where it still
means the same thing:

* categorical embeddings are copied row by row **by label** (item ``A`` keeps its vector even
  if its code moved); labels the old model never saw start from the mean of its known
  vectors, which is a better prior than noise for a new item or store;
* every other tensor is copied when its name and shape match (the variable selection
  networks are keyed by variable name, so adding a covariate only re-initialises the
  tensors whose shape changed);
* what was not copied is reported and logged, never silently dropped.

Training then fine-tunes from there with the task's trainer settings (usually fewer epochs
than from scratch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

#: Hyper-parameters that fix the network's shape: taken from the initial model so its
#: weights fit (the task's ``model`` config still sets learning rate, optimizer, schedule).
ARCHITECTURE = (
    "hidden_size",
    "lstm_layers",
    "attention_head_size",
    "hidden_continuous_size",
    "hidden_continuous_sizes",
    "share_single_variable_networks",
    "causal_attention",
)
EMBEDDING_PREFIX = "input_embeddings.embeddings."


@dataclass
class WarmStartReport:
    """What a warm start copied and what it had to initialise afresh."""

    architecture: dict[str, Any] = field(default_factory=dict)
    copied: int = 0
    reinitialised: list[str] = field(default_factory=list)
    new_labels: dict[str, list[str]] = field(default_factory=dict)
    dropped_labels: dict[str, list[str]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Counts for MLflow (``warm_start_*``)."""
        out = {
            "warm_start_tensors_copied": float(self.copied),
            "warm_start_tensors_reinitialised": float(len(self.reinitialised)),
        }
        for name in ("item_id", "location_id"):
            out[f"warm_start_new_{name}s"] = float(len(self.new_labels.get(name, [])))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "copied": self.copied,
            "reinitialised": self.reinitialised,
            "new_labels": self.new_labels,
            "dropped_labels": self.dropped_labels,
        }


def _classes(dataset_parameters: dict[str, Any], name: str) -> dict[str, int] | None:
    encoder = dataset_parameters.get("categorical_encoders", {}).get(name)
    classes = getattr(encoder, "classes_", None)
    return dict(classes) if isinstance(classes, dict) else None


def warm_start(
    build: Any,
    training: TimeSeriesDataSet,
    init_model: TemporalFusionTransformer,
    init_parameters: dict[str, Any],
) -> tuple[TemporalFusionTransformer, WarmStartReport]:
    """A TFT for ``training`` with ``init_model``'s architecture and, where possible, weights.

    Args:
        build: ``TemporalFusionTransformer.from_dataset`` partial (the task's model config).
        training: Training dataset fitted on the new data.
        init_model: The trained model to start from.
        init_parameters: ``init_model``'s dataset parameters (its categorical encoders).

    Returns:
        The initialised model and a :class:`WarmStartReport`.

    Raises:
        ValueError: The initial model predicts other quantiles than the new one would.
    """
    hp = init_model.hparams
    arch = {k: hp[k] for k in ARCHITECTURE if k in hp}
    old_emb = {k: v for k, v in hp.get("embedding_sizes", {}).items()}
    new_params = training.get_parameters()
    sizes = {}
    for name, encoder in new_params["categorical_encoders"].items():
        classes = getattr(encoder, "classes_", None)
        if name in old_emb and isinstance(classes, dict):
            sizes[name] = (len(classes), int(old_emb[name][1]))
    model = build(training, loss=init_model.loss, embedding_sizes=sizes, **arch)
    if list(model.loss.quantiles) != list(init_model.loss.quantiles):
        raise ValueError(
            f"init_from model predicts quantiles {list(init_model.loss.quantiles)}, the new "
            f"model {list(model.loss.quantiles)}"
        )
    report = WarmStartReport(architecture=arch)
    old_state = init_model.state_dict()
    new_state = model.state_dict()
    with torch.no_grad():
        for key, target in new_state.items():
            if key.startswith(EMBEDDING_PREFIX) and key.endswith(".weight"):
                name = key[len(EMBEDDING_PREFIX) : -len(".weight")]
                if _copy_embedding(name, key, target, old_state, init_parameters, new_params, report):
                    continue
            source = old_state.get(key)
            if source is not None and source.shape == target.shape:
                target.copy_(source)
                report.copied += 1
            else:
                report.reinitialised.append(key)
    model.load_state_dict(new_state)
    return model, report


def _copy_embedding(name, key, target, old_state, old_params, new_params, report) -> bool:
    """Copy embedding rows by label; returns False when the table cannot be mapped."""
    old_classes, new_classes = _classes(old_params, name), _classes(new_params, name)
    source = old_state.get(key)
    if old_classes is None or new_classes is None or source is None:
        return False
    if source.shape[1] != target.shape[1]:
        return False
    known = [c for c in new_classes if c in old_classes]
    mean = source.mean(dim=0)
    for label, row in new_classes.items():
        if label in old_classes and old_classes[label] < source.shape[0]:
            target[row] = source[old_classes[label]]
        else:
            target[row] = mean
    new = sorted(str(c) for c in new_classes if c not in old_classes)
    gone = sorted(str(c) for c in old_classes if c not in new_classes)
    if new:
        report.new_labels[name] = new
    if gone:
        report.dropped_labels[name] = gone
    report.copied += 1 if known else 0
    if not known:
        report.reinitialised.append(key)
    return True
