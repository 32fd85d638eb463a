"""Backtest cost at scale on the synthetic generator (10,000 item-locations by default).

    python benchmarks/backtest_scale.py [--items 200 --stores 50 --periods 8 --plan-periods 2]

Generates (or reuses) a synthetic dataset with ``items x stores`` store item-locations (plus
the DC item-nodes of the network), builds the backtest window of the last ``periods``
weeks, and times:

* the rule-based policies (classic, seasonal naive + safety stock, oracle) over the whole
  window: seconds per simulated period;
* the optimizer policy (the generator's true quantiles + the network plan, i.e. the
  ``true_distribution`` policy; ``stockcast`` differs only by its forecaster) over the first
  ``plan-periods`` periods: seconds per review, which dominates a backtest at this size.

Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from hydra.utils import instantiate
from omegaconf import OmegaConf

import stockcast.config  # noqa: F401
from stockcast import PROJECT_ROOT
from stockcast.data.io import generated_dir, materialize
from stockcast.data.panel import load_panel
from stockcast.data.supply import SupplyTables
from stockcast.schema import TIME_IDX
from stockcast.simulation.backtest import (
    CachedForecaster,
    build_window,
    make_policy,
    truth_forecaster,
    world_elasticity,
)
from stockcast.simulation.engine import kpis, simulate


def main() -> None:
    """Print setup time, seconds per period per rule policy and seconds per optimizer review."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--stores", type=int, default=50)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--plan-periods", type=int, default=2,
                    help="reviews timed for the optimizer policy (0 = skip)")
    args = ap.parse_args()
    cfg = OmegaConf.load(PROJECT_ROOT / "conf/data/synthetic.yaml")
    cfg.source.generator.n_items = args.items
    cfg.source.generator.n_stores = args.stores
    spec = instantiate(cfg)
    t = time.perf_counter()
    materialize(spec)
    panel = load_panel(spec)
    panel = panel[panel["demand"].notna()]
    gdir = generated_dir(spec)
    supply = SupplyTables.read(gdir)
    truth_lead = pd.read_parquet(gdir / "truth_lead_times.parquet")
    t1 = int(panel[TIME_IDX].max())
    t0 = t1 - args.periods + 1
    win = build_window(panel, t0, t1, supply, truth_lead, 0.0, 0)
    win.elasticity = world_elasticity(win, -2.0, gdir)
    setup = time.perf_counter() - t
    n_store = int((win.keys["echelon"] != "dc").sum())
    print(f"{n_store} store item-locations + {len(win.keys) - n_store} DC item-nodes x "
          f"{len(win.periods)} periods; data + window setup {setup:.1f}s")
    for name, knob in (("classic", 0.95), ("seasonal_naive_ss", 0.95), ("oracle", None)):
        t = time.perf_counter()
        pol = make_policy(name, knob, win, 1, 52, {}, None, None)
        cap = None if name == "oracle" else win.capacity  # the bound ignores capacity
        tr = simulate(win.demand, pol, win.lead_real, win.econ, win.on_hand0, "lost", 1,
                      win.supplier_leads, win.elasticity, cap)
        sim = time.perf_counter() - t
        k = kpis(tr)
        print(f"  {name}: {sim:.2f}s = {sim / len(win.periods):.3f}s per period; fill "
              f"{k['fill_rate']:.3f}, avg inventory {k['avg_inventory']:,.0f}")
    if args.plan_periods > 0:
        from stockcast.optimization.plan import PlanConfig

        truth = pd.read_parquet(gdir / "truth_demand.parquet")
        fc = CachedForecaster(truth_forecaster(truth, panel))
        values = OmegaConf.to_container(
            OmegaConf.load(PROJECT_ROOT / "conf/optimizer/default.yaml")["values"])
        values.update(moq=False, disruptions=None, seed=0)  # as conf/backtest.yaml
        plan_cfg = PlanConfig.from_dict(values)
        k = min(args.plan_periods, len(win.periods))
        t = time.perf_counter()
        pol = make_policy("true_distribution", None, win, 1, 52, {"true_distribution": fc},
                          plan_cfg, -2.0)
        tr = simulate(win.demand[:, :k], pol, win.lead_real[:, :k], win.econ, win.on_hand0,
                      "lost", 1, win.supplier_leads[:, :, :k], win.elasticity, win.capacity)
        sim = time.perf_counter() - t
        print(f"  true_distribution (optimizer): {sim:.1f}s for {k} reviews = "
              f"{sim / k:.1f}s per review (forecast table + network plan); fill over them "
              f"{kpis(tr)['fill_rate']:.3f}")


if __name__ == "__main__":
    main()
