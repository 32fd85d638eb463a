"""Scale of the network plan: one LP vs decomposed by item on a Dask LocalCluster.

For each size (item-locations) the synthetic network of ``optimize_scale.py`` (DCs, 2-3
suppliers per item, DC->store and lateral lanes, imbalanced stock, 9 quantile levels, 4
horizon steps, 4 candidate prices) is planned with a binding budget

* as ONE CVXPY problem (``decompose=false``), for sizes up to ``--single-max``;
* decomposed by item (``decompose=true``) on a ``LocalCluster`` of ``--workers``
  processes (one thread each), blocks of ``--block-size`` item-locations, at most
  ``--rounds`` coordination rounds (probes of a few blocks first, then priced rounds and
  one recovery round: ``stockcast.optimization.decompose``); ``--lean`` drops each
  block's compiled problems between rounds (for 1M item-locations: they do not all fit in
  memory).

Cluster start (and the workers' first imports) is timed apart from the plan. Each run
happens in a fresh subprocess, so its peak memory (the planning process plus,
for the decomposed runs, the Dask workers' peak resident memory) is its own. Printed:
wall time of the whole plan, solver time (summed over blocks and rounds), rounds, the
objective and its gap to the single LP of the same size (same run), the Lagrangian lower
bound's gap (the a-posteriori quality where no single LP runs), spend / budget.

Usage::

    python benchmarks/plan_scale.py --sizes 10000 100000 --single-max 100000 --workers 2
    python benchmarks/plan_scale.py --sizes 1000000 --single-max 0 --lean
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from optimize_scale import synthetic  # noqa: E402

from stockcast.data.supply import derive_supply  # noqa: E402


def instance(size: int, seed: int, dcs: int, share: float = 0.2
             ) -> tuple[pd.DataFrame, object, float]:
    """Forecast, supply tables and a budget: ``share`` x the cash cost of every
    item-location's need up to twice its mean demand (0.2 binds at 10,000 item-locations,
    where the free plan spends 1.2x it; at 100,000 the free plan spends 0.95x it)."""
    forecast, keys = synthetic(size, seed=seed)
    supply = derive_supply(keys, {"n_dcs": dcs, "periods_per_year": 52,
                                  "store_capacity_factor": 6.0, "seed": seed})
    econ = keys.merge(supply.economics, on=["item_id", "location_id"])
    need = np.maximum(2.0 * econ["demand"] - econ["on_hand"] - econ["in_transit"], 0.0)
    return forecast, supply, float(share * (econ["unit_cost"] * need).sum())


def one(size: int, mode: str, args: argparse.Namespace) -> dict:
    """Plan one instance in this process and return its figures."""
    from stockcast.optimization import Planner

    forecast, supply, budget = instance(size, args.seed, args.dcs, args.budget_share)
    cfg = {"n_scenarios": args.scenarios, "moq": False, "price_elasticity": -2.0,
           "pricing_scope": "all", "budget": budget, "decompose": mode == "decomposed",
           "workers": args.workers, "block_size": args.block_size,
           "coordination_rounds": args.rounds, "keep_block_problems": not args.lean}
    worker_rss = 0.0
    t0 = time.perf_counter()
    if mode == "decomposed":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, memory_limit=None) as cluster, \
                Client(cluster) as client:
            client.run(lambda: __import__("stockcast.optimization.decompose"))  # warm up
            started = time.perf_counter()
            res = Planner(cfg, client=client).plan(forecast, supply)
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            worker_rss = sum(peaks.values()) / 2**20
        cluster_s = started - t0
    else:
        res = Planner(cfg).plan(forecast, supply)
        cluster_s = 0.0
    wall = time.perf_counter() - t0 - cluster_s
    s, st = res.summary, res.stats
    return {
        "item_locations": size, "mode": mode,
        "workers": args.workers if mode == "decomposed" else 1,
        "blocks": st.get("n_blocks", 1), "rounds": st.get("n_rounds", 1),
        "probes": len(st.get("probes") or []),
        "plan_s": wall, "cluster_start_s": cluster_s,
        "prepare_s": st.get("prepare_time_s"), "coordinate_s": st.get("coordinate_time_s"),
        "solve_s": st["solve_time_s"], "objective": st["objective"],
        "lagrangian_bound": st.get("lagrangian_bound"),
        "spend/budget": (s["purchase_spend"] + s["transfer_spend"]) / budget,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "workers_peak_rss_gib": worker_rss, "status": st["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--single-max", type=int, default=10000,
                        help="largest size also planned as one LP")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=256)
    parser.add_argument("--dcs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-share", type=float, default=0.2,
                        help="budget as a share of the cash cost of the needs (instance())")
    parser.add_argument("--lean", action="store_true",
                        help="blocks rebuild their problems each round (less memory)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args)))
        return
    rows = []
    passthrough = ["--workers", str(args.workers), "--block-size", str(args.block_size),
                   "--rounds", str(args.rounds), "--scenarios", str(args.scenarios),
                   "--dcs", str(args.dcs), "--seed", str(args.seed),
                   "--budget-share", str(args.budget_share)] + (
                       ["--lean"] if args.lean else [])
    for size in args.sizes:
        modes = (["single"] if size <= args.single_max else []) + ["decomposed"]
        for mode in modes:
            cmd = [sys.executable, __file__, "--one", str(size), mode, *passthrough]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                     timeout=args.timeout)
                line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                row = json.loads(line[-1]) if line else {
                    "item_locations": size, "mode": mode,
                    "status": "failed: " + out.stderr.strip().splitlines()[-1][:80]}
            except subprocess.TimeoutExpired:
                row = {"item_locations": size, "mode": mode, "status": "timeout"}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    single = table[table["mode"] == "single"].set_index("item_locations")
    if "objective" in table:
        none = pd.Series(np.nan, index=table.index)
        ref = table["item_locations"].map(single["objective"]) if len(single) else none
        table["gap_vs_single_%"] = 100 * (table["objective"] - ref) / ref.abs()
        t_ref = table["item_locations"].map(single["plan_s"]) if len(single) else none
        table["plan_s/single"] = table["plan_s"] / t_ref
    if "lagrangian_bound" in table:
        bound = pd.to_numeric(table["lagrangian_bound"], errors="coerce")
        table["gap_vs_bound_%"] = 100 * (table["objective"] - bound) / bound.abs()
    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(table.drop(columns=["lagrangian_bound"], errors="ignore").to_string(index=False))


if __name__ == "__main__":
    main()
