"""The main job in one process: train -> evaluate -> optimize -> backtest (``make run``).

Each step is configured exactly as its own entry point would configure it (its config file
composed with the same overrides, :func:`stockcast.config.compose_task`), writes its outputs
and its log to ``<paths.log_dir>/<task>/runs/<stamp>/`` (the composed config beside them in
``.hydra/``), logs its MLflow runs and prints its summary; the backtest's ends with the
answer. Running the four steps in one process imports torch, Lightning and MLflow once
instead of four times (about 8 s each on 2 CPU cores). Process-wide settings a step changes
(torch's intra-op threads, set by training) are restored before the next one. The steps stay
separate scripts too (``train.py`` ...): this only chains them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from stockcast.config import compose_task
from stockcast.tasks import run_task, summarize

STEPS = ("train", "evaluate", "optimize", "backtest")
#: Hydra's job-log format, so a chained step's log reads like its own entry point's.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


class StepFailed(RuntimeError):
    """A step of the pipeline raised; ``step`` names it, the cause is chained."""

    def __init__(self, step: str, err: BaseException) -> None:
        super().__init__(f"step {step} failed: {type(err).__name__}: {err}")
        self.step = step


def run(overrides: Sequence[str] = (), steps: Sequence[str] = STEPS,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``steps`` in order, each with ``overrides``; their results by step.

    Raises:
        ValueError: An unknown step (before anything runs).
        StepFailed: A step's composition or run raised (the steps before it are kept:
            their MLflow runs and models are complete).
    """
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"pipeline: unknown step(s) {unknown}; choose from {list(STEPS)}")
    import torch  # every step but optimize's plan needs it; imported here to keep its defaults

    threads = torch.get_num_threads()
    results: dict[str, Any] = {}
    for step in steps:
        echo(f"$ python {step}.py {' '.join(overrides)}".rstrip())
        try:
            cfg = compose_task(step, list(overrides))
            out = _run_dir(Path(cfg.paths.log_dir) / str(cfg.task_name) / "runs")
            cfg.paths.output_dir = str(out)
            (out / ".hydra").mkdir()
            OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
            OmegaConf.save(OmegaConf.create(list(overrides)), out / ".hydra" / "overrides.yaml")
            with _log_file(out / f"{step}.log"):
                results[step] = run_task(step, cfg)
        except Exception as err:  # noqa: BLE001  (named and chained for the entry point)
            raise StepFailed(step, err) from err
        finally:
            torch.set_num_threads(threads)  # train sets its own: the next step starts afresh
        echo(summarize(step, results[step]))
    return results


def _run_dir(parent: Path) -> Path:
    """A new ``<stamp>`` folder under ``parent`` (as Hydra's run dir; ``_1`` ... if taken)."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(100):
        out = parent / (stamp if k == 0 else f"{stamp}_{k}")
        try:
            out.mkdir()
            return out
        except FileExistsError:
            continue
    raise FileExistsError(f"pipeline: no free run folder for {stamp} under {parent}")


@contextmanager
def _log_file(path: Path):
    """The step's log records into ``path`` (the console handler is the entry point's)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
