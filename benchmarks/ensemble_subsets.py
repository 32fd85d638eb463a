"""Score the members of one registered TFT ensemble alone and in sub-ensembles, and each with
several calibrations, on the same rolling origins as ``evaluate.py`` (no training).

    python benchmarks/ensemble_subsets.py --model 3 [--subsets 0 1 2 3 4 0,1,2 0,1,2,3,4]
                                          [--bins 1 3 5] [--scales encoder_mean median]
                                          [--n-origins 3 --stride 2]

One ``ensemble.size=k`` training gives k single-seed models (mean +- sd over seeds), the
ensembles of their first j members (ensemble size 3 against 5 from one run) and, for each,
the conformal calibration refitted on the validation window as ``train.py`` fits it
(``calibration.n_origins`` 3, stride 2, ``encoder_mean`` scale) with ``bins`` volume groups, or
none. Test figures use ``evaluate.py``'s origins and MASE scale, so the row of the full
ensemble with the training's own bin count reproduces ``evaluate.py``'s ``tft`` row. Prints
one row per (subset, calibration); the figures are printed, not asserted.
"""

from __future__ import annotations

import argparse

import pandas as pd
from omegaconf import OmegaConf

from stockcast.evaluation.metrics import forecast_metrics, mase_scale
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.calibration import fit_calibration
from stockcast.forecast.dataset import TimeSplit
from stockcast.forecast.protocol import by_model, cross_validate, rolling_origins
from stockcast.schema import TIME_IDX
from stockcast.tracking.context import load_context

COLUMNS = ["mae", "pinball", "coverage_80", "bias_scaled"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registered version (or run id)")
    parser.add_argument("--model-name", default="stockcast-tft")
    parser.add_argument("--subsets", nargs="+", default=None, help="member indices, comma separated")
    parser.add_argument("--bins", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--scales", nargs="+", default=["encoder_mean"], choices=["encoder_mean", "median"],
                        help="residual scales of the conformal calibration")
    parser.add_argument("--n-origins", type=int, default=3)
    parser.add_argument("--stride", type=int, default=2)
    args = parser.parse_args()

    ctx = load_context(OmegaConf.create({"model": args.model, "model_name": args.model_name, "max_series": None}))
    bundle, spec, panel = ctx.bundle, ctx.spec, ctx.panel
    split = TimeSplit.from_panel(panel, spec)
    k = len(bundle.members)
    subsets = args.subsets or [str(i) for i in range(k)] + [",".join(map(str, range(j))) for j in (3, 5) if j <= k]
    horizon = bundle.max_horizon
    val_panel = panel[panel[TIME_IDX] <= split.val_end]
    val_origins = rolling_origins(split.val_start, split.val_end, 3, 2)
    test_origins = rolling_origins(split.test_start, split.test_end, args.n_origins, args.stride)
    scale = mase_scale(panel[panel[TIME_IDX] < split.test_start])
    window = int(spec.window["max_encoder_length"])
    print(f"model {ctx.version.version}: {k} members, val origins {val_origins}, test origins {test_origins}")

    variants = [(None, None)] + [(s, b) for s in args.scales for b in args.bins]  # (None, None): uncalibrated
    rows = []
    for subset in subsets:
        members = [bundle.members[int(i)] for i in subset.split(",")]
        sub = ForecastBundle(members, bundle.dataset_parameters, spec, bundle.calendar_start, bundle.series)
        val = by_model(cross_validate([sub], val_panel, val_origins, horizon))[sub.name]
        test = by_model(cross_validate([sub], panel, test_origins, horizon))[sub.name]
        for res_scale, bins in variants:
            cal = None if bins is None else fit_calibration(val, panel, window=window, bins=bins, scale=res_scale)
            served = test if cal is None else cal.apply(test, panel)
            m = forecast_metrics(served, prefix="test", scale=scale)
            label = "none" if bins is None else f"conformal {res_scale} bins={bins}"
            rows.append({"members": subset, "calibration": label, **{c: m[f"test_{c}"] for c in COLUMNS}})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
