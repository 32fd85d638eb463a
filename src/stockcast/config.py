"""Hydra/OmegaConf glue: resolvers every entry point registers before composing configs."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from stockcast import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """``${project_root:}`` -> absolute path of the repository root."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def compose_task(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, from inside or outside a Hydra app.

    Jobs that chain tasks (the continuous-learning demo trains from an evaluate job) use
    this so every task is configured exactly as its own entry point would configure it.
    ``${hydra:...}`` interpolations resolve against the running app when there is one: pass
    ``paths.output_dir=...`` to place the task's outputs.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def build_baselines(entries: DictConfig | dict | None, spec) -> list:
    """The baselines of a ``baselines`` config (``conf/baselines/<name>.yaml``) for a dataset.

    Each key becomes a baseline's name; an entry ``null`` takes the class of
    :data:`stockcast.baselines.REGISTRY` with its defaults, ``false`` drops the baseline, else
    the entry's ``_target_`` is built with its fields (partially, so the ``spec`` dataclass
    is passed as is rather than merged into the config).
    """
    from hydra.utils import instantiate

    from stockcast.baselines import REGISTRY

    out = []
    for key, entry in (entries or {}).items():
        if entry is False:
            continue
        make = REGISTRY[key] if entry is None else instantiate(entry, _partial_=True, _convert_="all")
        out.append(make(name=key, spec=spec))
    return out


def test_window_request(evaluation: DictConfig | dict, split, max_horizon: int) -> tuple[list[int], int]:
    """The rolling origins and horizon ``evaluate.py`` forecasts a model's test window with
    (``evaluation.n_origins``, ``origin_stride``, ``horizon``; null horizon = the model's
    ``max_horizon``). Training's baseline prefetch asks the same, so its tables are the ones
    the evaluation's cache keys find."""
    from stockcast.forecast.protocol import rolling_origins

    horizon = int(evaluation.get("horizon") or max_horizon)
    origins = rolling_origins(split.test_start, split.test_end, int(evaluation["n_origins"]),
                              int(evaluation["origin_stride"]))
    return origins, horizon


register_resolvers()
