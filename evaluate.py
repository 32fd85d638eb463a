"""Evaluate a registered model against baselines on its test window; gate the champion.

    python evaluate.py [model=latest | model=models:/stockcast-tft@champion | model=3 | model=<run id>]
"""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    from stockcast.tasks.evaluate import run, summary

    print(summary(run(cfg)))


if __name__ == "__main__":
    main()
