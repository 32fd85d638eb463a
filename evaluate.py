"""Evaluate a registered model against baselines on its test window; gate the champion.

    python evaluate.py [model=latest | model=models:/stockcast-tft@champion | model=3 | model=<run id>]
"""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
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
    main()
