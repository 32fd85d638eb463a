"""Training throughput of the TFT and the share of step time spent in data loading.

    python benchmarks/train_throughput.py [hydra overrides ...] [--batches 30] [--workers 0 2]
    python benchmarks/train_throughput.py experiment=smoke --threads 1 2   # intra-op threads

For each ``--threads`` setting (torch intra-op threads; default: torch's own choice) it
times compute only: forward + backward + optimizer step on batches already in memory (on
the device the trainer config selects: CUDA if available with accelerator=auto). For each
``num_workers`` setting it times loading only: iterating the training dataloader (what the
GPU would wait for). It prints samples/s of a full step (load + compute, with the first
thread setting's compute) and the loading share. Ratios are against the first thread
setting's compute-only baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import stockcast.config  # noqa: F401
from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel, select_series
from stockcast.forecast.dataset import TimeSplit, training_dataset


def _device(accelerator: str) -> torch.device:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _to(batch, device):
    x, (y, w) = batch
    x = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in x.items()}
    y = [t.to(device) for t in y] if isinstance(y, list | tuple) else y.to(device)
    return x, (y, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic tft.hidden_size=32")
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[0],
                    help="torch intra-op threads to compare (0 = torch's default)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over the thread settings")
    args = ap.parse_args()
    default_threads = torch.get_num_threads()

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["paths.output_dir=/tmp/stockcast-bench", *args.overrides])
    spec = instantiate(cfg.data)
    panel = select_series(load_panel(spec), None, cfg.get("max_series"))
    training = training_dataset(panel, spec, TimeSplit.from_panel(panel, spec))
    model = instantiate(cfg.tft)(training)
    device = _device(cfg.trainer.accelerator)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.tft.learning_rate))
    bs = args.batch_size or int(cfg.loader.batch_size)
    amp = "bf16" in str(cfg.trainer.precision) and device.type == "cuda"
    print(f"dataset={spec.name} samples={len(training)} batch_size={bs} device={device} bf16={amp} "
          f"params={sum(p.numel() for p in model.parameters()):,}")

    # compute-only baseline on batches held in memory
    loader = training.to_dataloader(train=True, batch_size=bs, num_workers=0)
    held = [_to(b, device) for _, b in zip(range(args.batches), loader, strict=False)]
    n = len(held)

    def step(batch):
        x, y = batch
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
            loss = model.loss(out["prediction"], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # thread settings interleaved over rounds (the machine's load drifts): median per setting
    times: dict[int, list[float]] = {t: [] for t in args.threads}
    for _ in range(args.rounds):
        for threads in args.threads:
            torch.set_num_threads(threads or default_threads)
            step(held[0])  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for b in held:
                step(b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[threads].append((time.perf_counter() - t0) / n)
    computes = [float(np.median(times[t])) for t in args.threads]
    for threads, c in zip(args.threads, computes, strict=True):
        spread = ", ".join(f"{x * 1e3:.0f}" for x in times[threads])
        print(f"compute only, {threads or default_threads} thread(s): {c * 1e3:.1f} ms/step "
              f"(rounds: {spread}), {bs / c:,.0f} samples/s, {computes[0] / c:.2f}x the first setting")
    torch.set_num_threads(args.threads[0] or default_threads)
    compute = computes[0]

    print(f"{'workers':>7} {'load ms/batch':>14} {'step ms':>8} {'samples/s':>10} {'load share':>10} {'vs compute':>10}")
    for w in args.workers:
        loader = training.to_dataloader(train=True, batch_size=bs, num_workers=w, persistent_workers=w > 0)
        it = iter(loader)
        next(it)
        t0 = time.perf_counter()
        k = 0
        for _ in range(n):
            try:
                _to(next(it), device)
            except StopIteration:
                break
            k += 1
        load = (time.perf_counter() - t0) / max(k, 1)
        total = load + compute
        print(f"{w:>7} {load * 1e3:>14.1f} {total * 1e3:>8.1f} {bs / total:>10,.0f} {load / total:>10.1%} {compute / total:>10.2f}")


if __name__ == "__main__":
    main()
