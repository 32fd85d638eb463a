"""Hydra/OmegaConf glue: resolvers every entry point registers before composing configs."""

from __future__ import annotations

from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT


def register_resolvers() -> None:
    """``${project_root:}`` -> absolute path of the repository root."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


register_resolvers()
