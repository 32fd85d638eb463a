"""MLflow conventions in one place: tracking URI, experiments, runs, params, fingerprints.

* Tracking URI: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project>/mlruns/mlflow.db``
  (resolved against the project root, not the current directory).
* Artifacts of a SQLite store live beside the database (``<db dir>/artifacts``).
* One experiment per task: ``stockcast-train``, ``stockcast-evaluate``, ...
* A run that raises is ended ``FAILED`` (``KILLED`` on Ctrl-C, SIGTERM or exit): no run is
  left RUNNING.
* A fresh SQLite store is initialised once, under a file lock (:func:`setup_tracking`).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.schema import panel_fingerprint

#: Tag holding the parent run of a Hydra multirun (children carry ``mlflow.parentRunId``).
PARENT_RUN_FILE = ".mlflow_parent_run_id"


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` or the project's SQLite store."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


#: SQLite stores this process has already initialised (see :func:`setup_tracking`).
_READY: set[str] = set()


def setup_tracking() -> str:
    """Point MLflow at :func:`tracking_uri`; a SQLite store is created (and migrated) once.

    Processes that open a fresh SQLite store at the same moment (a multirun, three trainings
    started together) would race in MLflow's schema migration; the first one creates the
    tables while holding an exclusive lock on ``<db>.lock`` and the others wait for it.
    """
    uri = tracking_uri()
    db = _sqlite_path(uri)
    if db is not None and uri not in _READY:
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(db.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.search_experiments(max_results=1)  # creates / migrates the tables
                client.search_registered_models(max_results=1)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        _READY.add(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


#: What each task's experiment holds (shown in the MLflow UI's experiment description).
EXPERIMENT_DESCRIPTIONS = {
    "stockcast-train": "Training runs: a quantile TFT fitted on a dataset's training window, "
    "early-stopped on its validation window, calibrated, scored on the held-out test window and "
    "registered as a version of stockcast-tft (config, data fingerprint, per-epoch losses, "
    "test metrics, interpretation, checkpoint).",
    "stockcast-evaluate": "Evaluations: a registered model against the baselines on rolling "
    "origins of its test window (one child run per model), interpretation, calibration and the "
    "champion gate's decision.",
    "stockcast-monitor": "Drift checks: newly arrived actuals against the forecasts the model "
    "issued for them, overall and per segment, with the alert a scheduler reads.",
    "stockcast-drift_demo": "The continuous-learning demo: monitor, retrain and gate as "
    "weeks of synthetic data with a regime change arrive one at a time.",
    "stockcast-optimize": "Network plans: quantile forecasts, economics and the supply network "
    "turned into order, transfer, sourcing and markdown decisions (CVXPY), with disruptions.",
    "stockcast-backtest": "Backtests: replenishment policies replayed period by period against "
    "actual demand; KPIs, inventory at matched service, report.",
}


def get_experiment_id(name: str) -> str:
    """Experiment id by name, creating it (artifacts beside a SQLite store, its description
    from :data:`EXPERIMENT_DESCRIPTIONS`) if absent."""
    setup_tracking()
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    db = _sqlite_path(mlflow.get_tracking_uri())
    location = (db.parent / "artifacts").as_uri() if db is not None else None
    description = EXPERIMENT_DESCRIPTIONS.get(name)
    tags = {"mlflow.note.content": description} if description else None
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=tags)
    except MlflowException as err:
        # jobs started together (a sweep, a team's server): another one created it first
        exp = mlflow.get_experiment_by_name(name)
        if err.error_code != "RESOURCE_ALREADY_EXISTS" or exp is None:
            raise
        return exp.experiment_id


@contextmanager
def tracked_run(
    experiment: str,
    *,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start (or resume) a run; end it FINISHED, FAILED on error, KILLED on interrupt."""
    exp_id = get_experiment_id(experiment)
    all_tags = dict(tags or {})
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = mlflow.start_run(
        run_id=run_id,
        nested=mlflow.active_run() is not None,
        experiment_id=None if run_id else exp_id,
        run_name=None if run_id else run_name,
        tags=all_tags or None,
    )
    try:
        yield run
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM (preemption), sys.exit
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config into ``a.b.c`` keys (lists become JSON strings)."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, Any] = {}
    for key, value in container.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def log_config(cfg: DictConfig) -> None:
    """Log the flattened resolved config as params and the full config as an artifact."""
    params = {k: ("null" if v is None else v) for k, v in flatten(cfg).items()}
    mlflow.log_params(params)
    mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")


def log_fingerprint(
    panel: pd.DataFrame,
    prefix: str = "data",
    *,
    name: str | None = None,
    source: str | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """Log the panel's fingerprint as params and, with ``name``, as an MLflow dataset input
    (``mlflow.data``: name, digest, source), so the UI's Dataset column shows what the run saw.

    Args:
        panel: The canonical panel the run used.
        prefix: Param name prefix (``data_sha256``, ``data_rows``...).
        name: Dataset name (the data config's ``name``).
        source: Where the data came from (a file path or the generator config).
        context: What the run used it for (``training``, ``evaluation``...).
    """
    fp = panel_fingerprint(panel)
    renamed = {k.replace("data", prefix, 1): v for k, v in fp.items()}
    mlflow.log_params(renamed)
    mlflow.set_tags({f"{prefix}.sha256": fp["data_sha256"]})
    if name is not None:
        dataset = mlflow.data.from_pandas(
            panel, source=source or name, name=name, digest=fp["data_sha256"][:16], targets="demand"
        )
        _log_input_racing(dataset, context)
    return fp


# What the tracking store answers when two runs insert the same dataset row at once
# (PostgreSQL, MySQL and SQLite spellings): MLflow's ``log_inputs`` looks the dataset up
# and then inserts it, so concurrent runs on one dataset can race on ``datasets``' key.
_DUPLICATE_DATASET = (
    "UniqueViolation",
    "Duplicate entry",
    "UNIQUE constraint failed",
    "dataset_pk",
)


def _log_input_racing(dataset: Any, context: str | None, attempts: int = 4) -> None:
    """``mlflow.log_input``, retried when a concurrent run inserted the same dataset first.

    The losing run's retry finds the winner's row and only links it to its own run, so
    every run ends with the dataset input and the store keeps one dataset row.
    """
    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as err:
            if attempt == attempts - 1 or not any(k in str(err) for k in _DUPLICATE_DATASET):
                raise
            time.sleep(0.2 * (attempt + 1))


def log_table(df: pd.DataFrame, artifact_path: str) -> None:
    """Log a DataFrame as CSV (and markdown when the name ends in .md)."""
    if artifact_path.endswith(".md"):
        mlflow.log_text(df.to_markdown(index=False), artifact_path)
    else:
        mlflow.log_text(df.to_csv(index=False), artifact_path)


def multirun_parent_id(sweep_dir: str | Path | None) -> str | None:
    """Parent run id written by the multirun callback into the sweep folder, if any."""
    if sweep_dir is None:
        return None
    f = Path(sweep_dir) / PARENT_RUN_FILE
    return f.read_text().strip() if f.exists() else None
