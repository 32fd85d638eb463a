"""The synthetic generator's true demand distribution as a forecaster.

The generator (:mod:`stockcast.data.synthetic`) writes ``truth_demand.parquet``: for every
item x location x period, history and horizon, the exact quantiles of the distribution the
demand was drawn from (``q0.02`` ... ``q0.98``). :class:`TruthForecaster` serves them
through the forecaster protocol (:mod:`stockcast.forecast.protocol`): the best any
forecaster can do on that data, used as a bound by the backtest (the ``true_distribution``
policy), and as a reference by evaluation and the drift demo. It reads nothing of the
panel but its keys and periods: the truth does not depend on what was observed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.schema import (
    FORECAST_ORIGIN,
    GROUP_IDS,
    HORIZON,
    PERIOD,
    TIME_IDX,
    quantile_column,
    quantile_columns,
    quantile_levels,
)

#: File of the generator's true quantiles in a generated dataset's folder.
TRUTH_FILE = "truth_demand.parquet"


class TruthUnavailable(LookupError):
    """The dataset has no generator truth (it was not generated)."""


class TruthForecaster:
    """The generator's true quantiles (``truth_demand``) as a protocol forecaster.

    Args:
        truth: Table with ``item_id``, ``location_id``, ``period`` and ``q<level>`` columns.
        name: Forecaster name (the ``model`` of a cross-validation table).

    Raises:
        ValueError: The table lacks its key or quantile columns.
    """

    def __init__(self, truth: pd.DataFrame, name: str = "true_distribution") -> None:
        missing = [c for c in (*GROUP_IDS, PERIOD) if c not in truth.columns]
        cols = quantile_columns(truth)
        if missing or not cols:
            raise ValueError(f"truth table: missing column(s) {missing or 'q<level>'}")
        self.name = name
        self.levels = quantile_levels(truth)
        self.truth = truth[[*GROUP_IDS, PERIOD, *cols]].assign(
            item_id=truth["item_id"].astype(str), location_id=truth["location_id"].astype(str),
            period=pd.to_datetime(truth[PERIOD]))

    @classmethod
    def from_spec(cls, spec: DatasetSpec, name: str = "true_distribution") -> TruthForecaster:
        """The truth of a generated dataset (generated first if needed).

        Raises:
            TruthUnavailable: The dataset has no generator (``source.generator``).
        """
        if spec.generator is None:
            raise TruthUnavailable(f"dataset {spec.name} has no generator truth")
        from stockcast.data.io import generated_dir, materialize

        materialize(spec)
        return cls.from_dir(generated_dir(spec), name)

    @classmethod
    def from_dir(cls, folder: str | Path, name: str = "true_distribution") -> TruthForecaster:
        """The truth in a generated dataset's folder (``truth_demand.parquet``)."""
        path = Path(folder) / TRUTH_FILE
        if not path.exists():
            raise TruthUnavailable(f"no generator truth at {path}")
        return cls(pd.read_parquet(path), name)

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """True quantiles of the panel's rows ``origin + 1 .. origin + horizon`` of each
        origin (:class:`~stockcast.forecast.protocol.Forecaster`; the horizon stops at the
        end of the panel).

        Raises:
            ValueError: Bad horizon, no origin, or ``quantiles`` asks for a level the truth
                table does not hold.
        """
        levels = self.levels if quantiles is None else sorted({float(q) for q in quantiles})
        absent = sorted(set(levels) - set(self.levels))
        if absent:
            raise ValueError(f"{self.name}: the truth holds quantiles {self.levels}, not {absent}")
        cols = [quantile_column(q) for q in levels]
        rows, _ = _origin_rows(self.name, panel, origins, horizon)
        truth = self.truth[self.truth[PERIOD].isin(rows[PERIOD].unique())]
        out = rows.merge(truth[[*GROUP_IDS, PERIOD, *cols]], on=[*GROUP_IDS, PERIOD])
        return _forecast_table(out, cols)


