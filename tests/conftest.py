"""Shared fixtures: an isolated MLflow store and composed Hydra configs under tmp paths."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import stockcast.config  # noqa: F401
from stockcast import PROJECT_ROOT

CONF_DIR = str(PROJECT_ROOT / "conf")

# One intra-op thread per test process (and its subprocesses): tests run side by side
# (pytest-xdist) on small machines, where torch's default of one thread per core
# oversubscribes the cores and makes every training step many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as ``@hydra.main`` would, outputs under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite MLflow store for the whole test session (never the project's mlruns/)."""
    db = tmp_path_factory.mktemp("mlruns") / "mlflow.db"
    uri = f"sqlite:///{db}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(scope="session")
def smoke_train(tmp_path_factory, tracking_uri):
    """The smoke experiment trained once and shared: (result, cfg)."""
    from stockcast.tasks.train import run

    out = tmp_path_factory.mktemp("smoke_train")
    cfg = compose_config("train", ["experiment=smoke"], out)
    return run(cfg), cfg


#: Overrides of the trainings whose charts and permutation importance no test reads (about
#: a third of a smoke training); the smoke run's charts are checked in tests/tasks/test_train.py,
#: the permutation importance in tests/forecast/test_interpret.py.
LEAN_TRAIN = ["figures=false", "permutation_importance.enabled=false"]
#: The same for evaluations (their charts are checked in tests/tasks/test_evaluate.py).
LEAN_EVALUATE = ["figures=false"]


#: Registered model name of the early model (kept apart from stockcast-tft).
MONITOR_MODEL = "monitor-test-tft"


@pytest.fixture(scope="session")
def early_model(tmp_path_factory, tracking_uri):
    """A smoke model trained on Stallion up to June 2017 (10 series): later data is 'new'."""
    from stockcast.tasks.train import run

    out = tmp_path_factory.mktemp("early")
    cfg = compose_config("train", ["experiment=smoke", "max_series=10", "data.until=2017-06-01", f"model_name={MONITOR_MODEL}", *LEAN_TRAIN], out)
    return run(cfg)


@pytest.fixture(scope="session")
def synthetic_smoke_train(tmp_path_factory, tracking_uri):
    """The smoke experiment on the synthetic network (known true quantiles), trained once."""
    from stockcast.tasks.train import run

    out = tmp_path_factory.mktemp("synthetic_smoke_train")
    cfg = compose_config("train", ["experiment=smoke", "data=synthetic", "model_name=synthetic-smoke-tft", *LEAN_TRAIN], out)
    return run(cfg), cfg


def pytest_collection_modifyitems(config, items):
    """Test files with a ``slow`` test run first (the order is stable otherwise).

    ``make test`` gives each pytest-xdist worker whole files (``--dist loadfile``) in
    collection order (``--no-loadscope-reorder``): started first, the few long files run
    side by side while the many short ones fill the gaps at the end, instead of one long
    file running alone after everything else.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
