"""A trained TFT with what it needs to forecast new data: the model behind every registered version.

:class:`ForecastBundle` is a :class:`~stockcast.forecast.protocol.Forecaster`
(``forecast(panel, origins, horizon, quantiles)``, calibrated quantiles) and answers raw
source-schema tables for the MLflow pyfunc (:meth:`ForecastBundle.predict`, see
:mod:`stockcast.forecast.pyfunc`): each series' history (demand observed) followed by its
future periods (demand missing, known future covariates filled in).

The checkpoint holds pickled normalizers and is loaded with ``weights_only=False``: load only
models you produced.
"""

from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

from stockcast.data.panel import to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.data.validation import key_strings, parse_periods, raise_if
from stockcast.errors import Issue
from stockcast.forecast.calibration import QuantileCalibration
from stockcast.forecast.predict import raw_predictions, to_forecast_table
from stockcast.schema import GROUP_IDS, TIME_IDX, non_crossing, quantile_column

INPUT_TABLE = "model_input"


class ForecastBundle:
    """A trained TFT with everything needed to rebuild its datasets on new data.

    ``model`` is one TFT or several (an **ensemble**: seeds or snapshots of the same
    architecture on the same dataset parameters), whose quantiles are averaged level by level
    and made non-crossing; the ensemble is then one model like any other (calibrated, served,
    registered). ``calibration`` (optional, see :mod:`stockcast.forecast.calibration`) is
    applied to every forecast; bundles saved before calibration existed load with none.
    """

    def __init__(
        self,
        model: TemporalFusionTransformer | Sequence[TemporalFusionTransformer],
        dataset_parameters: dict[str, Any],
        spec: DatasetSpec,
        calendar_start: pd.Timestamp,
        series: list[tuple[str, str]] | None = None,
        calibration: QuantileCalibration | None = None,
        name: str = "tft",
    ) -> None:
        self.name = name
        members = list(model) if isinstance(model, Sequence) else [model]
        if not members:
            raise ValueError("ForecastBundle: at least one model")
        self.members = [m.eval() for m in members]
        #: The first member: its interpretation, hyper-parameters and quantile levels.
        self.model = self.members[0]
        self.series = [tuple(s) for s in series] if series is not None else None
        self.dataset_parameters = dataset_parameters
        self.spec = spec
        self.calendar_start = pd.Timestamp(calendar_start)
        self.calibration = calibration

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path, checkpoint: Path | Sequence[Path]) -> dict[str, str]:
        """Write the artifacts a pyfunc needs; returns name -> path for ``log_model``.

        ``checkpoint``: one Lightning checkpoint per member, in member order.
        """
        checkpoints = [Path(c) for c in checkpoint] if isinstance(checkpoint, Sequence) and not isinstance(checkpoint, str) else [Path(checkpoint)]
        if len(checkpoints) != len(self.members):
            raise ValueError(f"{self.name}: {len(self.members)} members but {len(checkpoints)} checkpoints")
        folder.mkdir(parents=True, exist_ok=True)
        params = folder / "dataset_parameters.pkl"
        params.write_bytes(pickle.dumps(self.dataset_parameters))
        meta = folder / "meta.json"
        meta.write_text(
            json.dumps(
                {
                    "spec": self.spec.to_dict(),
                    "calendar_start": str(self.calendar_start.date()),
                    "series": self.series,
                    "calibration": self.calibration.to_dict() if self.calibration else None,
                },
                indent=2,
                default=str,
            )
        )
        paths = {"checkpoint": str(checkpoints[0])}
        paths.update({f"checkpoint_{i}": str(c) for i, c in enumerate(checkpoints) if i > 0})
        return {**paths, "dataset_parameters": str(params), "meta": str(meta)}

    @classmethod
    def load(cls, artifacts: dict[str, str]) -> ForecastBundle:
        extra = sorted((k for k in artifacts if k.startswith("checkpoint_")), key=lambda k: int(k.split("_")[1]))
        model = [load_checkpoint(artifacts["checkpoint"]), *(load_checkpoint(artifacts[k]) for k in extra)]
        params = pickle.loads(Path(artifacts["dataset_parameters"]).read_bytes())
        meta = json.loads(Path(artifacts["meta"]).read_text())
        calibration = meta.get("calibration")  # absent in models saved before calibration
        return cls(
            model,
            params,
            saved_spec(meta["spec"]),
            pd.Timestamp(meta["calendar_start"]),
            meta.get("series"),
            QuantileCalibration.from_dict(calibration) if calibration else None,
        )

    # ------------------------------------------------------------------ prediction
    @property
    def known_items(self) -> set[str]:
        return set(self.dataset_parameters["categorical_encoders"]["item_id"].classes_)

    @property
    def known_locations(self) -> set[str]:
        return set(self.dataset_parameters["categorical_encoders"]["location_id"].classes_)

    def prepare(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Validate a raw-schema input and return the canonical panel and the future length."""
        spec = self.spec
        issues: list[Issue] = []
        if not isinstance(raw, pd.DataFrame):
            raise TypeError(f"{INPUT_TABLE}: expected a pandas DataFrame, got {type(raw).__name__}")
        missing = [c for c in spec.required_source_columns if c not in raw.columns]
        if missing:
            raise_if(
                [
                    Issue(INPUT_TABLE, c, "missing_column", "required column is absent")
                    for c in missing
                ]
            )
        raw = raw.reset_index(drop=True).copy()
        # unknown (past-only) covariates are not needed in future rows: carry the last value
        # (in period order: the input's rows may come in any order)
        future_rows = raw[spec.columns["demand"]].isna()
        if future_rows.any() and spec.unknown_reals:
            keys = [spec.columns[k] for k in ("item_id", "location_id") if k in spec.columns]
            ordered = _by_series_and_period(raw, spec)
            filled = ordered.groupby(keys, sort=False, observed=True)[spec.unknown_reals].ffill()
            raw.loc[future_rows, spec.unknown_reals] = filled.loc[future_rows[future_rows].index]
        panel = to_canonical(
            raw, spec, table=INPUT_TABLE, allow_future=True, calendar_start=self.calendar_start
        )
        for key, known, col in (
            ("item_id", self.known_items, spec.columns["item_id"]),
            ("location_id", self.known_locations, spec.columns.get("location_id", "location_id")),
        ):
            unknown = sorted(set(panel[key]) - known)
            if unknown:
                rows = panel.index[panel[key].isin(unknown)].tolist()
                issues.append(
                    Issue(
                        INPUT_TABLE,
                        col,
                        "known_category",
                        f"{key} not seen in training: {', '.join(unknown[:10])}"
                        + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""),
                        rows,
                    )
                )
        raise_if(issues)

        future = panel["demand"].isna()
        n_future = panel[future].groupby(GROUP_IDS).size()
        n_hist = panel[~future].groupby(GROUP_IDS).size()
        series = n_hist.index.union(n_future.index)
        n_future = n_future.reindex(series, fill_value=0)
        n_hist = n_hist.reindex(series, fill_value=0)
        max_h = int(self.dataset_parameters["max_prediction_length"])
        min_enc = int(self.dataset_parameters["min_encoder_length"])
        for bad, rule, msg in (
            (n_future[n_future == 0], "future_rows", "no future rows (rows with missing demand after the history)"),
            (n_future[n_future > max_h], "horizon", f"more future rows than the model's horizon ({max_h})"),
            (n_hist[n_hist < min_enc], "enough_history", f"fewer than min_encoder_length={min_enc} observed periods"),
        ):
            if len(bad):
                names = [f"{i}@{loc} ({v})" for (i, loc), v in bad.items()]
                issues.append(
                    Issue(INPUT_TABLE, spec.columns["demand"], rule, f"{msg}: {', '.join(names[:10])}")
                )
        raise_if(issues)
        lengths = n_future.unique()
        if len(lengths) > 1:
            raise_if(
                [
                    Issue(
                        INPUT_TABLE,
                        spec.columns["period"],
                        "same_horizon",
                        f"all series must ask for the same number of future periods, got {sorted(lengths.tolist())}",
                    )
                ]
            )
        return panel, int(lengths[0])

    def predict(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Forecast the future rows of a raw source-schema table (module docstring)."""
        panel, horizon = self.prepare(raw)
        return self.forecast_last(panel, horizon)

    @property
    def quantiles(self) -> list[float]:
        """Quantile levels the model forecasts."""
        return [float(q) for q in self.model.loss.quantiles]

    @property
    def max_horizon(self) -> int:
        return int(self.dataset_parameters["max_prediction_length"])

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
        *,
        calibrated: bool = True,
    ) -> pd.DataFrame:
        """The :class:`~stockcast.forecast.protocol.Forecaster` protocol.

        From each origin the model sees the panel as known then
        (:func:`stockcast.forecast.scenarios.as_of`); the horizon is truncated at the end of
        the panel and at the model's ``max_prediction_length``. Series that do not reach the
        end of an origin's horizon are not forecast from it.

        Raises:
            ValueError: An origin leaves no period to forecast, or ``quantiles`` asks for a
                level the model does not forecast.
        """
        levels = self._levels(quantiles)
        end = int(panel[TIME_IDX].max())
        origins = sorted({int(o) for o in origins})
        if not origins:
            raise ValueError(f"{self.name}: no origin given")
        steps = {o: min(int(horizon), self.max_horizon, end - o) for o in origins}
        short = [o for o, h in steps.items() if h < 1]
        if short:
            raise ValueError(
                f"{self.name}: origin time_idx {short[0]} leaves no period to forecast "
                f"(panel ends at time_idx {end})"
            )
        context = self.context_periods(calibrated)
        # one dataset per horizon length holds every origin's window of that length: the
        # encoder sees the demand up to the origin, the decoder only known covariates (its
        # target is never an input); origins whose horizon the panel's end truncates form
        # their own group, so every window is built exactly as forecasting it alone would be
        tables = []
        for h in sorted(set(steps.values())):
            group = {o: v for o, v in steps.items() if v == h}
            # only the periods these windows read (the longest encoder plus lags before the
            # first origin): a forecast's cost stays flat in the length of the history
            t = panel[TIME_IDX]
            data = panel[(t > min(group) - context) & (t <= max(group) + h)]
            dataset = TimeSeriesDataSet.from_parameters(
                self.dataset_parameters,
                data.assign(demand=data["demand"].fillna(0.0)),
                predict=False,
                stop_randomization=True,
                min_prediction_idx=min(group) + 1,
                max_prediction_length=h,
                min_prediction_length=h,
            )
            try:
                dataset = dataset.filter(functools.partial(_origin_windows, steps=group))
            except ValueError as err:  # pytorch-forecasting: "no sub-sequences left"
                raise ValueError(
                    f"{self.name}: no series has enough history before origins {sorted(group)} "
                    f"(min_encoder_length={self.dataset_parameters['min_encoder_length']}) and "
                    "reaches the end of their horizon"
                ) from err
            tables.append(self._predict(dataset, calibrated=calibrated, history=panel)[0])
        table = pd.concat(tables, ignore_index=True)
        drop = [quantile_column(q) for q in self.quantiles if q not in levels]
        return table.drop(columns=drop).sort_values(["forecast_origin", *GROUP_IDS, "horizon"], ignore_index=True)

    def _predict(self, dataset: TimeSeriesDataSet, *, calibrated: bool, history: pd.DataFrame):
        """Forecast table of every member on ``dataset``, averaged per quantile level, and the
        first member's raw ``Prediction``."""
        tables, first = [], None
        for member in self.members:
            pred = raw_predictions(member, dataset)
            first = pred if first is None else first
            tables.append(to_forecast_table(member, pred, calendar_start=self.calendar_start, freq=self.spec.freq))
        table = tables[0]
        if len(tables) > 1:
            cols = [quantile_column(q) for q in self.quantiles]
            stacked = np.stack([t[cols].to_numpy(float) for t in tables])
            table = table.copy()
            table[cols] = non_crossing(stacked.mean(axis=0))
        table = table.drop(columns=[TIME_IDX]).reset_index(drop=True)
        if calibrated and self.calibration is not None:
            table = self.calibration.apply(table, history)
        return table, first

    def context_periods(self, calibrated: bool = True) -> int:
        """Periods up to an origin that a forecast from it reads: the encoder's
        (``max_encoder_length`` plus the longest lag) and the calibration's scale window."""
        lags = self.dataset_parameters.get("lags") or {}
        longest = max((max(v) for v in lags.values() if len(v)), default=0)
        periods = int(self.dataset_parameters["max_encoder_length"]) + int(longest)
        if calibrated and self.calibration is not None and self.calibration.scale == "encoder_mean":
            periods = max(periods, int(self.calibration.window))
        return periods

    def _levels(self, quantiles: Sequence[float] | None) -> list[float]:
        if quantiles is None:
            return self.quantiles
        missing = sorted({float(q) for q in quantiles} - set(self.quantiles))
        if missing:
            raise ValueError(
                f"{self.name}: the model forecasts quantiles {self.quantiles}, not {missing}"
            )
        return sorted({float(q) for q in quantiles})

    def renamed(self, name: str) -> ForecastBundle:
        """The same model under another forecaster name (e.g. ``champion`` beside ``tft``)."""
        return ForecastBundle(
            self.members, self.dataset_parameters, self.spec, self.calendar_start, self.series,
            self.calibration, name=name,
        )

    def uncalibrated(self) -> ForecastBundle:
        """The same model serving its own quantiles (no calibration), named ``<name>_uncalibrated``."""
        return ForecastBundle(
            self.members, self.dataset_parameters, self.spec, self.calendar_start, self.series,
            None, name=f"{self.name}_uncalibrated",
        )

    def forecast_last(
        self, panel: pd.DataFrame, horizon: int, *, return_raw: bool = False, calibrated: bool = True
    ):
        """Forecast the last ``horizon`` periods of every series of a canonical panel.

        Those periods' ``demand`` is never read (it may be NaN); only their known-future
        covariates are. With ``return_raw`` the raw ``Prediction`` (for interpretation) comes
        back too. The quantiles are calibrated when the bundle has a calibration, unless
        ``calibrated`` is false (the model's own quantiles; the raw ``Prediction`` is always
        the model's).
        """
        dataset = TimeSeriesDataSet.from_parameters(
            self.dataset_parameters,
            panel.assign(demand=panel["demand"].fillna(0.0)),
            predict=True,
            stop_randomization=True,
            max_prediction_length=horizon,
            min_prediction_length=horizon,
        )
        table, pred = self._predict(dataset, calibrated=calibrated, history=panel)
        return (table, pred) if return_raw else table


