"""Scale-out figures on the synthetic generator: 30,000 item-locations x 156 weeks by default.

    python benchmarks/scale.py                                   # CPU, a few steps
    python benchmarks/scale.py --trainer gpu --steps 200 --workers 0 4 8 --batch-size 512
    python benchmarks/scale.py --items 30 --stores 10 --steps 10  # a quick look (300 series)

Stages, in one process (the data are generated, or reused from ``data/generated``, in a child
process first), each with its wall time and this process's peak resident memory so far
(``ru_maxrss``: a stage's figure includes the stages before it):

1. panel: ``load_panel`` (read, validate, join the covariate tables, calendar);
2. datasets: the training ``TimeSeriesDataSet`` (encoders fitted on the training window) and
   the validation one, as ``TFTDataModule`` builds them;
3. training: ``--steps`` Lightning steps of the TFT (``tft`` config, ``trainer=<--trainer>``)
   for each ``--workers`` setting: samples/s, and the share of step time spent waiting for
   data (from the end of one step to the start of the next: loading, collation, transfer),
   against the compute-only step time measured on the same run (the baseline);
   before that, loading alone in the main process with pytorch-forecasting's
   ``GroupNormalizer`` lookups (baseline) and with ``IndexedGroupNormalizer``'s;
4. batch prediction: ``ForecastBundle.forecast`` of every series from one origin and from
   ``--origins`` origins in one call: series/s, against the previous path (the prediction
   dataset built from the whole history, the baseline) and the model alone on a prebuilt
   dataset (what the rest costs on top).

Figures are printed, not asserted; on a shared machine they are noisy (the load average is
printed with them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import lightning.pytorch as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pytorch_forecasting.data import GroupNormalizer

import stockcast.config  # noqa: F401
from stockcast import PROJECT_ROOT
from stockcast.data.io import materialize
from stockcast.data.panel import load_panel
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.datamodule import TFTDataModule
from stockcast.forecast.dataset import TimeSplit
from stockcast.forecast.predict import raw_predictions
from stockcast.forecast.scenarios import as_of
from stockcast.schema import GROUP_IDS, TIME_IDX


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


class StepTimer(L.Callback):
    """Per step: compute (batch start -> batch end) and data wait (previous end -> start)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.step, self.wait, self._end, self._start = cuda, [], [], None, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._end is not None:
            self.wait.append(now - self._end)
        self._start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self._end = time.perf_counter()
        self.step.append(self._end - self._start)


