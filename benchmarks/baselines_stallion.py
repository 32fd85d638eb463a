"""Baselines on Stallion's test window: accuracy and runtime table.

Usage::

    python benchmarks/baselines_stallion.py                      # origin 53, horizon 6
    python benchmarks/baselines_stallion.py --baselines smoke --only naive lightgbm
    python benchmarks/baselines_stallion.py --origins 53 55 57    # rolling origins

Forecasts the last 6 months (time_idx 54..59) with every baseline of
``conf/baselines/<name>.yaml`` and prints :func:`forecast_metrics` (MASE scaled by the
in-sample MAE of the last value, history ``<= min(origins)``) with wall-clock and CPU
seconds. Reference: the naive last value scores MAE ≈ 293.0 on origin 53.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.evaluation.metrics import forecast_metrics, mase_scale
from stockcast.schema import DEFAULT_QUANTILES

COLUMNS = ["mae", "rmse", "wape", "smape", "mase", "pinball", "coverage_80", "coverage_96", "bias"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", default="default", help="conf/baselines/<name>.yaml")
    parser.add_argument("--only", nargs="*", help="run only these baseline names")
    parser.add_argument("--origins", nargs="+", type=int, default=[53])
    parser.add_argument("--horizon", type=int, default=6)
    args = parser.parse_args()

    spec = instantiate(OmegaConf.load(PROJECT_ROOT / "conf" / "data" / "stallion.yaml"))
    panel = load_panel(spec)
    scale = mase_scale(panel[panel["time_idx"] <= min(args.origins)], season=1)
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "baselines" / f"{args.baselines}.yaml")
    rows = {}
    for key, entry in cfg.items():
        if not entry or (args.only and key not in args.only):
            continue
        baseline = instantiate(entry, _partial_=True, _convert_="all")(name=key, spec=spec)
        wall, cpu = time.perf_counter(), time.process_time()
        table = baseline.forecast(panel, args.origins, args.horizon, quantiles=DEFAULT_QUANTILES)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        metrics = forecast_metrics(table, prefix="test", scale=scale)
        rows[baseline.name] = {
            **{c: metrics.get(f"test_{c}") for c in COLUMNS},
            "rows": len(table),
            "wall_s": wall,
            "cpu_s": cpu,
        }
        print(f"{baseline.name}: {wall:.1f} s", flush=True)
    pd.set_option("display.width", 200)
    print(
        f"\nStallion, origins {args.origins}, horizon {args.horizon}, "
        f"{len(DEFAULT_QUANTILES)} quantiles (test_ metrics)"
    )
    print(pd.DataFrame(rows).T.astype(float).round(3).to_string())


if __name__ == "__main__":
    main()
