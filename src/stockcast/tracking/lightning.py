"""Lightning logger bound to a run that stockcast opened (and will close) itself."""

from __future__ import annotations

from lightning.pytorch.loggers import MLFlowLogger


class MLflowRunLogger(MLFlowLogger):
    """Logs epochs into an existing MLflow run without ending it.

    Lightning's ``MLFlowLogger.finalize`` marks the run FINISHED as soon as ``fit`` returns;
    stockcast still logs test metrics, plots and the model after that, and
    :func:`stockcast.tracking.mlflow_utils.tracked_run` decides the final status
    (FAILED if anything later raises).
    """

    def finalize(self, status: str = "success") -> None:
        """Leave the run's status to ``tracked_run``."""
