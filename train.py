"""Train a Temporal Fusion Transformer: ``python train.py [experiment=smoke] [key=value ...]``."""

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    result = run(cfg)
    return result.metrics.get(cfg.get("optimized_metric", "val_pinball"))


if __name__ == "__main__":
    main()
