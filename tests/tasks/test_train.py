"""Smoke path end to end: train -> MLflow run -> registered pyfunc -> load -> predict."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from stockcast.errors import DataValidationError
from stockcast.schema import quantile_column
from tests.conftest import LEAN_TRAIN, compose_config

QUANTILES = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
QCOLS = [quantile_column(q) for q in QUANTILES]


def _raw_request(n_future: int = 3, agencies=("Agency_01", "Agency_02"), sku="SKU_01") -> pd.DataFrame:
    df = pd.read_parquet("data/stallion.parquet")
    df = df[(df.sku == sku) & (df.agency.isin(agencies))].copy()
    future = sorted(df.date.unique())[-n_future:]
    df.loc[df.date.isin(future), "volume"] = np.nan
    return df


@pytest.fixture(scope="module")
def model(smoke_train):
    result, _ = smoke_train
    return mlflow.pyfunc.load_model(result.model_uri)


def test_smoke_run_logs_everything(smoke_train):
    result, cfg = smoke_train
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    for key in ("test_mae", "test_rmse", "test_smape", "test_pinball", "test_coverage_80", "val_loss", "train_loss_epoch"):
        assert key in m and np.isfinite(m[key]), key
    # per-epoch losses are a history, not a single value
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "val_loss")
    assert len(history) == cfg.trainer.max_epochs
    p = run.data.params
    assert p["tft.hidden_size"] == "4" and p["data.name"] == "stallion"
    assert len(p["data_sha256"]) == 64 and int(p["data_series"]) == 12
    assert int(p["data_rows"]) == 12 * 60
    arts = {a.path for d in ("", "config", "forecasts", "interpretation", "checkpoints") for a in mlflow.MlflowClient().list_artifacts(result.run_id, d)}
    for expected in (
        "config/config.yaml",
        "forecasts/fan_best.png",
        "forecasts/fan_worst.png",
        "forecasts/test_forecast.csv",
        "interpretation/variable_importance.png",
        "interpretation/attention.png",
    ):
        assert expected in arts, expected
    assert any(a.endswith(".ckpt") for a in arts)
    # the UI's Dataset column: what the run trained on, by name, digest and source
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "stallion" and inp.dataset.digest == p["data_sha256"][:16]
    assert inp.dataset.source.endswith("stallion.parquet") or "stallion.parquet" in inp.dataset.source
    assert {t.key: t.value for t in inp.tags}.get("mlflow.data.context") == "training"
    exp = mlflow.get_experiment(run.info.experiment_id)
    assert "quantile TFT" in exp.tags["mlflow.note.content"]
    version = mlflow.MlflowClient().get_model_version("stockcast-tft", result.model_version)
    assert version.status == "READY" and version.tags["run_id"] == result.run_id


def test_test_window_is_the_last_periods_and_never_used_for_selection(smoke_train):
    result, cfg = smoke_train
    f = result.forecast
    assert f["period"].min() == pd.Timestamp("2017-10-01") and f["period"].max() == pd.Timestamp("2017-12-01")
    assert (f["forecast_origin"] == pd.Timestamp("2017-09-01")).all()
    run = mlflow.get_run(result.run_id)
    # validation window (early stopping) ends before the test window starts
    assert int(run.data.params["split.val_end"]) < int(run.data.params["split.test_start"])
    # the logged test metric is the metric of the returned forecast table
    mae = (f[quantile_column(0.5)] - f["demand"]).abs().mean()
    assert run.data.metrics["test_mae"] == pytest.approx(mae, rel=1e-6)


def test_registered_model_predicts_forecast_table(model):
    req = _raw_request(n_future=3)
    out = model.predict(req)
    assert list(out.columns[:5]) == ["item_id", "location_id", "period", "forecast_origin", "horizon"]
    assert len(out) == 2 * 3
    assert set(out.location_id) == {"Agency_01", "Agency_02"}
    assert out["period"].min() == pd.Timestamp("2017-10-01")
    assert sorted(out.horizon.unique()) == [1, 2, 3]
    q = out[QCOLS].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all(), "quantiles cross"
    assert (q >= 0).all()
    # demand units: Agency_02 sells ~100x more SKU_01 than Agency_01
    med = out.groupby("location_id")[quantile_column(0.5)].mean()
    assert med["Agency_02"] > 10 * med["Agency_01"]


def test_shorter_horizon_is_accepted(model):
    out = model.predict(_raw_request(n_future=1))
    assert len(out) == 2 and (out.horizon == 1).all()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns=["avg_max_temp"]), r"model_input\.avg_max_temp: missing_column"),
        (lambda d: d.drop(columns=["volume"]), r"model_input\.volume: missing_column"),
        (lambda d: d.assign(agency=d.agency.astype(str).replace("Agency_02", "Agency_99")), r"model_input\.agency: known_category.*Agency_99"),
        (lambda d: d.assign(sku="SKU_404"), r"model_input\.sku: known_category.*SKU_404"),
        (lambda d: d[d.date >= "2017-08-01"], r"enough_history.*SKU_01@Agency_0[12]"),
        (lambda d: d[d.volume.notna()], r"future_rows"),
        (lambda d: d.assign(price_regular=d.price_regular.astype(object).where(d.index % 7 != 0, "n/a")), r"model_input\.price_regular: numeric"),
        (lambda d: d.assign(date="not a date"), r"model_input\.date: date_format"),
    ],
    ids=["missing-covariate", "missing-target", "unknown-location", "unknown-item", "short-history", "no-future", "non-numeric", "bad-dates"],
)
def test_bad_requests_raise_clear_errors(model, mutate, match):
    with pytest.raises(DataValidationError, match=match):
        model.predict(mutate(_raw_request()))


def test_too_long_horizon_is_rejected(model):
    with pytest.raises(DataValidationError, match=r"horizon.*\(3\)"):
        model.predict(_raw_request(n_future=4))


def test_crash_marks_run_failed_and_registers_nothing(tmp_path, tracking_uri):
    from stockcast.tasks.train import run

    client = mlflow.MlflowClient()
    before = len(client.search_model_versions("name='stockcast-tft'"))
    cfg = compose_config("train", ["experiment=smoke", "tft.hidden_size=-1"], tmp_path)
    with pytest.raises(RuntimeError, match="negative dimension"):
        run(cfg)
    runs = mlflow.search_runs(experiment_names=["stockcast-train"], order_by=["start_time DESC"], max_results=1)
    assert runs.iloc[0]["status"] == "FAILED"
    assert len(client.search_model_versions("name='stockcast-tft'")) == before


def test_resume_continues_the_same_run(tmp_path, tracking_uri):
    from stockcast.tasks.train import run

    first = run(compose_config("train", ["experiment=smoke", "trainer.max_epochs=1", "register_model=false", *LEAN_TRAIN], tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert last.exists()
    second = run(
        compose_config(
            "train",
            ["experiment=smoke", "trainer.max_epochs=2", "register_model=false", f"ckpt_path={last}", *LEAN_TRAIN],
            tmp_path / "b",
        )
    )
    assert second.run_id == first.run_id
    # figures=false (LEAN_TRAIN): the tables are logged, the charts are not
    client = mlflow.MlflowClient()
    arts = {a.path for d in ("forecasts", "interpretation") for a in client.list_artifacts(first.run_id, d)}
    assert {"forecasts/test_forecast.csv", "interpretation/variable_importance.csv"} <= arts
    assert not [a for a in arts if a.endswith(".png")]
    assert second.metrics["epochs_trained"] == 2
    assert mlflow.get_run(first.run_id).info.status == "FINISHED"
    # the resume's longer cosine schedule cannot change a logged param: the first one stays
    assert mlflow.get_run(first.run_id).data.params["learning_rate"] == "[0.01]"
