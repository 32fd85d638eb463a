"""A team tracking server: ``mlflow server`` on PostgreSQL, artifacts served over HTTP.

The fixtures start a throwaway PostgreSQL cluster in a temporary folder (as the ``postgres``
user when the tests run as root: PostgreSQL refuses to run as root) and an ``mlflow server``
on 127.0.0.1 backed by it (``--serve-artifacts --artifacts-destination``). The entry points
then run as a user runs them, in subprocesses with ``MLFLOW_TRACKING_URI=http://...``: three
smoke trainings started together, then evaluate, optimize and backtest (chained by
``pipeline.py``, as ``make run`` runs them). Skipped only where no
PostgreSQL server binaries exist (``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest

from stockcast import PROJECT_ROOT
from tests.conftest import LEAN_TRAIN

pytestmark = pytest.mark.slow  # about 5 minutes of subprocesses on 2 CPU cores

#: PostgreSQL runs as this user when the tests run as root.
PG_USER = "postgres"
FALLBACK_PG_USER = "stockcast-pg"
TASK_TIMEOUT_S = 900


def _pg_bin() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl``, ``createdb``: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "createdb").exists():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The user PostgreSQL runs as: None = this one (not root), else an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in (PG_USER, FALLBACK_PG_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_PG_USER], check=True)
    return FALLBACK_PG_USER


def _run(cmd: list[str], user: str | None, **kwargs) -> subprocess.CompletedProcess:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster on 127.0.0.1 with a database ``mlflow``: its SQLAlchemy URI."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="stockcast-pg-"))  # under /tmp: reachable by that user
    if user is not None:
        shutil.chown(root, user)
    data, port = root / "data", _free_port()
    _run([str(pg_bin / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8",
          "--no-sync"], user)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-t", "60",
          "-o", options, "start"], user)
    try:
        _run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"], None)
        # psycopg2 named explicitly: SQLAlchemy 2.1 takes a bare postgresql:// for psycopg 3
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(["runuser", "-u", user, "--"] * (user is not None)
                       + [str(pg_bin / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """``mlflow server`` on the cluster, serving artifacts from a local folder."""
    tmp = tmp_path_factory.mktemp("tracking-server")
    artifacts, port = tmp / "artifacts", _free_port()
    log = open(tmp / "server.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
         "--serve-artifacts", "--artifacts-destination", str(artifacts),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the first start migrates the schema
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited {proc.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after 300 s:\n{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield SimpleNamespace(uri=uri, db=postgres, artifacts=artifacts, tmp=tmp,
                              client=mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers (own session)
        try:
            # a throwaway server: a graceful stop (5-18 s measured) is not waited for
            proc.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


def _task(script: str, server, name: str, *overrides: str) -> tuple[subprocess.Popen, Path]:
    """Start ``python <script> experiment=smoke ...`` against the server: (process, its log)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri, "OMP_NUM_THREADS": "1"}
    out = server.tmp / name
    out.mkdir()
    cmd = [sys.executable, script, "experiment=smoke", f"paths.log_dir={out / 'outputs'}", *overrides]
    with open(out / "log.txt", "w") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, out / "log.txt"


def _finish(started: tuple[subprocess.Popen, Path]) -> str:
    """Wait for a task; its output (stdout and stderr), failing on a non-zero exit."""
    proc, log = started
    proc.wait(TASK_TIMEOUT_S)
    text = log.read_text()
    assert proc.returncode == 0, f"{proc.args[1]} exited {proc.returncode}:\n{text[-3000:]}"
    return text


def _runs(server, experiment: str):
    exp = server.client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    return server.client.search_runs([exp.experiment_id])


@pytest.fixture(scope="module")
def trained(server):
    """Three smoke trainings started together: what each printed."""
    started = [_task("train.py", server, f"train{i}", f"run_name=together-{i}", *LEAN_TRAIN) for i in range(3)]
    return [_finish(s) for s in started]


def test_three_trainings_started_together_land_with_distinct_versions(server, trained):
    runs = _runs(server, "stockcast-train")
    assert sorted(r.info.run_name for r in runs) == ["together-0", "together-1", "together-2"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    versions = server.client.search_model_versions("name='stockcast-tft'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in runs)
    for out in trained:
        assert "registered models:/stockcast-tft/" in out
    for run in runs:
        # artifacts go through the server (mlflow-artifacts:/...) into its destination folder
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
        stored = list(server.artifacts.rglob(f"{run.info.run_id}/**/checkpoints/*.ckpt"))
        assert stored, f"no checkpoint of {run.info.run_id} under {server.artifacts}"


def test_the_store_is_postgresql(server, trained):
    import psycopg2

    with psycopg2.connect(server.db.replace("postgresql+psycopg2", "postgresql")) as conn:
        with conn.cursor() as cur:
            cur.execute("select count(*) from runs where status = 'FINISHED'")
            assert cur.fetchone()[0] >= 3
            cur.execute("select version from model_versions where name = 'stockcast-tft' order by version")
            assert [v for (v,) in cur.fetchall()] == [1, 2, 3]
    conn.close()


def test_evaluate_optimize_and_backtest_use_the_served_model(server, trained):
    """Each task reads the registered model (and its artifacts) over HTTP and logs a run;
    the three run as ``make run`` chains them (pipeline.py, one process)."""
    out = _finish(_task("pipeline.py", server, "pipeline", "--steps=evaluate,optimize,backtest"))
    assert "== the answer ==" in out
    for experiment in ("stockcast-evaluate", "stockcast-optimize", "stockcast-backtest"):
        runs = _runs(server, experiment)
        top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert len(top) == 1 and top[0].info.status == "FINISHED", (experiment, [r.info.status for r in runs])
        assert top[0].data.metrics, f"{experiment}: no metrics logged"
    for exp in server.client.search_experiments():
        statuses = {r.info.status for r in server.client.search_runs([exp.experiment_id])}
        assert "RUNNING" not in statuses, exp.name
