"""Replay replenishment policies against the test window's actual demand; print the KPIs.

    python backtest.py [model=models:/stockcast-tft@champion | model=<version>] [experiment=smoke]
"""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="backtest")
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    from stockcast.tasks.backtest import run, summary

    print(summary(run(cfg)))


if __name__ == "__main__":
    main()
