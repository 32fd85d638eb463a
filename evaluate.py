"""Evaluate a registered model against baselines, monitor it for drift, or run the drift demo.

    python evaluate.py [model=models:/stockcast-tft@champion | model=<version> | model=<run id>]
    python evaluate.py task=monitor [model=...]      # exit code 0 = fine, 3 = drift
    python evaluate.py task=drift_demo               # rolling continuous-learning demo

``model=`` is shorthand for ``model_ref=`` (``model`` is the TFT's config group in train.yaml,
so Hydra would otherwise read it as a group choice). Default: the latest registered version
(evaluate) or the champion (monitor).
"""

import sys

import hydra
from omegaconf import DictConfig

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.config import model_ref_alias


def _evaluate(cfg: DictConfig) -> int:
    from stockcast.evaluation.evaluate import run

    result = run(cfg)
    print(result.summary.round(3).to_string(index=False))
    c = result.champion
    print(
        f"champion: {'PROMOTED' if c['promoted'] else 'kept'} (was v{c['champion_version']}, "
        f"evaluated v{c['challenger_version']}): {c['reason']}"
    )
    return 0


def _monitor(cfg: DictConfig) -> int:
    from stockcast.evaluation.monitor import run, summary_text

    result = run(cfg)
    print(summary_text(result))
    return result.exit_code


def _drift_demo(cfg: DictConfig) -> int:
    from stockcast.evaluation.continuous import run, summary_text

    print(summary_text(run(cfg)))
    return 0


TASKS = {"evaluate": _evaluate, "monitor": _monitor, "drift_demo": _drift_demo}


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    code = TASKS[cfg.task_name](cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    sys.argv = model_ref_alias(sys.argv)
    main()
