"""Tiny panels and specs shared by the baseline tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.schema import DEFAULT_QUANTILES, quantile_column

Q = [quantile_column(q) for q in DEFAULT_QUANTILES]
#: A LightGBM small enough for tests (few trees, few lags).
SMALL_LGBM = {"n_estimators": 40, "num_leaves": 7, "min_child_samples": 5, "n_lags": 4}


def make_spec(**roles) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        source={"path": "unused.parquet"},
        freq="MS",
        columns={"item_id": "item", "location_id": "loc", "period": "date", "demand": "y"},
        calendar=["month"],
        **roles,
    )


SPEC = make_spec(known_reals=["promo"], unknown_reals=["market"], static_reals=["size"])


def make_panel(demand: np.ndarray, seed: int = 0, promo: np.ndarray | None = None) -> pd.DataFrame:
    """Canonical panel from a (series, time) demand array: items i0.., one location each."""
    rng = np.random.default_rng(seed)
    n, t = demand.shape
    periods = pd.date_range("2020-01-01", periods=t, freq="MS")
    promo = rng.integers(0, 2, (n, t)).astype(float) if promo is None else promo
    rows = []
    for s in range(n):
        rows.append(
            pd.DataFrame(
                {
                    "item_id": f"i{s % 3}",
                    "location_id": f"l{s // 3}",
                    "period": periods,
                    "demand": demand[s].astype(float),
                    "promo": promo[s],
                    "market": rng.normal(100, 5, t),
                    "size": float(s + 1),
                    "time_idx": np.arange(t),
                    "month": periods.month.astype(str),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def noisy_panel(n: int = 6, t: int = 36, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.uniform(20, 200, (n, 1))
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(t) / 12)
    return make_panel(np.round(level * season * rng.gamma(20, 1 / 20, (n, t))), seed)


def series(panel: pd.DataFrame, item: str, loc: str) -> np.ndarray:
    sel = panel[(panel.item_id == item) & (panel.location_id == loc)].sort_values("time_idx")
    return sel["demand"].to_numpy()
