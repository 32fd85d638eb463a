"""Scale of the network optimizer: solve/setup time vs a vectorized closed-form newsvendor.

For each size (item-locations), builds a synthetic network with ``derive_supply`` (DCs,
2-3 suppliers per item, DC->store and lateral lanes, imbalanced stock), a forecast with 9
quantile levels over 4 horizon steps and 4 candidate prices (list + 3 markdowns via a
constant elasticity), then times

* ``plan()`` end to end (validation, scenarios, pricing, the CVXPY network problem with a
  binding budget and location capacities, decisions table), split into CVXPY setup
  (build + compile) and solver time, plus the re-plan under a supplier outage, which
  reuses the compiled problem (setup = parameter refresh only);
* the closed-form critical-ratio newsvendor on the same unconstrained item-locations
  (scenario quantile at the critical ratio for each of the 4 prices), in the same run.

Usage::

    python benchmarks/optimize_scale.py --sizes 1000 10000 50000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from stockcast.data.supply import derive_supply
from stockcast.optimization import plan
from stockcast.optimization.distribution import EmpiricalDemand, protection_samples
from stockcast.optimization.newsvendor import closed_form

LEVELS = (0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98)
HORIZON = 4


def synthetic(n_nodes: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast table and history-like keys for ``n_nodes`` item-locations."""
    rng = np.random.default_rng(seed)
    n_stores = max(10, int(round(np.sqrt(n_nodes / 2))))
    n_items = int(np.ceil(n_nodes / n_stores))
    item = np.repeat(np.arange(n_items), n_stores)[:n_nodes]
    store = np.tile(np.arange(n_stores), n_items)[:n_nodes]
    keys = pd.DataFrame({"item_id": [f"I{i:05d}" for i in item],
                         "location_id": [f"S{s:04d}" for s in store]})
    mean = rng.gamma(2.0, 20.0, n_nodes)
    cv = rng.uniform(0.2, 0.6, n_nodes)
    keys["demand"] = mean
    keys["price"] = np.round(rng.uniform(5, 50, n_items)[item], 2)
    z = stats.norm.ppf(LEVELS)
    rows = []
    for h in range(1, HORIZON + 1):
        q = np.maximum(0.0, mean[:, None] * (1 + cv[:, None] * z[None, :]))
        df = keys[["item_id", "location_id"]].copy()
        df["horizon"] = h
        df["forecast_origin"] = pd.Timestamp("2024-01-01")
        for j, lv in enumerate(LEVELS):
            df[f"q{lv:g}"] = q[:, j]
        rows.append(df)
    return pd.concat(rows, ignore_index=True), keys


def closed_form_time(forecast: pd.DataFrame, supply, n_prices: int = 4, elasticity: float = -2.0,
                     n_samples: int = 256) -> tuple[float, float]:
    """Seconds for scenarios + closed-form newsvendor at each candidate price."""
    f = forecast.sort_values(["item_id", "location_id", "horizon"])
    cols = [f"q{lv:g}" for lv in LEVELS]
    n = f[["item_id", "location_id"]].drop_duplicates().shape[0]
    steps = f[cols].to_numpy().reshape(n, HORIZON, len(LEVELS))
    keys = f.drop_duplicates(["item_id", "location_id"])[["item_id", "location_id"]]
    econ = keys.merge(supply.economics, on=["item_id", "location_id"])
    t0 = time.perf_counter()
    samples = protection_samples(steps, np.array(LEVELS), review_period=1.0, lead_mean=1.0,
                                 lead_std=0.3, n_samples=n_samples)
    t_scen = time.perf_counter() - t0
    t0 = time.perf_counter()
    p0 = econ["price"].to_numpy()
    for j in range(n_prices):
        frac = 1 - 0.1 * j
        d = EmpiricalDemand(samples * frac ** elasticity)
        closed_form(d, price=p0 * frac, unit_cost=econ["unit_cost"].to_numpy(),
                    holding=econ["holding_cost"].to_numpy(),
                    shortage=econ["shortage_cost"].to_numpy(),
                    salvage=econ["salvage_value"].to_numpy(),
                    on_hand=(econ["on_hand"] + econ["in_transit"]).to_numpy())
    return t_scen, time.perf_counter() - t0


def run(size: int, args: argparse.Namespace) -> dict:
    forecast, keys = synthetic(size, seed=args.seed)
    supply = derive_supply(keys, {"n_dcs": args.dcs, "periods_per_year": 52,
                                  "store_capacity_factor": 6.0, "seed": args.seed})
    budget_probe = plan(forecast, supply, {"n_scenarios": args.scenarios, "moq": False,
                                           "price_elasticity": -2.0, "pricing_scope": "all"})
    spend = budget_probe.summary["purchase_spend"] + budget_probe.summary["transfer_spend"]
    cfg = {"n_scenarios": args.scenarios, "moq": False, "price_elasticity": -2.0,
           "pricing_scope": "all", "budget": 0.8 * spend,
           "disruptions": [{"supplier_id": "SUP_express", "down": True}]}
    res = plan(forecast, supply, cfg)
    total = res.stats["plan_time_s"]
    replan = res.disruptions[0].stats
    t_scen, t_cf = closed_form_time(forecast, supply, n_samples=args.scenarios)
    s = res.stats
    return {
        "item_locations": size,
        "variables": s["n_variables"],
        "constraints": s["n_constraints"],
        "setup_s": s["setup_time_s"],
        "solve_s": s["solve_time_s"],
        "plan_total_s": total,
        "replan_setup_s": replan["setup_time_s"],
        "replan_solve_s": replan["solve_time_s"],
        "scenarios_s": t_scen,
        "closed_form_s": t_cf,
        "solve/closed_form": s["solve_time_s"] / max(t_cf, 1e-9),
        "plan/closed_form+scen": total / max(t_cf + t_scen, 1e-9),
        "budget_binding": "budget" in res.summary["binding_constraints"],
        "status": s["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000],
                        help="numbers of item-locations")
    parser.add_argument("--scenarios", type=int, default=256, help="scenarios per node")
    parser.add_argument("--dcs", type=int, default=3, help="number of DCs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [run(size, args) for size in args.sizes]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
