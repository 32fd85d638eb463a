"""ensemble.size=k: k TFTs trained, calibrated and registered as one model."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from tests.conftest import LEAN_TRAIN, compose_config


@pytest.mark.parametrize("kind", ["seeds", "snapshots"])
def test_an_ensemble_is_registered_and_served_as_one_model(kind, tmp_path, tracking_uri):
    """seeds: 2 trainings keeping their 2 best epochs each (ensemble.snapshots=2), 4
    members; snapshots: the 2 best epochs of one training."""
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.bundle import ForecastBundle
    from stockcast.tasks.train import run
    from stockcast.tracking.registry import load_bundle, resolve_model

    per_seed = 2 if kind == "seeds" else 1
    cfg = compose_config("train", ["experiment=smoke", "ensemble.size=2", f"ensemble.kind={kind}",
                                   f"ensemble.snapshots={per_seed}", "trainer.max_epochs=3",
                                   *LEAN_TRAIN], tmp_path)
    result = run(cfg)
    rec = mlflow.get_run(result.run_id)
    n = 2 * per_seed
    assert rec.data.metrics["ensemble_size"] == n
    bundle = load_bundle(resolve_model(result.model_version, "stockcast-tft"))
    assert len(bundle.members) == n and bundle.calibration is not None
    if kind == "seeds":  # the second member logged its epochs under its own prefix
        assert len(mlflow.MlflowClient().get_metric_history(result.run_id, "member1-val_loss")) == 3
    # the served quantiles are the calibrated mean of the members' own quantiles
    panel = select_series(load_panel(bundle.spec), None, 12)
    own = bundle.uncalibrated().forecast(panel, [56], 3)
    members = [ForecastBundle(m, bundle.dataset_parameters, bundle.spec, bundle.calendar_start, bundle.series).forecast(panel, [56], 3)
               for m in bundle.members]
    cols = [c for c in own.columns if c.startswith("q")]
    mean = np.mean([m[cols].to_numpy() for m in members], axis=0)
    np.testing.assert_allclose(own[cols].to_numpy(), np.sort(np.clip(mean, 0, None), axis=1), rtol=1e-5)
    assert not np.allclose(members[0][cols].to_numpy(), members[1][cols].to_numpy())
    # and the registered pyfunc answers like any model
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert len(model.unwrap_python_model().bundle.members) == n


def test_bad_ensemble_settings_fail_before_any_run(tmp_path, tracking_uri):
    from stockcast.tasks.train import run

    n = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(ValueError, match="ensemble.size must be >= 1"):
        run(compose_config("train", ["experiment=smoke", "ensemble.size=0"], tmp_path))
    with pytest.raises(ValueError, match="use ensemble.kind=seeds"):
        run(compose_config("train", ["experiment=smoke", "ensemble.size=2", "ensemble.kind=snapshots", "refit.enabled=true"], tmp_path))
    with pytest.raises(ValueError, match="ensemble.snapshots keeps several epochs of each seed"):
        run(compose_config("train", ["experiment=smoke", "ensemble.size=2", "ensemble.kind=snapshots", "ensemble.snapshots=2"], tmp_path))
    with pytest.raises(ValueError, match="ensemble.snapshots must be a whole number"):
        run(compose_config("train", ["experiment=smoke", "ensemble.size=2", "ensemble.snapshots=two"], tmp_path))
    assert len(mlflow.search_runs(search_all_experiments=True)) == n
