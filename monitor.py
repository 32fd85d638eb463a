"""Check a registered model against newly arrived actuals: exit code 0 = fine, 3 = drift.

    python monitor.py [model=models:/stockcast-tft@champion | model=3] [monitor.as_of=YYYY-MM-DD]
"""

import sys

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


@hydra.main(version_base="1.3", config_path="conf", config_name="monitor")
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    from stockcast.tasks.monitor import run, summary

    result = run(cfg)
    print(summary(result))
    if result.exit_code:
        sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
