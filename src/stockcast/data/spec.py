"""Dataset specification: how one source table maps onto stockcast's canonical schema.

A dataset is onboarded by writing ``conf/data/<name>.yaml`` (instantiated into
:class:`DatasetSpec` by Hydra). The spec names the source file, the source columns that
play the canonical roles ``item_id``, ``location_id``, ``period`` and ``demand``, and the
role of every covariate (static / known-future / unknown). No code change is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stockcast import PROJECT_ROOT

#: Canonical key and target columns every dataset is mapped onto.
CANONICAL = ("item_id", "location_id", "period", "demand")
GROUP_IDS = ["item_id", "location_id"]
TIME_IDX = "time_idx"

#: Calendar features that can be derived from ``period`` (all known-future categoricals).
CALENDAR_FEATURES = {
    "month": lambda p: p.dt.month.astype(str),
    "quarter": lambda p: p.dt.quarter.astype(str),
    "week_of_year": lambda p: p.dt.isocalendar().week.astype(int).astype(str),
    "day_of_week": lambda p: p.dt.dayofweek.astype(str),
}

ROLE_KEYS = (
    "static_categoricals",
    "static_reals",
    "known_categoricals",
    "known_reals",
    "unknown_categoricals",
    "unknown_reals",
)


@dataclass
class DatasetSpec:
    """Where a dataset lives and how its columns map onto the canonical schema.

    Args:
        name: Short dataset name (used in MLflow tags and run names).
        source: ``path`` (relative paths resolve against the project root), ``format``
            (``parquet`` or ``csv``), optional ``read_options`` passed to the pandas reader
            and ``date_format`` (strftime pattern; ``None`` lets pandas infer).
        freq: pandas offset alias of the period grid (``MS`` monthly, ``W-MON`` weekly, ``D``).
        columns: canonical name -> source column for ``item_id``, ``location_id``,
            ``period`` and ``demand``. ``location_id`` may be omitted for single-location data.
        static_categoricals: Source columns constant per series, categorical.
        static_reals: Source columns constant per series, numeric.
        known_categoricals: Time-varying categoricals known for future periods (events).
        known_reals: Time-varying reals known for future periods (planned price, promotions,
            weather forecasts).
        unknown_categoricals: Time-varying categoricals only observed in the past.
        unknown_reals: Time-varying reals only observed in the past (market indicators,
            sentiment, realised sales). The target is always an unknown real.
        calendar: Calendar features derived from ``period`` (see ``CALENDAR_FEATURES``).
        gaps: What to do with missing periods inside a series: ``reject`` (error),
            ``zero`` (demand 0, covariates forward-filled) or ``ffill`` (all forward-filled).
        nan_policy: Per-column policy for missing covariate values: ``reject``, ``zero``,
            ``ffill`` (within series, then backfill) or ``mean`` (series mean). Key
            ``default`` applies to columns not listed. Missing demand is never imputed
            silently: it follows ``gaps``.
        split: ``test_periods`` (last periods, never used for training or selection) and
            ``val_periods`` (the periods before them, used for early stopping).
        window: ``max_encoder_length``, ``min_encoder_length`` and ``max_prediction_length``.
        dataset: Extra keyword arguments for ``TimeSeriesDataSet`` (normalizer, scales...).
    """

    name: str
    source: dict[str, Any]
    freq: str
    columns: dict[str, str]
    static_categoricals: list[str] = field(default_factory=list)
    static_reals: list[str] = field(default_factory=list)
    known_categoricals: list[str] = field(default_factory=list)
    known_reals: list[str] = field(default_factory=list)
    unknown_categoricals: list[str] = field(default_factory=list)
    unknown_reals: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    gaps: str = "reject"
    nan_policy: dict[str, str] = field(default_factory=lambda: {"default": "reject"})
    split: dict[str, int] = field(default_factory=lambda: {"test_periods": 6, "val_periods": 6})
    window: dict[str, int] = field(
        default_factory=lambda: {
            "max_encoder_length": 24,
            "min_encoder_length": 12,
            "max_prediction_length": 6,
        }
    )
    dataset: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("item_id", "period", "demand"):
            if key not in self.columns:
                raise ValueError(
                    f"data config '{self.name}': columns.{key} is required (maps a source "
                    f"column onto the canonical '{key}')"
                )
        unknown_cal = set(self.calendar) - set(CALENDAR_FEATURES)
        if unknown_cal:
            raise ValueError(
                f"data config '{self.name}': unknown calendar feature(s) {sorted(unknown_cal)}; "
                f"choose from {sorted(CALENDAR_FEATURES)}"
            )
        if self.gaps not in ("reject", "zero", "ffill"):
            raise ValueError(
                f"data config '{self.name}': gaps must be reject, zero or ffill, not {self.gaps!r}"
            )
        for col, policy in self.nan_policy.items():
            if policy not in ("reject", "zero", "ffill", "mean"):
                raise ValueError(
                    f"data config '{self.name}': nan_policy.{col} must be reject, zero, ffill "
                    f"or mean, not {policy!r}"
                )

    # ------------------------------------------------------------------ roles
    @property
    def covariates(self) -> list[str]:
        """All covariate columns, in role order, without duplicates."""
        out: list[str] = []
        for key in ROLE_KEYS:
            for c in getattr(self, key):
                if c not in out:
                    out.append(c)
        return out

    @property
    def categorical_covariates(self) -> list[str]:
        return [*self.static_categoricals, *self.known_categoricals, *self.unknown_categoricals]

    @property
    def known_future_columns(self) -> list[str]:
        """Covariates a caller must supply for future periods."""
        return [*self.known_categoricals, *self.known_reals]

    @property
    def source_key_columns(self) -> list[str]:
        return [self.columns[k] for k in CANONICAL if k in self.columns]

    @property
    def required_source_columns(self) -> list[str]:
        """Source columns that must be present in a raw table."""
        return [*self.source_key_columns, *self.covariates]

    def nan_rule(self, column: str) -> str:
        return self.nan_policy.get(column, self.nan_policy.get("default", "reject"))

    def source_path(self) -> Path:
        path = Path(self.source["path"])
        return path if path.is_absolute() else PROJECT_ROOT / path

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored with models so prediction reuses the exact mapping)."""
        from dataclasses import asdict

        return asdict(self)


def read_source(spec: DatasetSpec) -> pd.DataFrame:
    """Read the raw source table named by ``spec.source`` (no mapping, no checks)."""
    path = spec.source_path()
    if not path.exists():
        raise FileNotFoundError(f"data config '{spec.name}': source file {path} does not exist")
    fmt = spec.source.get("format") or path.suffix.lstrip(".")
    options = dict(spec.source.get("read_options") or {})
    if fmt == "parquet":
        return pd.read_parquet(path, **options)
    if fmt == "csv":
        return pd.read_csv(path, **options)
    raise ValueError(f"data config '{spec.name}': unsupported source format {fmt!r} (parquet, csv)")
