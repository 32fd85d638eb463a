"""Backtest cost at scale: classic + oracle policies on the synthetic generator.

    python benchmarks/backtest_scale.py [--items 200 --stores 50 --periods 8]

Generates (or reuses) a synthetic dataset with ``items x stores`` item-locations (10,000 by
default), builds the window of the last ``periods`` weeks, and times the simulation.
"""

from __future__ import annotations

import argparse
import time

from hydra.utils import instantiate
from omegaconf import OmegaConf

import stockcast.config  # noqa: F401
from stockcast.data.panel import load_panel
from stockcast.data.sources import generated_dir, materialize
from stockcast.data.spec import TIME_IDX
from stockcast.data.supply import SupplyTables
from stockcast.simulation.backtest import build_window, make_policy, simulate_all
from stockcast.simulation.engine import kpis


def main() -> None:
    """Print seconds per period and total for classic + oracle."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--stores", type=int, default=50)
    ap.add_argument("--periods", type=int, default=8)
    args = ap.parse_args()
    cfg = OmegaConf.load("conf/data/synthetic.yaml")
    cfg.source.generator.n_items = args.items
    cfg.source.generator.n_stores = args.stores
    spec = instantiate(cfg)
    t = time.perf_counter()
    materialize(spec)
    panel = load_panel(spec)
    panel = panel[panel["demand"].notna()]
    gdir = generated_dir(spec)
    import pandas as pd

    supply = SupplyTables.read(gdir)
    truth_lead = pd.read_parquet(gdir / "truth_lead_times.parquet")
    t1 = int(panel[TIME_IDX].max())
    t0 = t1 - args.periods + 1
    win = build_window(panel, t0, t1, supply, truth_lead, 0.0, 0)
    setup = time.perf_counter() - t
    specs = [("classic", 0.95), ("oracle", 1.0)]
    t = time.perf_counter()
    traces = simulate_all(win, specs, lambda n, k: make_policy(n, k, win, 1, 52, {}, None, None),
                          "lost", 1)
    sim = time.perf_counter() - t
    n = len(win.keys)
    print(f"{n} item-locations x {len(win.periods)} periods, {len(specs)} policies; "
          f"data+window setup {setup:.1f}s")
    print(f"simulation total {sim:.3f}s = {sim / len(win.periods):.4f}s per period "
          f"({sim / len(win.periods) / len(specs):.4f}s per period per policy)")
    for (name, _), tr in traces.items():
        k = kpis(tr)
        print(f"  {name}: fill {k['fill_rate']:.3f} avg inventory {k['avg_inventory']:,.0f}")


if __name__ == "__main__":
    main()
