"""The cosine learning-rate schedule: its rates, its errors, and a training that follows it."""

from __future__ import annotations

import math

import mlflow
import pytest

from stockcast.forecast.schedule import cosine_learning_rates
from tests.conftest import LEAN_TRAIN, compose_config


def test_cosine_rates_warm_up_then_decay_to_the_final_ratio():
    rates = cosine_learning_rates(0.02, 6, final_ratio=0.05, warmup_epochs=2)
    assert rates[:2] == pytest.approx([0.02 / 3, 0.04 / 3])
    assert rates[2] == pytest.approx(0.02) and rates[-1] == pytest.approx(0.001)
    # half cosine between: the middle of the 4 decay epochs
    assert rates[3] == pytest.approx(0.001 + 0.019 * 0.5 * (1 + math.cos(math.pi / 3)))
    assert all(a > b for a, b in zip(rates[2:], rates[3:], strict=False))
    assert cosine_learning_rates(0.01, 1) == [0.01]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial": 0.0, "epochs": 3}, "positive learning rate"),
        ({"initial": 0.01, "epochs": 0}, "max_epochs >= 1"),
        ({"initial": 0.01, "epochs": 3, "final_ratio": 0.0}, r"final_ratio must be in \(0, 1\]"),
        ({"initial": 0.01, "epochs": 3, "warmup_epochs": 3}, r"warmup_epochs must be in \[0, 3\)"),
    ],
)
def test_bad_schedule_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cosine_learning_rates(**kwargs)


def test_training_follows_the_cosine_schedule(tmp_path, tracking_uri):
    from stockcast.tasks.train import run

    cfg = compose_config(
        "train",
        ["experiment=smoke", "lr_schedule.kind=cosine", "lr_schedule.final_ratio=0.1", "trainer.max_epochs=3",
         "callbacks.early_stopping.patience=10", "register_model=false", *LEAN_TRAIN],
        tmp_path,
    )
    result = run(cfg)
    history = mlflow.tracking.MlflowClient().get_metric_history(result.run_id, "lr-Adam")
    logged = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert logged == pytest.approx(cosine_learning_rates(cfg.tft.learning_rate, 3, final_ratio=0.1))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["lr_schedule.kind=onecycle"], "lr_schedule.kind must be plateau or cosine, got 'onecycle'"),
        (["+lr_schedule.final=0.1"], r"lr_schedule: unknown setting\(s\) \['final'\]"),
        (["lr_schedule.warmup_epochs=2"], r"warmup_epochs must be in \[0, 2\) for 2 epochs"),
    ],
)
def test_bad_schedule_fails_before_any_run(tmp_path, tracking_uri, overrides, match):
    from stockcast.tasks.train import run

    cfg = compose_config("train", ["experiment=smoke", *overrides], tmp_path)
    n = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(ValueError, match=match):
        run(cfg)
    assert len(mlflow.search_runs(search_all_experiments=True)) == n