def _origin_rows(name: str, panel: pd.DataFrame, origins: Sequence[int], horizon: int
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """The panel's rows ``origin + 1 .. origin + horizon`` of every origin (keys as text,
    ``period``, ``time_idx``, ``horizon``, ``forecast_origin``), and the date of each
    ``time_idx``.

    Raises:
        ValueError: A horizon below 1 or no origin (named after forecaster ``name``).
    """
    if int(horizon) < 1:
        raise ValueError(f"{name}: horizon must be >= 1, got {horizon}")
    if not len(origins):
        raise ValueError(f"{name}: no origin given")
    H = int(horizon)
    first, last = min(int(o) for o in origins), max(int(o) for o in origins) + H
    needed = panel[(panel[TIME_IDX] > first) & (panel[TIME_IDX] <= last)]
    rows = needed[[*GROUP_IDS, PERIOD, TIME_IDX]].assign(
        item_id=needed["item_id"].astype(str), location_id=needed["location_id"].astype(str),
        period=pd.to_datetime(needed[PERIOD]))
    date_of = panel.drop_duplicates(TIME_IDX).set_index(TIME_IDX)[PERIOD].pipe(pd.to_datetime)
    tables = []
    for origin in origins:
        o = int(origin)
        t = rows[(rows[TIME_IDX] > o) & (rows[TIME_IDX] <= o + H)].copy()
        t[HORIZON] = (t[TIME_IDX] - o).astype(int)
        t[FORECAST_ORIGIN] = date_of.get(o, pd.NaT)
        tables.append(t)
    return pd.concat(tables, ignore_index=True), date_of


def _forecast_table(rows: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Rows of :func:`_origin_rows` with quantile ``cols`` as a cross-validation table."""
    out = rows[[*GROUP_IDS, PERIOD, FORECAST_ORIGIN, HORIZON, *cols]]
    return out.sort_values([FORECAST_ORIGIN, *GROUP_IDS, HORIZON], ignore_index=True)


class ConditionalTruthForecaster:
    """The generator's demand law given only what is known at each origin: the attainable
    bound (:func:`~stockcast.data.synthetic.truth.conditional_quantiles`).

    :class:`TruthForecaster` serves the true quantiles, which condition on every driver as
    it was realised, including the ones no forecaster can know at the origin (the sentiment
    index beyond its lead, the market index, the true temperature). This one integrates
    those over their law given the data up to the origin, so its loss is what a forecaster
    that knew the generator's equations could reach: the fair reference for "how close to
    the limit", where the clairvoyant truth overstates the limit more the longer the horizon.

    Args:
        world: The generator's drawn world (:func:`~stockcast.data.synthetic.generator.world_of`).
        name: Forecaster name (the ``model`` of a cross-validation table).
        levels: Quantile levels served when ``forecast`` is not given any.
    """

    def __init__(self, world, name: str = "attainable_quantiles",
                 levels: Sequence[float] | None = None) -> None:
        from stockcast.data.synthetic.truth import QUANTILES

        self.world = world
        self.name = name
        self.levels = sorted(float(q) for q in (levels or QUANTILES))
        n_stores = len(world.store_ids)
        self._series = {(str(world.item_ids[i]), str(world.store_ids[j])): i * n_stores + j
                        for i in range(len(world.item_ids)) for j in range(n_stores)}

    @classmethod
    def from_spec(cls, spec: DatasetSpec, name: str = "attainable_quantiles") -> ConditionalTruthForecaster:
        """The attainable bound of a dataset drawn by :func:`stockcast.data.synthetic.generate`.

        Raises:
            TruthUnavailable: The dataset has no generator, or another generator.
        """
        if spec.generator is None:
            raise TruthUnavailable(f"dataset {spec.name} has no generator truth")
        from stockcast.data.synthetic.generator import world_of

        try:
            world = world_of(spec.generator)
        except ValueError as err:
            raise TruthUnavailable(f"dataset {spec.name}: {err}") from err
        return cls(world, name)

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Attainable quantiles of the panel's rows ``origin + 1 .. origin + horizon`` of each
        origin (:class:`~stockcast.forecast.protocol.Forecaster`; the horizon stops at the end
        of the panel).

        Raises:
            ValueError: Bad horizon, no origin, or panel periods or series the generator did
                not draw (named).
        """
        from stockcast.data.synthetic.truth import conditional_quantiles

        levels = self.levels if quantiles is None else sorted({float(q) for q in quantiles})
        rows, date_of = _origin_rows(self.name, panel, origins, horizon)
        dates = pd.DatetimeIndex(self.world.dates)
        missing = sorted(set(date_of) - set(dates))
        if missing:
            raise ValueError(f"{self.name}: panel periods not drawn by the generator: "
                             f"{[str(d.date()) for d in missing[:5]]}")
        keys = panel[list(GROUP_IDS)].astype(str).drop_duplicates()
        unknown = [k for k in keys.itertuples(index=False, name=None) if k not in self._series]
        if unknown:
            raise ValueError(f"{self.name}: series not drawn by the generator: {unknown[:5]}")
        at = [int(dates.get_loc(date_of[int(o)])) for o in origins]
        q = conditional_quantiles(self.world, at, int(horizon), levels)  # (S, o, h, level)
        which = {int(o): k for k, o in enumerate(origins)}
        series = [self._series[k] for k in zip(rows["item_id"], rows["location_id"], strict=True)]
        origin = (rows[TIME_IDX] - rows[HORIZON]).map(which).to_numpy()
        cols = [quantile_column(lv) for lv in levels]
        rows[cols] = q[np.asarray(series, dtype=int), origin, rows[HORIZON].to_numpy() - 1, :]
        return _forecast_table(rows, cols)
