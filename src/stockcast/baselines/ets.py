"""statsforecast ``AutoETS`` with its prediction intervals as quantiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.baselines.base import Baseline, ffill
from stockcast.cpus import n_jobs


@dataclass
class AutoETSBaseline(Baseline):
    """statsforecast ``AutoETS`` per series (vectorized over series, one process).

    Quantile ``q`` comes from the symmetric prediction interval at level
    ``100·|1 - 2q|`` (lower bound for ``q < 0.5``, upper for ``q > 0.5``); ``q = 0.5`` is the
    point (mean) forecast. Series ETS cannot fit (e.g. a single observation) fall back to
    statsforecast's ``Naive``. Forecasts are clipped at 0.

    Args:
        season_length: Periods per cycle; default from ``spec.freq``.
        model: ETS model string (``ZZZ`` = automatic error/trend/season selection).
        damped: Damped trend (``None``: try both).
        n_jobs: statsforecast processes (1 keeps it in-process; ``auto``: one per CPU).
    """

    name: str = "auto_ets"
    season_length: int | None = None
    model: str = "ZZZ"
    damped: bool | None = None
    n_jobs: int | str = 1

    def __post_init__(self) -> None:
        n_jobs(self.n_jobs, f"baseline {self.name!r}")  # a bad setting fails here, not mid-run

    def _predict(self, wide, o, steps, levels):
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, Naive

        m = self.season(self.season_length)
        hist = ffill(wide.y[:, : o + 1])
        ok = np.isfinite(hist)
        s, c = np.nonzero(ok)
        df = pd.DataFrame({"unique_id": s, "ds": c, "y": hist[s, c]})
        sf = StatsForecast(
            models=[AutoETS(season_length=m, model=self.model, damped=self.damped)],
            freq=1,
            n_jobs=n_jobs(self.n_jobs, f"baseline {self.name!r}"),
            fallback_model=Naive(),
        )
        interval = {q: round(100 * abs(1 - 2 * q), 8) for q in levels if q != 0.5}
        ets_levels = sorted(set(interval.values()))
        fc = sf.forecast(h=steps, df=df, level=ets_levels or None)
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        sid = fc["unique_id"].to_numpy(int)
        step = fc["ds"].to_numpy(int) - o - 1
        out = np.full((wide.n_series, steps, len(levels)), np.nan)
        for k, q in enumerate(levels):
            if q == 0.5:
                col = "AutoETS"
            else:
                col = f"AutoETS-{'lo' if q < 0.5 else 'hi'}-{interval[q]}"
            out[sid, step, k] = fc[col].to_numpy(float)
        return out
