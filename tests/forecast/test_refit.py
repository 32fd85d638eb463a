"""The final refit on train + validation and its replayed learning-rate schedule."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from stockcast.forecast.refit import LearningRateRecorder, learning_rate_schedule
from stockcast.schema import quantile_column
from tests.conftest import LEAN_TRAIN, compose_config

LEVELS = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
COLS = [quantile_column(q) for q in LEVELS]
#: per-series target scales fitted on the training rows (the default EncoderNormalizer scales
#: each sample by its own encoder and has no fitted scales to compare)
GROUP_SCALES = ["data.dataset.target_normalizer._target_=pytorch_forecasting.data.GroupNormalizer",
                "+data.dataset.target_normalizer.groups=[item_id,location_id]"]
ORIGIN = pd.Timestamp("2020-12-01")


def test_learning_rate_schedule_replays_the_recorded_rates():
    rec = {0: [0.01], 1: [0.01], 2: [0.005], 3: [0.0025]}
    assert learning_rate_schedule(rec, 3, 0.03) == [0.01, 0.01, 0.005]
    assert learning_rate_schedule(rec, 6, 0.03) == [0.01, 0.01, 0.005, 0.0025, 0.0025, 0.0025]
    # a resumed run recorded only its later epochs
    assert learning_rate_schedule({2: [0.005]}, 3, 0.03) == [0.005, 0.005, 0.005]
    assert learning_rate_schedule({}, 2, 0.03) == [0.03, 0.03]
    # the record travels in checkpoints, so a resumed run replays its whole schedule
    saved = LearningRateRecorder()
    saved.by_epoch = rec
    restored = LearningRateRecorder()
    restored.load_state_dict(saved.state_dict())
    assert restored.by_epoch == rec


def test_refit_trains_on_validation_and_replays_the_schedule(tmp_path, tracking_uri):
    from stockcast.forecast.bundle import load_checkpoint
    from stockcast.forecast.refit import best_epochs
    from stockcast.tasks.train import run

    cfg = compose_config(
        "train", ["experiment=smoke", "refit.enabled=true", "calibration.method=none", "register_model=false", *GROUP_SCALES, *LEAN_TRAIN], tmp_path
    )
    result = run(cfg)
    m = mlflow.get_run(result.run_id).data.metrics
    assert result.best_checkpoint.endswith("refit.ckpt")
    refitted = load_checkpoint(result.best_checkpoint)
    early = sorted((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    assert len(early) == 1 and m["refit_epochs"] == best_epochs(early[0])
    lrs = refitted.hparams.learning_rate
    assert isinstance(lrs, list) and len(lrs) == m["refit_epochs"] and lrs[0] == pytest.approx(cfg.tft.learning_rate)
    assert best_epochs(result.best_checkpoint) == m["refit_epochs"]
    # the refitted model's target scales were fitted on train + validation
    assert "test_uncalibrated_mae" not in m and np.isfinite(m["test_mae"])
    scales_early = load_checkpoint(early[0]).output_transformer.norm_
    scales_refit = refitted.output_transformer.norm_
    assert scales_early.shape == scales_refit.shape
    assert not np.allclose(scales_early.to_numpy(), scales_refit.to_numpy())
