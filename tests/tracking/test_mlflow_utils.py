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


@pytest.fixture
def private_store(tmp_path, monkeypatch):
    """A fresh SQLite store for one test. MLflow's global tracking URI is put back afterwards:
    ``setup_tracking()`` sets it, and a later test of the same worker that reads the session's
    store through it (``mlflow.get_run``) must not land in this one."""
    from mlflow.tracking._tracking_service import utils

    before = utils._tracking_uri
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(before)


def test_an_experiment_created_by_another_job_meanwhile_is_used(private_store, monkeypatch):
    """Two jobs look the experiment up, both find none, both create it: the second one gets
    RESOURCE_ALREADY_EXISTS from the store (SQLite or a server) and uses the first one's."""
    from stockcast.tracking import mlflow_utils

    first = mlflow_utils.get_experiment_id("stockcast-race")
    monkeypatch.setattr(mlflow, "get_experiment_by_name", _none_once(mlflow.get_experiment_by_name))
    assert mlflow_utils.get_experiment_id("stockcast-race") == first


def _none_once(lookup):
    calls = []

    def stale(name):
        calls.append(name)
        return None if len(calls) == 1 else lookup(name)

    return stale


# What a PostgreSQL-backed server answered in CI when three trainings logged one dataset at once.
_PG_RACE = (
    "BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates unique "
    'constraint "dataset_pk"\nDETAIL:  Key (experiment_id, name, digest)=(1, stallion, '
    "e7fd7d6c1c33a043) already exists."
)


def _tiny_panel():
    import pandas as pd

    periods = pd.date_range("2024-01-01", periods=2, freq="W-MON")
    return pd.DataFrame({"item_id": ["a", "a"], "location_id": ["x", "x"], "period": periods, "demand": [1.0, 2.0]})


def _fail_once(log_input, message):
    calls = []

    def racing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise mlflow.exceptions.MlflowException(message)
        return log_input(*args, **kwargs)

    return racing, calls


def test_a_dataset_inserted_by_a_concurrent_run_is_linked_not_fatal(private_store, monkeypatch):
    """The run that loses the race on the datasets table retries and ends with the input."""
    from stockcast.tracking import mlflow_utils

    monkeypatch.setattr(mlflow_utils.time, "sleep", lambda s: None)
    racing, calls = _fail_once(mlflow.log_input, _PG_RACE)
    monkeypatch.setattr(mlflow, "log_input", racing)
    panel = _tiny_panel()
    # an explicit experiment id: set_experiment would leave this store's experiment active
    # for every later test of the worker
    experiment = mlflow.MlflowClient().create_experiment("stockcast-dataset-race")
    with mlflow.start_run(experiment_id=experiment) as run:
        fp = mlflow_utils.log_fingerprint(
            panel, name="tiny", source="tiny.parquet", context="training"
        )
    assert len(calls) == 2
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [
        ("tiny", fp["data_sha256"][:16])
    ]


def test_any_other_store_error_on_the_dataset_input_is_raised_at_once(private_store, monkeypatch):
    from stockcast.tracking import mlflow_utils

    racing, calls = _fail_once(mlflow.log_input, "INVALID_PARAMETER_VALUE: dataset name too long")
    monkeypatch.setattr(mlflow, "log_input", racing)
    panel = _tiny_panel()
    experiment = mlflow.MlflowClient().create_experiment("stockcast-dataset-error")
    with mlflow.start_run(experiment_id=experiment), pytest.raises(mlflow.exceptions.MlflowException, match="too long"):
        mlflow_utils.log_fingerprint(panel, name="tiny", context="training")
    assert len(calls) == 1
