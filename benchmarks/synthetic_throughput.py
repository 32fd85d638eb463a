"""Synthetic generator throughput: demand rows per second at 10,000 item-locations.

Usage (from the repository root)::

    python benchmarks/synthetic_throughput.py                      # 200 items x 50 stores
    python benchmarks/synthetic_throughput.py --items 100 --stores 20 --periods 260 --repeat 3

Prints, for generation without and with the exact true quantiles (``truth_demand``
``q<level>`` columns, the dominant cost), wall time, CPU time and demand rows
(item-location-periods, history + horizon as in ``truth_demand``) per second; optionally
the time to write every table as parquet. Wall time counts whatever else the machine runs;
CPU time does not.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

from stockcast.data.synthetic import QUANTILES, generate, write


def measure(args: argparse.Namespace, quantiles: tuple[float, ...] | None) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        data = generate(
            n_items=args.items,
            n_stores=args.stores,
            n_dcs=args.dcs,
            periods=args.periods,
            freq=args.freq,
            horizon=args.horizon,
            seed=args.seed,
            quantiles=quantiles,
        )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if not best or wall < best["wall"]:
            rows = len(data.truth["truth_demand"])
            best = {"wall": wall, "cpu": cpu, "rows": rows}
    if args.write:
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            write(data, folder)
            best["write"] = time.perf_counter() - t0
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--dcs", type=int, default=5)
    parser.add_argument("--periods", type=int, default=156)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--freq", default="W-MON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="report the fastest of N runs")
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args()

    series = args.items * args.stores
    print(
        f"synthetic generator: {series:,} item-locations ({args.items} items x {args.stores} "
        f"stores, {args.dcs} DCs), {args.periods}+{args.horizon} periods '{args.freq}'; "
        f"python {platform.python_version()} on {platform.machine()}"
    )
    for label, quantiles in (("without quantiles", None), ("with true quantiles", QUANTILES)):
        r = measure(args, quantiles)
        line = (
            f"  {label:<20} {r['rows']:>10,} rows  wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s"
            f"  -> {r['rows'] / r['wall']:>10,.0f} rows/s (wall), "
            f"{r['rows'] / r['cpu']:>10,.0f} rows/s (cpu)"
        )
        if "write" in r:
            line += f"  write parquet {r['write']:.2f} s"
        print(line)


if __name__ == "__main__":
    main()
