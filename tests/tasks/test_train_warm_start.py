"""train.py init_from=...: a fine-tune records its origin; an unknown model fails before any run."""

from __future__ import annotations

import mlflow
import pytest

from tests.conftest import LEAN_TRAIN, MONITOR_MODEL, compose_config


def test_train_with_init_from_fine_tunes_and_records_its_origin(early_model, tmp_path):
    from stockcast.tasks.train import run

    cfg = compose_config("train", ["experiment=smoke", "max_series=14", f"model_name={MONITOR_MODEL}", f"init_from=models:/{MONITOR_MODEL}/{early_model.model_version}", *LEAN_TRAIN], tmp_path)
    result = run(cfg)
    rec = mlflow.get_run(result.run_id)
    assert rec.info.status == "FINISHED"
    assert rec.data.tags["stockcast.init_from"] == f"{MONITOR_MODEL}/{early_model.model_version}"
    assert rec.data.metrics["warm_start_new_location_ids"] >= 1
    assert rec.data.params["warm_start.hidden_size"] == "4"
    assert int(result.model_version) > int(early_model.model_version)
    version = mlflow.MlflowClient().get_model_version(MONITOR_MODEL, result.model_version)
    assert version.tags["data_end"] == "2017-12-01"


def test_init_from_unknown_model_fails_before_any_run(tracking_uri, tmp_path):
    from stockcast.tasks.train import run

    n_runs = len(mlflow.search_runs(search_all_experiments=True))
    cfg = compose_config("train", ["experiment=smoke", f"model_name={MONITOR_MODEL}", "init_from=999"], tmp_path)
    with pytest.raises(LookupError, match="999"):
        run(cfg)
    assert len(mlflow.search_runs(search_all_experiments=True)) == n_runs


