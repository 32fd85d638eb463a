"""Canonical panel -> pytorch-forecasting ``TimeSeriesDataSet`` objects and time splits.

The split is by time, never by series: ``train`` ends before the validation window,
``val`` (early stopping, checkpoint selection) ends before the test window, and ``test``
(the last ``split.test_periods`` periods) is only ever scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pytorch_forecasting import TimeSeriesDataSet

from stockcast.data.objects import build
from stockcast.data.spec import DatasetSpec
from stockcast.errors import DataValidationError, Issue
from stockcast.forecast.normalizers import indexed, target_scale_scalers
from stockcast.schema import GROUP_IDS, TIME_IDX


@dataclass(frozen=True)
class TimeSplit:
    """Integer ``time_idx`` boundaries of the three windows (inclusive)."""

    train_end: int
    val_start: int
    val_end: int
    test_start: int
    test_end: int

    @classmethod
    def from_panel(cls, panel: pd.DataFrame, spec: DatasetSpec) -> TimeSplit:
        last = int(panel[TIME_IDX].max())
        test_n = int(spec.split.get("test_periods", 0))
        val_n = int(spec.split.get("val_periods", 0))
        if val_n < 1:
            raise ValueError(f"data config '{spec.name}': split.val_periods must be >= 1")
        test_start = last - test_n + 1
        val_start = test_start - val_n
        split = cls(val_start - 1, val_start, test_start - 1, test_start, last)
        need = int(spec.window["min_encoder_length"]) + int(spec.window["max_prediction_length"])
        if split.train_end + 1 < need:
            raise DataValidationError(
                [
                    Issue(
                        "demand",
                        "period",
                        "enough_history",
                        f"only {split.train_end + 1} periods before the validation window; "
                        f"training needs at least min_encoder_length + max_prediction_length = {need}",
                    )
                ]
            )
        return split

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def dataset_kwargs(spec: DatasetSpec) -> dict[str, Any]:
    """Keyword arguments for ``TimeSeriesDataSet`` derived from the spec's roles.

    ``spec.dataset`` adds to them; entries with a ``_target_`` (the target normalizer) are
    built by :func:`stockcast.data.objects.build`, a ``GroupNormalizer`` then taken as its
    :class:`~stockcast.forecast.normalizers.IndexedGroupNormalizer` (same results, faster
    data loading); the target-scale inputs are standardised by
    :class:`~stockcast.forecast.normalizers.ArrayStandardScaler`. ``add_time_idx`` (ours,
    default true) feeds the absolute ``time_idx`` as a known real; false leaves only the
    relative position (``add_relative_time_idx``), so forecasts after the training period
    do not read a time index beyond the range the scaler was fitted on.
    """
    extra = build(spec.dataset, f"data config '{spec.name}': dataset") if spec.dataset else {}
    absolute_time = bool(extra.pop("add_time_idx", True))
    if "target_normalizer" in extra:  # same normalizer, per-sample lookups from a dict
        extra["target_normalizer"] = indexed(extra["target_normalizer"])
    if extra.get("add_target_scales"):  # same scaling of the target scales, without sklearn's checks
        extra["scalers"] = {**target_scale_scalers("demand"), **(extra.get("scalers") or {})}
    return dict(
        time_idx=TIME_IDX,
        target="demand",
        group_ids=list(GROUP_IDS),
        max_encoder_length=int(spec.window["max_encoder_length"]),
        min_encoder_length=int(spec.window["min_encoder_length"]),
        max_prediction_length=int(spec.window["max_prediction_length"]),
        min_prediction_length=int(spec.window.get("min_prediction_length", 1)),
        static_categoricals=[*GROUP_IDS, *spec.static_categoricals],
        static_reals=list(spec.static_reals),
        time_varying_known_categoricals=[*spec.known_categoricals, *spec.calendar],
        time_varying_known_reals=[*([TIME_IDX] if absolute_time else []), *spec.known_reals],
        time_varying_unknown_categoricals=list(spec.unknown_categoricals),
        time_varying_unknown_reals=["demand", *spec.unknown_reals],
        allow_missing_timesteps=False,
        **extra,
    )


def training_dataset(panel: pd.DataFrame, spec: DatasetSpec, split: TimeSplit) -> TimeSeriesDataSet:
    """Fit encoders and scalers once, on the training window only."""
    train = panel[panel[TIME_IDX] <= split.train_end]
    return TimeSeriesDataSet(train, **dataset_kwargs(spec))


def window_dataset(
    training: TimeSeriesDataSet, panel: pd.DataFrame, start: int, end: int
) -> TimeSeriesDataSet:
    """Samples whose whole decoder lies in ``[start, end]``; encoders see everything before.

    With a window as long as the horizon this is one forecast origin per series (the
    tutorial split); longer windows give rolling origins.
    """
    data = panel[panel[TIME_IDX] <= end]
    return TimeSeriesDataSet.from_dataset(
        training,
        data,
        min_prediction_idx=start,
        min_prediction_length=training.max_prediction_length,
        stop_randomization=True,
        predict=False,
    )
