"""The console of the entry points: third-party noise filtered, progress on long steps.

:func:`quiet_third_party` is called once by every entry point (``train.py`` ...), never by
library code or by the test configuration: it filters only messages known to be noise for a
user of stockcast (Lightning's advertising tips and device banners, pytorch-forecasting's
``save_hyperparameters`` and pytree deprecation warnings, MLflow's integer-schema hint,
database-migration info and artifact download bars, HiGHS's banner). Errors and every other
warning stay loud.

:func:`progress` is a rich progress bar for steps that take more than a few seconds
(baselines, rolling origins, backtest tuning runs, the drift demo).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: (warning message regex, category) pairs that are known noise.
NOISE_WARNINGS = (
    (r".*is an instance of `nn.Module` and is already saved during checkpointing.*", UserWarning),
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*", Warning),
    (r"Hint: Inferred schema contains integer column\(s\).*", UserWarning),
    (r".*does not have many workers which may be a bottleneck.*", UserWarning),
    (r".*The number of training batches \(\d+\) is smaller than the logging interval.*", UserWarning),
    (r".*Checkpoint directory .* exists and is not empty.*", UserWarning),
    (r".*`resume_download` is deprecated.*", FutureWarning),
    # MLflow registers its local-file dataset source twice, then warns that a path is ambiguous
    (r"The specified dataset source can be interpreted in multiple ways.*", UserWarning),
    # pytorch-forecasting scales covariates with scalers fitted on a DataFrame, then passes arrays
    (r"X does not have valid feature names, but \w+ was fitted with feature names", UserWarning),
)

#: Loggers whose INFO lines are banners or tips, not information about the run.
NOISE_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
    "mlflow.store.db.utils",
    "alembic.runtime.migration",
    "mlflow.tracking._tracking_service.client",
    "mlflow.models.model",
    "cmdstanpy",
    "matplotlib.font_manager",  # "generated new fontManager" on a fresh machine's first plot
    "mlflow.pyfunc",            # "Validating input example against model signature"
)

#: (logger, message regex) pairs: WARNING lines of a logger that are known noise. MLflow
#: warns that a pyfunc given as a Python object is pickled with cloudpickle: stockcast's
#: models are logged so on purpose (the wrapper holds the trained network).
NOISE_LOG_MESSAGES = (
    ("mlflow.pyfunc", r"Passing a Python object as `python_model` causes it to be serialized"),
)


class _DropMessages(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_third_party() -> None:
    """Silence the known third-party noise of a stockcast run (entry points only)."""
    for message, category in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # mlforecast's ratio lag features divide by zero on series with zero demand (the LightGBM
    # baseline handles the resulting inf/NaN features); the warning names no row of the user's
    warnings.filterwarnings("ignore", message=r"(divide by zero|invalid value) encountered",
                            category=RuntimeWarning, module=r"mlforecast\.lag_transforms")
    for name in NOISE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, pattern in NOISE_LOG_MESSAGES:
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) and f.pattern.pattern == pattern
                   for f in log.filters):
            log.addFilter(_DropMessages(pattern))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _swallow_highs_banner()


def _swallow_highs_banner() -> None:
    """HiGHS (the MIP solver of plans with MOQs) prints a two-line banner to the C-level
    stdout at the first ``Highs()`` of a process, whatever its options (HiGHS issue #1932:
    it cannot be switched off); the first one is made here with file descriptor 1 pointed
    at ``/dev/null``. Later solves print nothing; their own logging follows their options."""
    try:
        import highspy
    except ImportError:
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar of ``total`` steps; yields ``advance(note)`` to call after each step.

    On a terminal it is a rich bar that disappears when done; elsewhere (CI logs, pipes) it
    prints nothing, the task's own summary says what happened.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total, note="")

        def advance(note: str = "") -> None:
            bar.update(task, advance=1, note=note)

        yield advance
