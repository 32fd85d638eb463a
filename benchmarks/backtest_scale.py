"""Backtest cost at scale on the synthetic generator (10,000 item-locations by default).

    python benchmarks/backtest_scale.py [--items 200 --stores 50 --periods 8 --plan-periods 2]
    python benchmarks/backtest_scale.py --periods 52      # 10k item-locations x 52 weeks

Generates (or reuses) a synthetic dataset with ``items x stores`` store item-locations (plus
the DC item-nodes of the network), builds the backtest window of the last ``periods``
weeks, and times:

* the rule-based policies (classic, seasonal naive + safety stock, oracle) over the whole
  window: seconds per simulated period;
* the optimizer policy (the generator's true quantiles + the network plan, i.e. the
  ``true_distribution`` policy; ``stockcast`` differs only by its forecaster) over the first
  ``plan-periods`` periods: seconds to forecast those review origins (one protocol call) and
  seconds per review (network plan), which dominates a backtest at this size.

Every stage prints its wall time and the process's peak resident memory so far
(``ru_maxrss``); the last line is the whole run's wall time and peak, with the optimizer
policy's time extrapolated to the whole window. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd
from hydra.utils import instantiate
from omegaconf import OmegaConf

import stockcast.config  # noqa: F401
from stockcast import PROJECT_ROOT
from stockcast.data.io import generated_dir, materialize
from stockcast.data.panel import load_panel
from stockcast.data.supply import SupplyTables
from stockcast.forecast.protocol import cross_validate
from stockcast.forecast.truth import TruthForecaster
from stockcast.schema import TIME_IDX
from stockcast.simulation.engine import kpis, simulate
from stockcast.simulation.forecasts import by_origin
from stockcast.simulation.policies import (
    ClassicSpec,
    OptimizerSpec,
    OracleSpec,
    SeasonalNaiveSpec,
)
from stockcast.simulation.world import build_window, world_elasticity


def _peak() -> str:
    return f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"


def main() -> None:
    """Print setup time, seconds per period per rule policy and seconds per optimizer review."""
    start = time.perf_counter()
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
    win = build_window(panel, t0, t1, supply, truth_lead, 0.0, 0, season=52)
    win.elasticity = world_elasticity(win, -2.0, gdir)
    setup = time.perf_counter() - t
    n_store = int((win.keys["echelon"] != "dc").sum())
    print(f"{n_store} store item-locations + {len(win.keys) - n_store} DC item-nodes x "
          f"{len(win.periods)} periods; data + window setup {setup:.1f}s; {_peak()}")
    for name, spec, knob in (("classic", ClassicSpec(), 0.95),
                             ("seasonal_naive_ss", SeasonalNaiveSpec(), 0.95),
                             ("oracle", OracleSpec(), None)):
        t = time.perf_counter()
        pol = spec.build(win, knob)
        tr = simulate(win.demand, pol, win.lead_real, win.econ, win.on_hand0, "lost", 1,
                      win.supplier_leads, win.elasticity, spec.capacity(win))
        sim = time.perf_counter() - t
        k = kpis(tr)
        print(f"  {name}: {sim:.2f}s = {sim / len(win.periods):.3f}s per period; fill "
              f"{k['fill_rate']:.3f}, avg inventory {k['avg_inventory']:,.0f}; {_peak()}")
    if args.plan_periods > 0:
        from stockcast.optimization.plan import PlanConfig

        values = OmegaConf.to_container(
            OmegaConf.load(PROJECT_ROOT / "conf/optimizer/default.yaml")["values"])
        values.update(moq=False, disruptions=None, seed=0)  # as conf/backtest.yaml
        plan_cfg = PlanConfig.from_dict(values)
        k = min(args.plan_periods, len(win.periods))
        t = time.perf_counter()
        spec = OptimizerSpec(forecaster=TruthForecaster.from_dir(gdir), plan=plan_cfg)
        cv = cross_validate([spec.forecaster], panel, win.review_origins()[:k], win.plan_horizon)
        forecasts = by_origin(cv, panel)
        fc = time.perf_counter() - t
        t = time.perf_counter()
        pol = spec.build(win, None, forecasts)
        tr = simulate(win.demand[:, :k], pol, win.lead_real[:, :k], win.econ, win.on_hand0,
                      "lost", 1, win.supplier_leads[:, :, :k], win.elasticity, win.capacity)
        sim = time.perf_counter() - t
        print(f"  true_distribution (optimizer): forecasts of {k} review origins {fc:.1f}s "
              f"(one call); {sim:.1f}s for {k} reviews = {sim / k:.1f}s per review (network "
              f"plan); fill over them {kpis(tr)['fill_rate']:.3f}; {_peak()}")
        n = len(win.periods)
        estimate = (fc + sim) / k * n
    else:
        n, estimate = 0, 0.0
    total = time.perf_counter() - start
    print(f"total {total:.1f}s wall; {_peak()}"
          + (f"; the optimizer policy over all {n} periods at that rate: about {estimate / 60:.0f} min"
             if n else ""))


if __name__ == "__main__":
    main()
