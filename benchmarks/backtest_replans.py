"""A backtest's re-plans: the same network planned again at every review's stock.

The backtest's optimizer policies (``stockcast.simulation.policies.OptimizerPolicy``) plan
the network once per review and policy run: about 140 plans in the Stallion backtest of
``make run``, where only the stock (on hand, in transit) and the forecast change between
plans. This script re-plans the synthetic network of ``optimize_scale.py`` (``--size``
item-locations, 2 DCs, markdown prices) ``--reviews`` times at a stock that moves from
review to review (random: some nodes run empty and close their lanes, others hold excess),
through one ``Planner`` each way, in the same run:

* **before**: the planning graph built again at every plan (``Planner.networks`` off) and
  every decision's ``alternative`` / ``reason`` text written (``explain=true``);
* **after**: as the backtest plans now: the graph reused from the planner's
  ``NetworkCache`` (only the stock columns and the lanes the stock opens are refreshed)
  and ``explain=false``.

Both reuse the compiled CVXPY problems. Printed: seconds per plan each way, the ratio
after / before, and whether every plan's objective and order / transfer quantities agree.

Usage::

    python benchmarks/backtest_replans.py --size 350 --reviews 40
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from optimize_scale import synthetic  # noqa: E402

from stockcast.data.supply import derive_supply, validate_supply  # noqa: E402
from stockcast.optimization import Planner  # noqa: E402

QUANTITIES = ["item_id", "location_id", "action", "source", "quantity", "price"]


def stocks(econ, reviews: int, seed: int) -> list[np.ndarray]:
    """On-hand stock per review: a random walk around each node's stock, some nodes empty."""
    rng = np.random.default_rng(seed)
    base = econ["on_hand"].to_numpy(float) + 1.0
    out = []
    for _ in range(reviews):
        level = base * rng.lognormal(0.0, 0.6, len(base))
        out.append(np.where(rng.random(len(base)) < 0.25, 0.0, np.round(level)))
    return out


def run(planner: Planner, forecast, tables, on_hand: list[np.ndarray]) -> tuple[float, list]:
    results = []
    t0 = time.perf_counter()
    for stock in on_hand:
        econ = tables.economics.assign(on_hand=stock, in_transit=np.round(stock / 4))
        res = planner.plan(forecast, replace(tables, economics=econ), validated=True)
        results.append(res)
    return time.perf_counter() - t0, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=350, help="item-locations")
    ap.add_argument("--reviews", type=int, default=40, help="plans per way")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    forecast, keys = synthetic(args.size, seed=args.seed)
    tables = validate_supply(derive_supply(keys, {"n_dcs": 2, "periods_per_year": 52,
                                                  "seed": args.seed}))
    on_hand = stocks(tables.economics, args.reviews, args.seed)
    cfg = {"price_elasticity": -2.0, "seed": args.seed}

    before = Planner({**cfg, "explain": True})
    before.networks = None  # the graph built at every plan, as before the cache
    after = Planner({**cfg, "explain": False})
    # one warm-up plan each (imports, the first compilation), not timed
    run(before, forecast, tables, on_hand[:1])
    run(after, forecast, tables, on_hand[:1])
    t_before, res_before = run(before, forecast, tables, on_hand)
    t_after, res_after = run(after, forecast, tables, on_hand)

    same_objective = all(
        abs(a.stats["objective"] - b.stats["objective"]) <= 1e-7 * max(1.0, abs(b.stats["objective"]))
        for a, b in zip(res_after, res_before, strict=True))
    same_plans = all(
        a.decisions[QUANTITIES].equals(b.decisions[QUANTITIES])
        for a, b in zip(res_after, res_before, strict=True))
    n = args.reviews
    print(f"{args.size} item-locations, {n} re-plans each way "
          f"({after.networks.built} graph built by the cache)")
    print(f"before (graph rebuilt, texts written): {t_before:.2f} s, {t_before / n:.3f} s/plan")
    print(f"after  (graph reused, no texts):       {t_after:.2f} s, {t_after / n:.3f} s/plan")
    print(f"ratio after / before: {t_after / t_before:.3f}")
    print(f"same objectives: {same_objective}; same orders, transfers and prices: {same_plans}")


if __name__ == "__main__":
    main()
