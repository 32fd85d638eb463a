"""The contracts every package shares, stated once.

* **Canonical panel**: one row per ``item_id`` x ``location_id`` x ``period`` (period start
  date) with ``demand``, an integer ``time_idx`` (0 = the dataset's first period) and the
  covariates a dataset config declares (:class:`stockcast.data.spec.DatasetSpec`).
* **Forecast table**: one row per ``item_id`` x ``location_id`` x ``period`` and forecast
  origin, with ``forecast_origin`` (the last period the forecaster saw), ``horizon``
  (1 = the first period after the origin) and one column per quantile level
  (:func:`quantile_column`: ``q0.1``, ``q0.5``...), in demand units, non-negative and
  monotone in the level (no crossing). A table may carry the realised ``demand``.
  :func:`validate_forecast_table` checks it.
* **Cross-validation table** (:func:`stockcast.forecast.protocol.cross_validate`): forecast
  tables of several models stacked, with a ``model`` column.
* **Season length** of a pandas frequency (:func:`season_length_for`).
* **Panel fingerprint**: content hash and shape of a panel (:func:`panel_fingerprint`), logged
  with every run that reads data and keying cached forecasts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stockcast.errors import DataValidationError, Issue

#: Canonical key and target columns every dataset is mapped onto.
CANONICAL = ("item_id", "location_id", "period", "demand")
#: Keys of one series.
GROUP_IDS = ["item_id", "location_id"]
#: Integer period index of the canonical panel.
TIME_IDX = "time_idx"
PERIOD = "period"
DEMAND = "demand"
FORECAST_ORIGIN = "forecast_origin"
HORIZON = "horizon"
#: Column naming the forecaster in a cross-validation table.
MODEL = "model"
#: Keys of one forecast-table row.
FORECAST_KEYS = [*GROUP_IDS, PERIOD, FORECAST_ORIGIN, HORIZON]

#: Quantile levels forecast when the caller names none.
DEFAULT_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


def quantile_column(level: float) -> str:
    """Column name of a quantile level: 0.5 -> ``q0.5``, 0.02 -> ``q0.02``."""
    return f"q{float(level):g}"


def quantile_levels(table: pd.DataFrame) -> list[float]:
    """Quantile levels present in a forecast table, ascending."""
    levels = []
    for c in table.columns:
        if isinstance(c, str) and c.startswith("q"):
            try:
                levels.append(float(c[1:]))
            except ValueError:
                continue
    return sorted(levels)


def quantile_columns(table: pd.DataFrame) -> list[str]:
    """Quantile columns of a forecast table, by ascending level."""
    return [quantile_column(q) for q in quantile_levels(table)]


def point_column(table: pd.DataFrame) -> str:
    """Column used as the point forecast: the median (or the level closest to it)."""
    levels = quantile_levels(table)
    if not levels:
        raise ValueError("forecast table has no quantile columns (q<level>)")
    return quantile_column(min(levels, key=lambda q: abs(q - 0.5)))


def check_levels(quantiles: Sequence[float] | None) -> list[float]:
    """Sorted unique quantile levels (default :data:`DEFAULT_QUANTILES`), each in (0, 1)."""
    levels = sorted({float(q) for q in (DEFAULT_QUANTILES if quantiles is None else quantiles)})
    if not levels or levels[0] <= 0 or levels[-1] >= 1:
        raise ValueError(f"quantiles must be levels strictly between 0 and 1, got {quantiles}")
    return levels


def non_crossing(q: np.ndarray) -> np.ndarray:
    """Quantiles (levels on the last axis) made non-negative and monotone in the level."""
    return np.sort(np.clip(np.asarray(q, dtype=float), 0.0, None), axis=-1)


def validate_forecast_table(table: pd.DataFrame, name: str = "forecast") -> pd.DataFrame:
    """Check a forecast table against the contract; return it unchanged.

    Raises:
        DataValidationError: Missing key columns, no quantile column, non-finite or negative
            quantiles, or quantiles that cross (each issue names the rows at fault).
    """
    issues: list[Issue] = []
    missing = [c for c in FORECAST_KEYS if c not in table.columns]
    for c in missing:
        issues.append(Issue(name, c, "missing_column", "required forecast-table column is absent"))
    cols = quantile_columns(table)
    if not cols:
        issues.append(Issue(name, None, "quantile_columns", "no q<level> column"))
    if issues:
        raise DataValidationError(issues)
    q = table[cols].to_numpy(float)
    rows = table.index.to_numpy()
    bad = ~np.isfinite(q).all(axis=1)
    if bad.any():
        issues.append(Issue(name, None, "finite", "non-finite quantile value", rows[bad].tolist()))
    neg = (q < 0).any(axis=1)
    if neg.any():
        issues.append(Issue(name, None, "non_negative", "negative quantile", rows[neg].tolist()))
    with np.errstate(invalid="ignore"):
        cross = (np.diff(q, axis=1) < -1e-9).any(axis=1)
    if cross.any():
        issues.append(
            Issue(name, None, "non_crossing", "quantiles decrease with the level", rows[cross].tolist())
        )
    if issues:
        raise DataValidationError(issues)
    return table


#: Periods per seasonal cycle by pandas offset prefix.
SEASON_BY_OFFSET = {
    "MS": 12, "ME": 12, "M": 12, "BMS": 12, "BME": 12, "BM": 12, "SMS": 24, "SM": 24,
    "W": 52, "D": 7, "B": 5, "C": 5,
    "QS": 4, "QE": 4, "Q": 4, "BQS": 4, "BQE": 4, "BQ": 4,
    "YS": 1, "YE": 1, "Y": 1, "AS": 1, "A": 1, "BYS": 1, "BYE": 1,
    "h": 24, "H": 24,
}  # fmt: skip


def season_length_for(freq: str) -> int:
    """Season length (periods per cycle) implied by a pandas frequency alias.

    Monthly -> 12, weekly -> 52, daily -> 7 (business daily -> 5), quarterly -> 4,
    hourly -> 24, yearly -> 1; a multiple such as ``2W`` divides the cycle (26).

    Raises:
        ValueError: For a frequency without a known cycle (set ``season_length`` instead).
    """
    offset = pd.tseries.frequencies.to_offset(freq)
    prefix = offset.name.split("-")[0]
    if prefix not in SEASON_BY_OFFSET:
        raise ValueError(
            f"no default season length for frequency {freq!r}; set season_length explicitly"
        )
    return max(1, round(SEASON_BY_OFFSET[prefix] / max(1, offset.n)))


def periods_per_year(freq: str) -> float:
    """Periods in a year of a pandas frequency: weekly 52, monthly 12, daily 365, ...

    Raises:
        ValueError: For a frequency without a known yearly count.
    """
    offset = pd.tseries.frequencies.to_offset(freq)
    prefix = offset.name.split("-")[0]
    sub_weekly = {"D": 365.0, "B": 260.0, "C": 260.0, "h": 8760.0, "H": 8760.0}
    if prefix in sub_weekly:
        return sub_weekly[prefix] / max(1, offset.n)
    if prefix not in SEASON_BY_OFFSET:
        raise ValueError(f"no periods-per-year for frequency {freq!r}")
    return SEASON_BY_OFFSET[prefix] / max(1, offset.n)


def table_sha256(table: pd.DataFrame) -> str:
    """Content hash of any table: every value of every column (columns sorted by name, rows
    in their order, the index ignored); any change of data gives another hash."""
    cols = sorted(table.columns)
    hashed = pd.util.hash_pandas_object(table[cols], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(cols).encode()).hexdigest()


def panel_fingerprint(panel: pd.DataFrame) -> dict[str, Any]:
    """Content hash (:func:`table_sha256`) and shape of a canonical panel."""
    return {
        "data_sha256": table_sha256(panel),
        "data_rows": len(panel),
        "data_series": int(panel.groupby(GROUP_IDS).ngroups),
        "data_start": str(pd.Timestamp(panel[PERIOD].min()).date()),
        "data_end": str(pd.Timestamp(panel[PERIOD].max()).date()),
    }