def _generate(overrides: list[str]) -> None:
    spec = instantiate(_compose(overrides).data)
    materialize(spec)


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=["paths.output_dir=/tmp/stockcast-bench", *overrides])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="more Hydra overrides (train config)")
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--stores", type=int, default=100)
    ap.add_argument("--periods", type=int, default=156)
    ap.add_argument("--trainer", default="cpu", help="trainer config: cpu | gpu | default")
    ap.add_argument("--steps", type=int, default=12, help="timed training steps per setting")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--batch-size", type=int, default=None, help="default: loader.batch_size")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--origins", type=int, default=3, help="origins of the multi-origin forecast")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [
        "data=synthetic",
        f"data.source.generator.n_items={args.items}",
        f"data.source.generator.n_stores={args.stores}",
        f"data.source.generator.periods={args.periods}",
        f"trainer={args.trainer}",
        *args.overrides,
    ]
    cfg = _compose(overrides)
    print(f"{args.items * args.stores:,} item-locations x {args.periods} periods; trainer={args.trainer}; "
          f"torch threads {torch.get_num_threads()}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f}; cuda {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")

    t = time.perf_counter()
    child = mp.get_context("spawn").Process(target=_generate, args=(overrides,))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"data generation failed ({child.exitcode})")
    print(f"data: generated or reused in {time.perf_counter() - t:.1f}s "
          f"(child peak {_peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB)")

    spec = instantiate(cfg.data)
    t = time.perf_counter()
    panel = load_panel(spec)
    split = TimeSplit.from_panel(panel, spec)
    n_series = panel.groupby(GROUP_IDS, observed=True).ngroups
    print(f"panel: {len(panel):,} rows, {n_series:,} series, {panel.memory_usage(deep=True).sum() / 2**20:,.0f} MB "
          f"in {time.perf_counter() - t:.1f}s; peak {_peak_mb():,.0f} MB")

    bs = args.batch_size or int(cfg.loader.batch_size)
    t = time.perf_counter()
    data = TFTDataModule(panel, spec, split, batch_size=bs)
    t_train = time.perf_counter() - t
    t = time.perf_counter()
    data.setup("fit")
    t_val = time.perf_counter() - t
    print(f"datasets: training {len(data.training):,} samples in {t_train:.1f}s, validation "
          f"{len(data.validation):,} in {t_val:.1f}s; peak {_peak_mb():,.0f} MB")

    cuda = args.trainer == "gpu" or (cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available())
    # loading only, main process: pytorch-forecasting's GroupNormalizer lookups (the previous
    # path, the baseline) against IndexedGroupNormalizer's (stockcast.forecast.normalizers)
    norm = data.training.target_normalizer
    loads = {}
    for cls in (GroupNormalizer, type(norm)):
        norm.__class__ = cls  # same fitted state, the other lookup
        it = iter(data.training.to_dataloader(train=True, batch_size=bs, num_workers=0))
        next(it)
        t = time.perf_counter()
        for _ in range(args.steps):
            next(it)
        loads[cls.__name__] = (time.perf_counter() - t) / args.steps
    base, fast = loads["GroupNormalizer"], loads[type(norm).__name__]
    print(f"loading only (batch {bs}, main process): GroupNormalizer {base * 1e3:.1f} ms/batch "
          f"(baseline), {type(norm).__name__} {fast * 1e3:.1f} ms/batch ({base / fast:.2f}x faster)")
    model = instantiate(cfg.tft)(data.training)
    print(f"training: batch {bs}, TFT hidden {cfg.tft.hidden_size}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, precision {cfg.trainer.precision}")
    print(f"  {'workers':>7} {'samples/s':>10} {'step ms':>8} {'compute ms':>10} {'data ms':>8} "
          f"{'data share':>10} {'first batch s':>13}")
    for w in args.workers:
        timer = StepTimer(cuda)
        trainer = instantiate(
            cfg.trainer, max_epochs=1, max_steps=args.warmup + args.steps,
            limit_train_batches=args.warmup + args.steps, limit_val_batches=0, num_sanity_val_steps=0,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[timer],
        )
        t = time.perf_counter()
        loader = data.training.to_dataloader(
            train=True, batch_size=bs, num_workers=w, persistent_workers=False, pin_memory=cuda
        )
        trainer.fit(model, train_dataloaders=loader)
        first = time.perf_counter() - t - sum(timer.step) - sum(timer.wait)
        step = np.array(timer.step[args.warmup:])
        wait = np.array(timer.wait[args.warmup - 1:])
        total = step.mean() + wait.mean()
        print(f"  {w:>7} {bs / total:>10,.0f} {total * 1e3:>8.1f} {step.mean() * 1e3:>10.1f} "
              f"{wait.mean() * 1e3:>8.1f} {wait.mean() / total:>10.1%} {first:>13.1f}")
    print(f"  peak {_peak_mb():,.0f} MB")

    model.eval()
    series = panel[GROUP_IDS].drop_duplicates().to_numpy().tolist()
    bundle = ForecastBundle(model, data.training.get_parameters(), spec, panel["period"].min(), series)
    horizon = bundle.max_horizon
    origin = split.test_end - horizon
    # baseline: the model alone on a prebuilt prediction dataset of the same series
    from pytorch_forecasting import TimeSeriesDataSet

    view = as_of(panel, spec, origin, horizon)
    dataset = TimeSeriesDataSet.from_parameters(
        bundle.dataset_parameters, view.assign(demand=view["demand"].fillna(0.0)), predict=True,
        stop_randomization=True, max_prediction_length=horizon, min_prediction_length=horizon,
    )
    t = time.perf_counter()
    raw_predictions(model, dataset)
    model_only = time.perf_counter() - t
    # the previous path: the prediction dataset built from the whole history up to the origin
    t = time.perf_counter()
    bundle.forecast_last(as_of(panel, spec, origin, horizon), horizon)
    whole = time.perf_counter() - t
    t = time.perf_counter()
    one = bundle.forecast(panel, [origin], horizon)
    full = time.perf_counter() - t
    n_fc = one[GROUP_IDS].drop_duplicates().shape[0]
    print(f"batch prediction (horizon {horizon}, {n_fc:,} series): model alone {n_fc / model_only:,.0f} "
          f"series/s ({model_only:.1f}s); whole-history dataset (previous path) {n_fc / whole:,.0f} "
          f"series/s ({whole:.1f}s, baseline); ForecastBundle.forecast {n_fc / full:,.0f} series/s "
          f"({full:.1f}s: {whole / full:.2f}x faster, {full / model_only:.2f}x the model alone)")
    if args.origins > 1:
        origins = [origin - k for k in range(args.origins)][::-1]
        t = time.perf_counter()
        many = bundle.forecast(panel, origins, horizon)
        multi = time.perf_counter() - t
        n_many = many[[*GROUP_IDS, "forecast_origin"]].drop_duplicates().shape[0]
        print(f"  {args.origins} origins in one call: {n_many / multi:,.0f} series-origins/s "
              f"({multi:.1f}s, {multi / args.origins:.1f}s per origin)")
    print(f"  peak {_peak_mb():,.0f} MB; {int(panel[TIME_IDX].max()) + 1} periods")


if __name__ == "__main__":
    main()
