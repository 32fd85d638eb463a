"""MLflow conventions: a fresh SQLite store initialised once when processes start together."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest

from stockcast import PROJECT_ROOT

JOB = textwrap.dedent(
    """
    import sys, time
    import mlflow
    from stockcast.tracking.mlflow_utils import setup_tracking, tracked_run

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    while time.time() < float(sys.argv[1]):  # every job opens the store at the same moment
        time.sleep(0.001)
    setup_tracking()
    with tracked_run("stockcast-concurrency", run_name=sys.argv[2]):
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
        version = mlflow.register_model(info.model_uri, "concurrency-test")
    print("VERSION", version.version)
    """
)


@pytest.mark.slow
def test_jobs_started_together_on_a_fresh_sqlite_store_all_land(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    start = time.time() + 8.0  # after every interpreter has imported mlflow
    procs = [
        subprocess.Popen([sys.executable, "-c", JOB, str(start), f"job{i}"], cwd=PROJECT_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    versions = sorted(int(line.split()[1]) for out, _ in outs for line in out.splitlines() if line.startswith("VERSION"))
    assert versions == [1, 2, 3]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("stockcast-concurrency")
    finished = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in finished) == ["FINISHED"] * 3


def test_an_experiment_created_by_another_job_meanwhile_is_used(tmp_path, monkeypatch):
    """Two jobs look the experiment up, both find none, both create it: the second one gets
    RESOURCE_ALREADY_EXISTS from the store (SQLite or a server) and uses the first one's."""
    from stockcast.tracking import mlflow_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    first = mlflow_utils.get_experiment_id("stockcast-race")
    monkeypatch.setattr(mlflow, "get_experiment_by_name", _none_once(mlflow.get_experiment_by_name))
    assert mlflow_utils.get_experiment_id("stockcast-race") == first


def _none_once(lookup):
    calls = []

    def stale(name):
        calls.append(name)
        return None if len(calls) == 1 else lookup(name)

    return stale
