"""Evaluate a registered model against baselines.

    python evaluate.py [model=models:/stockcast-tft@champion | model=<version> | model=<run id>]

``model=`` is shorthand for ``model_ref=`` (``model`` is the TFT's config group in train.yaml,
so Hydra would otherwise read it as a group choice). Default: the latest registered version.
"""

import sys

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.config import model_ref_alias
from stockcast.evaluation.evaluate import run


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    result = run(cfg)
    print(result.summary.round(3).to_string(index=False))
    c = result.champion
    print(
        f"champion: {'PROMOTED' if c['promoted'] else 'kept'} (was v{c['champion_version']}, "
        f"evaluated v{c['challenger_version']}): {c['reason']}"
    )


if __name__ == "__main__":
    sys.argv = model_ref_alias(sys.argv)
    main()
