"""Decision quality on the synthetic year: stockcast against classic, the true distribution
and the frontier.

Runs the backtest task on ``data=synthetic_year`` (five years of weekly history, the last 52
weeks replayed; the model trained before them forecasts every weekly review from the data
known then) with the policies ``stockcast`` (the model + the network optimizer),
``classic``, ``oracle``, ``true_distribution`` (the generator's true quantiles + the same
optimizer) and ``frontier`` (per item-location levels on the true distribution chosen in
hindsight), and prints at each planner target (0.90, 0.95, 0.98 fill and classic's own):

* stockcast / classic inventory (with the bootstrap interval of "% less than classic") and
  controllable cost,
* stockcast / true distribution inventory (and, with ``--attainable``, stockcast /
  attainable distribution: the generator's law given only what is known at each review +
  the same optimizer, the best a forecaster can know),
* true distribution / frontier inventory.

The model is a registered version (``--model``: a version number, ``models:/name/3``, a run
id; default the latest ``stockcast-tft``), so the benchmark can be re-run with any recipe;
``--train`` trains one first with the synthetic year's recipe (``experiment=synthetic_year``:
3 seeds of the default TFT on a 52-week encoder; about 5 min on 2 cores) and uses it. ``--lead-time`` adds stockcast variants with other
protection-period constructions (``independent summed copula direct``) and ``--fill-mode``
the fill-rate-target policy (Sobel levels, network allocation) on the model's quantiles.

    MLFLOW_TRACKING_URI=sqlite:///$PWD/mlruns/mlflow.db PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 \\
        python benchmarks/decision_quality.py --model 1

Budget: <= 15 minutes on 2 cores with a given model (the default set of policies).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="latest", help="registered model reference")
    p.add_argument("--model-name", default="stockcast-tft")
    p.add_argument("--train", action="store_true", help="train a model on synthetic_year first")
    p.add_argument("--lead-time", nargs="*", default=[],
                   choices=["independent", "summed", "copula", "direct"],
                   help="extra stockcast variants, one per protection-period construction")
    p.add_argument("--fill-mode", action="store_true", help="add the fill-rate-target policy")
    p.add_argument("--attainable", action="store_true",
                   help="add the attainable-distribution policy (what a forecaster can know)")
    p.add_argument("--targets", nargs="*", default=["classic", "0.9", "0.95", "0.98"])
    p.add_argument("--out", default=str(ROOT / "outputs" / "decision_quality"))
    p.add_argument("--overrides", nargs="*", default=[], help="extra backtest overrides")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    import numpy as np
    from omegaconf import OmegaConf

    from stockcast.config import compose_task
    from stockcast.tasks import run_task
    from stockcast.tracking.console import quiet_third_party

    quiet_third_party()  # the figures, not Lightning's banners
    t_start = time.perf_counter()
    model = args.model
    if args.train:
        cfg = compose_task("train", ["data=synthetic_year", "experiment=synthetic_year",
                                     "permutation_importance.enabled=false",
                                     "prefetch_baselines.enabled=false",  # no evaluate.py here
                                     "trainer.enable_progress_bar=false",
                                     f"model_name={args.model_name}",
                                     f"paths.output_dir={args.out}/train"])
        trained = run_task("train", cfg)
        model = str(trained.model_version)
        print(f"trained version {model} in {time.perf_counter() - t_start:.0f} s")
    policies = ["stockcast", "classic", "oracle", "true_distribution", "frontier"]
    if args.attainable:
        policies.insert(-1, "attainable_distribution")
    cfg = compose_task("backtest", [
        "data=synthetic_year", f"model={model}", f"model_name={args.model_name}",
        f"backtest.matched.targets=[{','.join(args.targets)}]",
        f"paths.output_dir={args.out}/backtest", *args.overrides])
    OmegaConf.set_struct(cfg, False)
    catalog = cfg.backtest.catalog
    for method in args.lead_time:
        entry = copy.deepcopy(OmegaConf.to_container(catalog.stockcast, resolve=False))
        entry["lead_time_demand"] = method
        catalog[f"stockcast_{method}"] = entry
        policies.insert(1, f"stockcast_{method}")
    if args.fill_mode:
        policies.insert(1, "stockcast_fill")
    cfg.backtest.policies = policies
    t0 = time.perf_counter()
    result = run_task("backtest", cfg)
    elapsed = time.perf_counter() - t0

    m = result.matched
    print(f"\nsynthetic year, model {args.model_name} v{result.model_version}: "
          f"{len(result.traces['classic'].demand[0])} weekly periods, backtest {elapsed:.0f} s")
    for note in result.notes:
        if "protection-period" in note or "unreachable" in note:
            print(" ", note)
    rows = []
    for label, part in m.groupby("target", sort=False):
        g = part.set_index("policy")
        fill = float(part["target_fill_rate"].iloc[0])

        def inv(p, g=g):
            return float(g.loc[p, "avg_inventory"]) if p in g.index and g.loc[p, "reached"] \
                else np.nan

        for p in [q for q in policies if q.startswith("stockcast")]:
            r = g.loc[p]
            ci = (f" [{r.get('avg_inventory_reduction_vs_classic_pct_lo', np.nan):.1f}, "
                  f"{r.get('avg_inventory_reduction_vs_classic_pct_hi', np.nan):.1f}]")
            rows.append({
                "target": label, "fill": round(fill, 4), "policy": p,
                "inventory": inv(p),
                "vs_classic_inv_%less": f"{r.get('avg_inventory_reduction_vs_classic_pct', np.nan):.1f}"
                                        + (ci if np.isfinite(r.get('avg_inventory_reduction_vs_classic_pct', np.nan)) else ""),
                "vs_classic_ctrl_cost_%less":
                    round(float(r.get("controllable_cost_reduction_vs_classic_pct", np.nan)), 1),
                "x_true_distribution": round(inv(p) / inv("true_distribution"), 3),
                **({"x_attainable": round(inv(p) / inv("attainable_distribution"), 3)}
                   if args.attainable else {}),
                "classic_best_fill": round(float(g.loc["classic", "best_fill"]), 4),
                "truth_x_frontier": round(inv("true_distribution") / inv("frontier"), 3),
            })
    import pandas as pd

    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    print("\n".join(["", *result.headline]))
    print(f"\nreport: {result.files.get('report_html')}  (total {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
