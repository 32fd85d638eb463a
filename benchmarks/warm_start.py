"""Warm start vs training from scratch when new data arrives.

    python benchmarks/warm_start.py [--data synthetic_drift] [--old-until 2023-04-10]
        [--new-until 2023-06-05] [--finetune-epochs 4] [train.py overrides ...]

1. trains the "old" model on the data up to ``--old-until``;
2. on the data up to ``--new-until`` trains (a) from scratch with the default trainer and
   (b) warm-started from the old model (``init_from``) with ``--finetune-epochs`` epochs;
3. prints wall time and held-out test accuracy (the last ``data.split.test_periods`` of the
   new data, never used for training or early stopping) of both, and their ratios.

Runs go to a throwaway MLflow store (``--tracking-uri``, default a temp folder), so the
project's registry is not touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="synthetic_drift")
    ap.add_argument("--old-until", default="2023-04-10")
    ap.add_argument("--new-until", default="2023-06-05")
    ap.add_argument("--finetune-epochs", type=int, default=4)
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides for every run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stockcast-warm-"))
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri or f"sqlite:///{tmp / 'mlflow.db'}"

    from stockcast.config import compose_task
    from stockcast.tasks.train import run

    def train(name: str, until: str, extra: list[str]):
        cfg = compose_task(
            "train",
            [f"data={args.data}", f"data.until={until}", "model_name=warm-start-bench", f"paths.output_dir={tmp / name}", "trainer.enable_progress_bar=false", *args.overrides, *extra],
        )
        t0 = time.perf_counter()
        result = run(cfg)
        return result, time.perf_counter() - t0

    old, t_old = train("old", args.old_until, [])
    scratch, t_scratch = train("scratch", args.new_until, [])
    warm, t_warm = train("warm", args.new_until, [f"init_from={old.model_version}", f"trainer.max_epochs={args.finetune_epochs}"])

    print(f"data={args.data}: old model up to {args.old_until} ({t_old:.0f} s); new data up to {args.new_until}")
    print(f"{'run':<10}{'wall s':>9}{'epochs':>8}{'test_mae':>11}{'test_pinball':>14}{'coverage_80':>13}")
    for name, res, t in (("scratch", scratch, t_scratch), ("warm", warm, t_warm)):
        m = res.metrics
        print(f"{name:<10}{t:>9.1f}{m['epochs_trained']:>8.0f}{m['test_mae']:>11.3f}{m['test_pinball']:>14.4f}{m.get('test_coverage_80', float('nan')):>13.3f}")
    s, w = scratch.metrics, warm.metrics
    print(
        f"warm / scratch: time {t_warm / t_scratch:.2f}x, test_pinball {w['test_pinball'] / s['test_pinball']:.3f}x, "
        f"test_mae {w['test_mae'] / s['test_mae']:.3f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
