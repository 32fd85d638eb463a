"""Train a Temporal Fusion Transformer: ``python train.py [experiment=smoke] [key=value ...]``."""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    quiet_third_party()
    from stockcast.tasks.train import optimized_value, run, summary

    result = run(cfg)
    print(summary(result))
    # the value a sweeper (e.g. Optuna) optimizes; a missing metric fails the job loudly
    return optimized_value(result, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
