"""Hydra/OmegaConf glue: resolvers every entry point registers before composing configs."""

from __future__ import annotations

from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT


def register_resolvers() -> None:
    """``${project_root:}`` -> absolute path of the repository root."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def model_ref_alias(argv: list[str]) -> list[str]:
    """Let ``model=<ref>`` name the model to load in evaluate/optimize command lines.

    ``model`` is a config group (the TFT) in this config tree, so Hydra would read
    ``model=3`` as a group choice; these tasks keep the reference in ``model_ref``.
    """
    return [("model_ref=" + a[len("model=") :]) if a.startswith("model=") else a for a in argv]


register_resolvers()