def _origin_windows(index: pd.DataFrame, steps: dict[int, int]) -> np.ndarray:
    """Which windows of a dataset are the forecasts from ``steps`` (origin -> horizon): the
    decoder starts right after an origin and spans its full horizon, and of those windows the
    one with the longest encoder (what the model sees when forecasting from that origin)."""
    first = index["time_idx_first_prediction"]
    want = (first - 1).map(steps)
    decoder = index["time_idx_last"] - first + 1
    encoder = first - index["time_idx_first"]
    ok = want.notna() & (decoder == want)
    longest = encoder.where(ok).groupby([index[g] for g in GROUP_IDS] + [first]).transform("max")
    return (ok & (encoder == longest)).to_numpy()


def _by_series_and_period(raw: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """``raw`` sorted by its series keys, then by the parsed period (stable)."""
    keys = [spec.columns[k] for k in ("item_id", "location_id") if k in spec.columns]
    when = parse_periods(raw[spec.columns["period"]], spec.source.get("date_format"))
    order = raw[keys].assign(_period=when.to_numpy())
    order = order.sort_values([*keys, "_period"], kind="stable")
    return raw.loc[order.index]


def saved_spec(saved: dict[str, Any]) -> DatasetSpec:
    """The :class:`DatasetSpec` a bundle was saved with.

    Specs saved before ``plausibility`` existed load with its rules off: the model was
    trained (and its data validated) without them, and reloading must not reject the data
    it was trained on.
    """
    spec = DatasetSpec(**saved)
    if "plausibility" not in saved:
        spec.plausibility = {col: "off" for col in spec.value_rules()}
    return spec


def load_checkpoint(path: str | Path) -> TemporalFusionTransformer:
    """Load a TFT checkpoint on CPU (pickled normalizers: only load checkpoints you trust)."""
    return TemporalFusionTransformer.load_from_checkpoint(
        str(path), map_location=torch.device("cpu"), weights_only=False
    )


def example_input(
    raw: pd.DataFrame,
    spec: DatasetSpec,
    n_series: int = 2,
    n_history: int | None = None,
    horizon: int = 1,
    series: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """A raw-schema input example: a few series' history plus ``horizon`` future rows.

    Rows are ordered by series and by their parsed period (``source.date_format``), not by
    the raw period text, so day-first dates give each series' latest periods.

    Args:
        raw: Source-schema table (e.g. :func:`stockcast.data.io.read_source`).
        spec: The dataset specification.
        n_series: Series in the example (the first by key).
        n_history: History rows per series (``None``: all).
        horizon: Trailing rows per series whose demand is blanked (the future).
        series: Restrict to these ``(item_id, location_id)`` pairs (canonical strings,
            e.g. the series a model was trained on); ``None``: any.
    """
    keys = [spec.columns[k] for k in ("item_id", "location_id") if k in spec.columns]
    raw = _by_series_and_period(raw, spec)
    if series is not None:
        have = pd.DataFrame(
            {k: key_strings(raw[spec.columns[k]]) if k in spec.columns else "all" for k in GROUP_IDS},
            index=raw.index,
        )
        wanted = pd.MultiIndex.from_tuples([tuple(map(str, s)) for s in series])
        raw = raw[pd.MultiIndex.from_frame(have).isin(wanted)]
    groups = raw.groupby(keys, sort=False, observed=True)
    chosen = list(groups.groups)[:n_series]
    parts = []
    for key in chosen:
        g = groups.get_group(key if isinstance(key, tuple) else (key,))
        g = g.tail((n_history or len(g)) + horizon).copy()
        g.loc[g.index[-horizon:], spec.columns["demand"]] = np.nan
        parts.append(g)
    out = pd.concat(parts).reset_index(drop=True)
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str)
    return out
