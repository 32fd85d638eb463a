"""monitor.py: drift flags, alert file, MLflow run and the exit code a scheduler reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pytest

from stockcast import PROJECT_ROOT
from stockcast.tasks import monitor as monitor_task
from tests.conftest import MONITOR_MODEL, compose_config


def _monitor_cfg(tmp_path, *extra):
    return compose_config("monitor", ["experiment=smoke", f"model_name={MONITOR_MODEL}", f"monitor.alert_file={tmp_path / 'alert.json'}", *extra], tmp_path)


def test_monitor_flags_drift_writes_the_alert_and_logs_the_run(early_model, tmp_path):
    # a band no forecast can meet: drift, whatever the model
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=0.0"))
    assert result.status == "drift" and result.exit_code == 3
    # newly arrived = after the model's data_end (2017-06-01), newest `window` of them
    assert result.periods == ["2017-09-01", "2017-10-01", "2017-11-01", "2017-12-01"]
    alert = json.loads((tmp_path / "alert.json").read_text())
    assert alert["drift"] is True and alert["model"]["data_end"] == "2017-06-01"
    assert {"scope": "overall", "rule": "pinball_ratio_max"}.items() <= alert["breaches"][0].items()
    assert alert["metrics"]["monitor_pinball_ratio"] == pytest.approx(result.metrics["monitor_pinball_ratio"])
    # the issued forecasts were made one period ahead, from data up to the period before
    f = result.forecasts
    assert (f["horizon"] == 1).all() and set(f["period"].dt.strftime("%Y-%m-%d")) == set(result.periods)
    assert (f["forecast_origin"] < f["period"]).all()
    rec = mlflow.get_run(result.run_id)
    assert rec.info.status == "FINISHED" and rec.data.tags["monitor.drift"] == "true"
    assert rec.data.metrics["monitor_drift"] == 1.0 and "reference_pinball_scaled" in rec.data.metrics


def test_monitor_inside_the_band_is_ok(early_model, tmp_path):
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=100", "monitor.band.coverage_drop_max=1", "monitor.band.bias_shift_max=100", "monitor.as_of=2017-08-01"))
    assert result.status == "ok" and result.exit_code == 0 and result.breaches == []
    assert result.periods == ["2017-07-01", "2017-08-01"]  # as_of cuts the data at August
    assert json.loads((tmp_path / "alert.json").read_text())["status"] == "ok"


def test_monitor_with_no_new_actuals(early_model, tmp_path):
    result = monitor_task.run(_monitor_cfg(tmp_path, f"model={early_model.model_version}", "monitor.as_of=2017-06-01"))
    assert result.status == "no_new_actuals" and result.exit_code == 0 and result.periods == []


def test_monitor_cli_exit_code_is_what_a_scheduler_reads(early_model, tmp_path, tracking_uri):
    alert = tmp_path / "cli_alert.json"
    cmd = [sys.executable, "monitor.py", f"model_name={MONITOR_MODEL}", f"model={early_model.model_version}", "monitor.band.pinball_ratio_max=0", f"monitor.alert_file={alert}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "status DRIFT" in proc.stdout
    assert json.loads(alert.read_text())["exit_code"] == 3


