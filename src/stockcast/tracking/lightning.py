"""Lightning logger bound to a run that stockcast opened (and will close) itself."""

from __future__ import annotations

import logging
from argparse import Namespace
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


class MLflowRunLogger(MLFlowLogger):
    """Logs epochs into an existing MLflow run without ending it.

    Lightning's ``MLFlowLogger.finalize`` marks the run FINISHED as soon as ``fit`` returns;
    stockcast still logs test metrics, plots and the model after that, and
    :func:`stockcast.tracking.mlflow_utils.tracked_run` decides the final status
    (FAILED if anything later raises).

    A resumed training logs into the run it continues, whose parameters MLflow does not let
    change: the model's hyperparameters already there keep their first values (a resume with
    a longer ``trainer.max_epochs`` has a longer cosine ``learning_rate`` list, say), new ones
    are added.
    """

    def finalize(self, status: str = "success") -> None:
        """Leave the run's status to ``tracked_run``."""

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """Log the hyperparameters the run does not have yet (see the class docstring)."""
        flat = _flatten_dict(_convert_params(params))
        logged = self.experiment.get_run(self.run_id).data.params
        changed = sorted(k for k, v in flat.items() if k in logged and logged[k] != str(v)[:250])
        if changed:
            log.info("resumed run %s keeps its first values of %s", self.run_id, ", ".join(changed))
        fresh = {k: v for k, v in flat.items() if k not in logged}
        if fresh:
            super().log_hyperparams(fresh)
