"""Turn the champion model's quantile forecasts into network decisions.

    python optimize.py [model=models:/stockcast-tft@champion | model=<version>] [optimizer.values.budget=1e6]
"""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="optimize")
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    from stockcast.tasks.optimize import run, summary

    print(summary(run(cfg)))


if __name__ == "__main__":
    main()
