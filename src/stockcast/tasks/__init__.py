"""Tasks: the only code that sees configs (``DictConfig``), MLflow runs and the console.

One module per entry point (``train``, ``evaluate``, ``monitor``, ``drift_demo``,
``optimize``, ``backtest``), each with ``run(cfg) -> <Result>`` and ``summary(result) -> str``;
the scripts at the repository root are thin ``@hydra.main`` wrappers around them. Tasks never
import each other: a task that runs another one (the drift demo runs training, evaluation and
the monitor the way a scheduler would; ``pipeline`` chains the main job in one process) calls
:func:`run_task` with a config composed from the other task's own config file.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from omegaconf import DictConfig

TASKS = ("train", "evaluate", "monitor", "drift_demo", "optimize", "backtest")


def _task(name: str) -> ModuleType:
    """The module of task ``name``; a name outside :data:`TASKS` is refused."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {TASKS}")
    return importlib.import_module(f"stockcast.tasks.{name}")


def run_task(name: str, cfg: DictConfig) -> Any:
    """Run task ``name`` (a module of this package) with a composed config, as its entry
    point would, and return its result."""
    return _task(name).run(cfg)


def summarize(name: str, result: Any) -> str:
    """What task ``name``'s entry point prints for ``result`` (its ``summary``)."""
    return _task(name).summary(result)
