"""What every baseline shares: the series x time view of a panel and the rolling-origin loop.

A baseline is a dataclass with a ``name`` and, optionally, the dataset's
:class:`~stockcast.data.spec.DatasetSpec` (frequency, covariate roles, encoder window),
given at construction. :meth:`Baseline.forecast` follows the forecaster protocol of
:mod:`stockcast.forecast.protocol` (origins, truncation at the panel end, one table per
origin, stacked): the subclass only turns one origin's history into quantiles
``[series, step, level]`` (:meth:`Baseline._predict`) or, when it post-processes a whole
table, into a forecast table (:meth:`Baseline._origin_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stockcast.data.spec import ROLE_KEYS, DatasetSpec
from stockcast.schema import (
    DEMAND,
    FORECAST_ORIGIN,
    GROUP_IDS,
    HORIZON,
    PERIOD,
    TIME_IDX,
    check_levels,
    non_crossing,
    quantile_column,
    season_length_for,
)

#: Columns a panel must carry for the baselines.
PANEL_COLUMNS = (*GROUP_IDS, PERIOD, TIME_IDX, DEMAND)
#: Dataset-spec fields a baseline's forecasts can depend on (its cache key, see ``config``).
SPEC_FIELDS = ("freq", *ROLE_KEYS, "calendar", "window")


class WidePanel:
    """A canonical panel as series x time arrays (one row per series, one column per period).

    Args:
        panel: Canonical panel (``item_id``, ``location_id``, ``period``, ``time_idx``,
            ``demand`` and covariates).
        freq: pandas frequency; fills grid periods that no series has.

    Raises:
        ValueError: Missing columns, or duplicate item x location x time_idx rows.
    """

    def __init__(self, panel: pd.DataFrame, freq: str | None = None):
        missing = [c for c in PANEL_COLUMNS if c not in panel.columns]
        if missing:
            raise ValueError(f"panel: missing column(s) {missing} (canonical panel expected)")
        dup = panel.duplicated([*GROUP_IDS, TIME_IDX], keep=False)
        if dup.any():
            rows = panel.index[dup.to_numpy()][:10].tolist()
            raise ValueError(
                f"panel: {int(dup.sum())} duplicate item_id × location_id × time_idx rows, "
                f"e.g. rows {rows}"
            )
        self.panel = panel
        keys = panel[GROUP_IDS].astype(str)
        index = pd.MultiIndex.from_frame(keys)
        self.keys = index.unique().sort_values()
        self.sid = self.keys.get_indexer(index)
        tidx = panel[TIME_IDX].to_numpy(int)
        self.t0 = int(tidx.min())
        self.n_series = len(self.keys)
        self.n_time = int(tidx.max()) - self.t0 + 1
        self.col = tidx - self.t0
        self.present = np.zeros((self.n_series, self.n_time), bool)
        self.present[self.sid, self.col] = True
        self.y = self.wide(DEMAND)
        self.periods = self._period_grid(freq)

    def _period_grid(self, freq: str | None) -> np.ndarray:
        grid = pd.Series(pd.NaT, index=range(self.n_time), dtype="datetime64[ns]")
        first = pd.DataFrame({"col": self.col, "period": self.panel[PERIOD].to_numpy()})
        first = first.drop_duplicates("col").set_index("col")["period"]
        grid.loc[first.index] = first.to_numpy()
        if grid.isna().any():
            if freq is None:
                return grid.to_numpy()  # WidePanel.table raises if it needs a missing one
            offset = pd.tseries.frequencies.to_offset(freq)
            anchor_col = int(first.index[0])
            anchor = pd.Timestamp(first.iloc[0])
            for c in np.flatnonzero(grid.isna().to_numpy()):
                grid.iloc[c] = anchor + (int(c) - anchor_col) * offset
        return grid.to_numpy()

    def wide(self, column: str) -> np.ndarray:
        """Numeric column as a float (series x time) array, NaN where the panel has no row."""
        out = np.full((self.n_series, self.n_time), np.nan)
        out[self.sid, self.col] = pd.to_numeric(self.panel[column]).to_numpy(float)
        return out

    def history(self, o: int) -> np.ndarray:
        """Demand visible at origin column ``o``: columns after it blanked to NaN."""
        y = self.y.copy()
        y[:, o + 1 :] = np.nan
        return y

    def needs_forecast(self, o: int, steps: int) -> np.ndarray:
        """[series, step] mask of the rows a forecast table from column ``o`` holds: panel
        rows after the origin of series with observed demand at or before it."""
        has_history = np.isfinite(self.y[:, : o + 1]).any(axis=1)
        return self.present[:, o + 1 : o + 1 + steps] & has_history[:, None]

    def table(self, o: int, q: np.ndarray, levels: list[float], name: str) -> pd.DataFrame:
        """Forecast table for origin column ``o`` from quantiles ``q`` [series, step, level]
        (made non-negative and non-crossing, :func:`stockcast.schema.non_crossing`)."""
        steps = q.shape[1]
        s, j = np.nonzero(self.needs_forecast(o, steps))
        values = q[s, j, :]
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            examples = [f"{self.keys[k][0]}@{self.keys[k][1]}" for k in np.unique(s[bad])[:5]]
            raise ValueError(
                f"baseline {name!r}: non-finite forecasts at origin time_idx {o + self.t0} "
                f"for {int(bad.sum())} row(s), series e.g. {', '.join(examples)}"
            )
        values = non_crossing(values)
        cols = o + 1 + j
        origin_period = self.periods[o]
        if pd.isna(origin_period) or pd.isna(self.periods[cols]).any():
            raise ValueError(
                "panel: the period grid has holes around origin time_idx "
                f"{o + self.t0}; give the baseline a spec so its freq can fill them"
            )
        out = pd.DataFrame(
            {
                GROUP_IDS[0]: self.keys.get_level_values(0)[s],
                GROUP_IDS[1]: self.keys.get_level_values(1)[s],
                PERIOD: self.periods[cols],
                FORECAST_ORIGIN: pd.Timestamp(origin_period),
                HORIZON: (j + 1).astype(int),
            }
        )
        for k, level in enumerate(levels):
            out[quantile_column(level)] = values[:, k]
        out[DEMAND] = self.y[s, cols]
        return out


# ------------------------------------------------------------------------- array helpers
def ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along the time axis (leading NaNs stay NaN)."""
    idx = np.where(np.isfinite(a), np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return a[np.arange(a.shape[0])[:, None], idx]


def rolling_mean(a: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of the finite values in the last ``window`` columns (NaN if none)."""
    ok = np.isfinite(a)
    pad = np.zeros((a.shape[0], 1))
    cum_x = np.concatenate([pad, np.cumsum(np.where(ok, a, 0.0), axis=1)], axis=1)
    cum_n = np.concatenate([pad, np.cumsum(ok * 1.0, axis=1)], axis=1)
    start = np.maximum(np.arange(1, a.shape[1] + 1) - int(window), 0)
    s, n = cum_x[:, 1:] - cum_x[:, start], cum_n[:, 1:] - cum_n[:, start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


# ------------------------------------------------------------------------------ interface
@dataclass
class Baseline:
    """Common base of all baselines (the forecaster protocol's rolling-origin loop).

    Args:
        name: Label used in reports and metric tables.
        spec: Dataset spec: frequency (season lengths, period grid), covariate roles and
            encoder window. Optional for baselines that need none of them.
    """

    name: str = "baseline"
    spec: DatasetSpec | None = None

    #: Fields that set how a forecast is computed, not what it is (threads, processes): not
    #: part of :meth:`config`, so a table cached by a run with ``n_jobs=1`` serves one with
    #: ``n_jobs=auto`` (tests/baselines assert the forecasts are equal).
    EXECUTION_FIELDS: ClassVar[frozenset[str]] = frozenset({"n_jobs"})

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Quantile forecasts from each origin, stacked (rules: :mod:`stockcast.forecast.protocol`).

        Args:
            panel: Canonical panel (see :func:`stockcast.data.panel.load_panel`).
            origins: ``time_idx`` of the last period visible to the forecaster (a single
                int is accepted too).
            horizon: Steps ahead (truncated at the end of the panel).
            quantiles: Quantile levels; default :data:`stockcast.schema.DEFAULT_QUANTILES`.

        Returns:
            Forecast table sorted by origin, item, location and horizon, with the actual
            ``demand`` where the panel holds it.

        Raises:
            ValueError: Bad horizon, quantile levels or origins, or an origin with no
                panel period after it.
        """
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        levels = check_levels(quantiles)
        origin_list = [int(origins)] if np.isscalar(origins) else [int(o) for o in origins]
        if not origin_list:
            raise ValueError("origins is empty: give at least one time_idx")
        wide = WidePanel(panel, self.spec.freq if self.spec is not None else None)
        last = wide.t0 + wide.n_time - 1
        tables = []
        for origin in origin_list:
            o = origin - wide.t0
            if o < 0 or o >= wide.n_time - 1:
                raise ValueError(
                    f"baseline {self.name!r}: origin time_idx {origin} leaves no period to "
                    f"forecast in the panel (time_idx {wide.t0}..{last}); add future rows "
                    "with known covariates to forecast beyond the data"
                )
            steps = min(int(horizon), wide.n_time - 1 - o)
            tables.append(self._origin_table(wide, o, steps, levels))
        out = pd.concat(tables, ignore_index=True)
        return out.sort_values([FORECAST_ORIGIN, *GROUP_IDS, HORIZON], ignore_index=True)

    def _origin_table(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> pd.DataFrame:
        """Forecast table of origin column ``o`` (default: from :meth:`_predict`)."""
        return wide.table(o, self._predict(wide, o, steps, levels), levels, self.name)

    def _predict(self, wide: WidePanel, o: int, steps: int, levels: list[float]) -> np.ndarray:
        """Quantiles [series, step, level] from origin column ``o`` (rows may be NaN where
        the table needs no forecast)."""
        raise NotImplementedError

    def season(self, season_length: int | None) -> int:
        """``season_length`` if given, else the one of the spec's frequency.

        Raises:
            ValueError: ``season_length < 1``, or neither a season length nor a spec.
        """
        if season_length is not None:
            if int(season_length) < 1:
                raise ValueError(f"baseline {self.name!r}: season_length must be >= 1")
            return int(season_length)
        if self.spec is None:
            raise ValueError(f"baseline {self.name!r}: give season_length or a spec with freq")
        return season_length_for(self.spec.freq)

    def config(self) -> dict[str, Any]:
        """Everything the forecasts depend on, JSON-ready: the class, every field (sorted)
        but the :attr:`EXECUTION_FIELDS`, and of the spec only :data:`SPEC_FIELDS` (used as
        the cache key, :class:`stockcast.forecast.cache.CachedForecaster`)."""
        out: dict[str, Any] = {"class": f"{type(self).__module__}.{type(self).__qualname__}"}
        for f in sorted(fields(self), key=lambda f: f.name):
            if f.name in self.EXECUTION_FIELDS:
                continue
            value = getattr(self, f.name)
            if f.name == "spec":
                value = None if value is None else {k: getattr(value, k) for k in SPEC_FIELDS}
            out[f.name] = value
        return out
