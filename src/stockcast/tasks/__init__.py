"""Tasks: the only code that sees a Hydra config, MLflow runs and the console.

Each module exposes ``run(cfg) -> <Result>`` and ``summary(result) -> str``; the entry
points at the repository root call them. A task never imports another task.
"""
