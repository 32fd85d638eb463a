"""``trainer=ddp_cpu``: the smoke experiment trained by 2 DDP processes (gloo), as a user runs it.

``python train.py experiment=smoke trainer=ddp_cpu`` in a subprocess: Lightning's launcher
re-runs the script for rank 1 in rank 0's Hydra output dir; the code path is the one
``trainer=ddp`` takes on GPUs with NCCL.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import mlflow
import pytest

from stockcast import PROJECT_ROOT
from tests.conftest import LEAN_TRAIN

pytestmark = pytest.mark.slow  # two training processes (gloo) and a single-process reference


@pytest.fixture(scope="module")
def ddp_smoke(tmp_path_factory):
    """One DDP smoke training in a fresh store: (completed process, client, outputs dir)."""
    tmp = tmp_path_factory.mktemp("ddp")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    outputs = tmp / "outputs"
    cmd = [sys.executable, "train.py", "experiment=smoke", "trainer=ddp_cpu", f"paths.log_dir={outputs}", *LEAN_TRAIN]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    return proc, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), outputs


def test_two_ranks_make_one_finished_run_and_one_version(ddp_smoke):
    proc, client, outputs = ddp_smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    # two processes joined one process group (Lightning's distributed log, at the rank level)
    out = proc.stderr + proc.stdout
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in out
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FINISHED"]  # rank 1 opened none, none RUNNING
    run = runs[0]
    versions = client.search_model_versions("name='stockcast-tft'")
    assert len(versions) == 1 and versions[0].run_id == run.info.run_id
    assert versions[0].tags["run_id"] == run.info.run_id
    # rank 0 alone logged the epochs: one val_loss per epoch, not one per rank
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
    # both ranks worked in one Hydra output dir: rank 0's, where the run id is written
    (run_dir,) = (outputs / "train" / "runs").iterdir()
    assert (run_dir / "mlflow_run_id").read_text() == run.info.run_id
    assert (run_dir / "train_ddp_process_1.log").exists()


def test_both_ranks_trained_with_the_single_process_encoders(ddp_smoke, smoke_train, tracking_uri):
    """The datamodule's fingerprints of rank 0 and rank 1 are equal, and equal to those of
    the single-process smoke run (same data, same encoders, whatever the world size)."""
    proc, client, _ = ddp_smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    params = run.data.params
    ranks = sorted(k for k in params if k.startswith("encoder_fingerprint.rank"))
    assert ranks == ["encoder_fingerprint.rank0", "encoder_fingerprint.rank1"]
    assert len(params["encoder_fingerprint.rank0"]) == 64
    assert params["encoder_fingerprint.rank1"] == params["encoder_fingerprint.rank0"]
    single = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(smoke_train[0].run_id).data.params
    assert single["encoder_fingerprint.rank0"] == params["encoder_fingerprint.rank0"]
    assert "encoder_fingerprint.rank1" not in single


def test_ddp_test_metrics_are_consistent_with_a_single_process_run(ddp_smoke, smoke_train):
    """"Consistent" = finite and within a factor 2 of the single-process smoke run (seed 42).

    Not identical: each rank draws its own shard, so each of the 3 steps per epoch averages
    two ranks' batches of 32 (64 samples) where the single process takes one batch, and the
    validation losses are each rank's own share. The test metrics are rank 0's forecasts of
    the whole test window, like the single run's (seen: ratios 0.92-1.01).
    """
    proc, client, _ = ddp_smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    ddp = run.data.metrics
    single = smoke_train[0].metrics
    for key in ("test_mae", "test_pinball", "test_rmse"):
        assert math.isfinite(ddp[key]) and math.isfinite(single[key]), key
        assert 0.5 <= ddp[key] / single[key] <= 2.0, (key, ddp[key], single[key])
    assert 0.0 <= ddp["test_coverage_80"] <= 1.0
