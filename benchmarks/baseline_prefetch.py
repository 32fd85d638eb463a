"""Train + evaluate with and without the baseline prefetch: the time `make run` saves.

    python benchmarks/baseline_prefetch.py [train.py / evaluate.py overrides valid for both ...]

Runs ``train.py`` then ``evaluate.py`` as `make run` does (separate processes, the project's
default configs), twice on an empty baseline cache and a throwaway MLflow store:

1. ``prefetch_baselines.enabled=false``: evaluate fits every baseline itself;
2. ``prefetch_baselines.enabled=true`` (the default): training computes them in a second
   process while the TFT trains, evaluate reads them.

Prints each step's wall time, the sum, and the ratio of the sums (below 1 = the prefetch
saves time), and checks that both evaluations score every model identically (the prefetch
changes when the baselines are computed, not what they forecast). Each pair takes about
3-4 minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _step(script: str, overrides: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{script} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0, proc.stdout


def _table(stdout: str) -> list[str]:
    """The comparison table evaluate.py prints (model rows), without the seconds column."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "mae"])
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(" ".join(line.split()[:-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="stockcast-prefetch-"))
    results = {}
    for enabled in (False, True):
        run_dir = tmp / ("on" if enabled else "off")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{run_dir / 'mlflow.db'}"}
        common = [f"evaluation.cache_dir={run_dir / 'cache'}", *extra]
        train_s, _ = _step("train.py", [f"prefetch_baselines.enabled={str(enabled).lower()}",
                                        f"hydra.run.dir={run_dir / 'train'}", *common], env)
        eval_s, out = _step("evaluate.py", [f"hydra.run.dir={run_dir / 'evaluate'}", *common], env)
        results[enabled] = (train_s, eval_s, _table(out))
        print(f"prefetch {'on ' if enabled else 'off'}: train {train_s:6.1f} s  evaluate "
              f"{eval_s:6.1f} s  sum {train_s + eval_s:6.1f} s", flush=True)
    off, on = results[False], results[True]
    print(f"ratio on / off (train + evaluate): {(on[0] + on[1]) / (off[0] + off[1]):.3f}; "
          f"saved {off[0] + off[1] - on[0] - on[1]:.1f} s")
    same = off[2] == on[2]
    print("evaluations identical (every model's metrics):", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
