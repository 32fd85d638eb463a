"""The tables of one synthetic dataset and how they are written to disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: Bump when the generated data changes for the same arguments (invalidates cached copies).
#: 2: stronger sentiment and temperature effects, larger weather anomalies and more varied
#: regional climates, so the drivers the truth calls strong are learnable by a small TFT
#: (tests/test_synthetic_importance.py).
GENERATOR_VERSION = 2

#: Files written by :func:`write`, by role.
COVARIATE_TABLES = ("prices", "weather", "sentiment", "market", "events", "items", "stores")
SUPPLY_TABLES = ("locations", "economics", "suppliers", "lanes")
TRUTH_TABLES = (
    "truth_demand",
    "truth_series",
    "truth_effects",
    "truth_lead_times",
    "truth_weather",
)


@dataclass
class SyntheticData:
    """Every table of one synthetic dataset.

    Attributes:
        demand: ``item_id, location_id, period, demand`` (history periods only).
        covariates: ``prices`` (item, location, period: price, regular_price, discount,
            promo, noise_known; history + horizon), ``weather`` (location, period:
            temperature_forecast, temperature [actual, missing in the horizon]),
            ``sentiment`` (item, period: sentiment, noise_unknown; from ``sentiment_lag``
            periods before the start to the end of the history), ``market`` (period:
            market_index; history), ``events`` (period: holiday, event; history + horizon),
            ``items`` (item: category, pack_size, noise_static), ``stores`` (location:
            region, dc_id, store_size).
        supply: ``locations``, ``economics``, ``suppliers``, ``lanes`` (schemas in
            ``docs/data.md``).
        truth: ``truth_demand`` (per item-location-period: realised demand, mean, size,
            true quantiles ``q<level>``; history + horizon), ``truth_series`` (per
            item-location driver parameters), ``truth_effects`` (per driver: covariate,
            effect sizes, relevance), ``truth_lead_times`` (per supplier and period:
            realised lead time, disruption flag), ``truth_weather`` (true temperature and
            forecast for every period).
        params: The arguments :func:`~stockcast.data.synthetic.generate` was called with.
    """

    demand: pd.DataFrame
    covariates: dict[str, pd.DataFrame]
    supply: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    params: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """All tables by file stem (``demand``, covariates, supply, truth)."""
        return {"demand": self.demand, **self.covariates, **self.supply, **self.truth}

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write every table as ``<folder>/<name>.parquet`` plus ``manifest.json``."""
        return write(self, folder)


def write(data: SyntheticData, folder: str | Path) -> dict[str, Path]:
    """Write ``data``'s tables as parquet files into ``folder`` (created if needed).

    Returns:
        Table name -> written path (``manifest`` -> ``manifest.json`` with the generator
        arguments, version and row counts).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in data.tables().items():
        paths[name] = folder / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    manifest = {
        "generator": "stockcast.data.synthetic.generate",
        "version": GENERATOR_VERSION,
        "params": data.params,
        "rows": {name: len(frame) for name, frame in data.tables().items()},
    }
    paths["manifest"] = folder / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, default=str))
    return paths
