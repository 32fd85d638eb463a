"""The main job in one process: train -> evaluate -> optimize -> backtest (``make run``).

    python pipeline.py [key=value ...]            # every override goes to every step
    python pipeline.py --steps evaluate,backtest model=3

Each step runs as its own script would (``python train.py key=value ...`` and so on),
without importing torch, Lightning and MLflow four times (stockcast.tasks.pipeline).
"""

import argparse
import logging
import os
import sys

import stockcast.config  # noqa: F401  (registers ${project_root:})
from stockcast.tracking.console import quiet_third_party


def main(argv: list[str] | None = None) -> int:
    from stockcast.tasks.pipeline import LOG_FORMAT, STEPS, StepFailed, run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated steps, in order (default {','.join(STEPS)})")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    quiet_third_party()
    try:
        run(args.overrides, [s for s in args.steps.split(",") if s])
    except (ValueError, StepFailed) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"pipeline: {err}\n\nSet the environment variable HYDRA_FULL_ERROR=1 for a "
              "complete stack trace.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
