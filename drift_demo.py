"""Continuous learning end to end on synthetic data with a regime change (~10-15 min on 2 CPU cores).

    python drift_demo.py [experiment=smoke] [demo.steps=24]
"""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="drift_demo")
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    from stockcast.tasks.drift_demo import run, summary

    print(summary(run(cfg)))


if __name__ == "__main__":
    main()
