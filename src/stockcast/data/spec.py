"""Dataset specification: how source tables map onto stockcast's canonical schema.

A dataset is onboarded by writing ``conf/data/<name>.yaml`` (instantiated into
:class:`DatasetSpec` by Hydra). The spec names the demand table, the source columns that
play the canonical roles ``item_id``, ``location_id``, ``period`` and ``demand``, optional
covariate tables joined onto it (prices, weather, sentiment, events, item attributes...)
and the role of every covariate (static / known-future / unknown). No code change is needed.
See ``docs/data.md`` for the full input contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.schema import CANONICAL

#: Calendar features that can be derived from ``period`` (all known-future categoricals).
CALENDAR_FEATURES = {
    "month": lambda p: p.dt.month.astype(str),
    "quarter": lambda p: p.dt.quarter.astype(str),
    "week_of_year": lambda p: p.dt.isocalendar().week.astype(int).astype(str),
    "day_of_week": lambda p: p.dt.dayofweek.astype(str),
}

#: Canonical keys a covariate table can be joined on.
JOIN_KEYS = ("item_id", "location_id", "period")

#: Rules a ``plausibility`` entry may set (see :meth:`DatasetSpec.value_rules`).
PLAUSIBILITY_RULES = ("min", "max", "spike", "spike_quantile")
#: Default ``spike`` factor for demand and the quantile it multiplies.
DEFAULT_SPIKE = 100.0
DEFAULT_SPIKE_QUANTILE = 0.9


def is_off(value: Any) -> bool:
    """``off``, ``false`` or null in a config (YAML reads a bare ``off`` as false)."""
    return value is None or value is False or (isinstance(value, str) and value.lower() == "off")


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
        source: The demand table: ``path`` (relative paths resolve against the project root;
            see :mod:`stockcast.data.io`),
            ``format`` (``parquet`` or ``csv``), optional ``read_options`` passed to the pandas
            reader and ``date_format`` (strftime pattern; ``None`` lets pandas infer). With a
            ``generator`` entry (``_target_`` + keyword arguments, e.g.
            ``stockcast.data.synthetic.generate``) the tables are generated on first use into
            ``<cache_dir>/<name>-<hash of the generator config>/`` (``cache_dir`` defaults to
            ``data/generated``) and every relative path resolves against that folder.
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
        dataset: Extra keyword arguments for ``TimeSeriesDataSet`` (normalizer, scales...),
            plus ``add_time_idx`` (ours: false leaves the absolute ``time_idx`` input out).
        tables: Covariate tables joined onto the demand table, by name. Each entry has the
            ``path``/``format``/``read_options``/``date_format`` of ``source`` plus
            ``keys`` (canonical join keys: any non-empty subset of ``item_id``,
            ``location_id``, ``period``), optional ``columns`` (canonical key -> source
            column, for keys named differently in this table), optional ``covariates``
            (list of columns, or mapping source column -> covariate name; default: every
            role covariate the table has), ``unmatched`` (``reject``: every demand row must
            find a partner; ``keep``: leave its covariates missing for ``nan_policy``) and
            ``extra_keys`` (``reject`` or ``ignore`` items/locations absent from demand).
        price: Which known-future covariates carry the planned price, so that evaluation
            (price response) and the optimizer (candidate prices) can change it:
            ``column`` (selling price the model sees), optional ``list_column`` (regular
            price; candidate prices are fractions of it), ``discount_column`` and
            ``discount_scale`` (100 for percent, 1 for a fraction) kept consistent.
        categories: Optional allowed values per categorical column (``item_id``,
            ``location_id`` or a categorical covariate); other values are rejected.
        until: Last period to use (``YYYY-MM-DD``): the data as it was known then. Rows
            after it are dropped after validation, so replays and continuous-learning runs
            (``data.until=...``) see exactly what a job at that date would have seen.
            ``None`` = everything in the source.
        plausibility: Value rules per column (``demand`` or a numeric covariate), on top of
            the defaults: ``min`` / ``max`` (bounds), ``spike`` (``k``: a value above
            ``k x max(1, the series' own spike_quantile quantile)`` is flagged) and
            ``spike_quantile`` (default 0.9). Defaults: ``demand: {spike: 100}`` and
            ``{min: 0}`` for the price columns named under ``price`` (``column``,
            ``list_column``). A column's entry is merged into its defaults; ``off`` for a
            column drops all its rules, ``off`` for one rule (``spike: off``) that rule.
            See :meth:`value_rules`.
        short_series: Series with fewer than :attr:`min_series_length` periods (the
            encoder and horizon of one training sample): ``reject`` (error naming them,
            before any training) or ``drop`` (left out with a logged warning).
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
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: dict[str, list[Any]] = field(default_factory=dict)
    price: dict[str, Any] = field(default_factory=dict)
    until: str | None = None
    plausibility: dict[str, Any] = field(default_factory=dict)
    short_series: str = "reject"

    def __post_init__(self) -> None:
        if not isinstance(self.source, dict) or not self.source.get("path"):
            raise ValueError(
                f"data config '{self.name}': source.path is required (the demand table)"
            )
        generator = self.source.get("generator")
        if generator is not None and not (
            isinstance(generator, dict) and generator.get("_target_")
        ):
            raise ValueError(
                f"data config '{self.name}': source.generator needs a _target_ (e.g. "
                "stockcast.data.synthetic.generate) and its keyword arguments"
            )
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
        if self.until is not None:
            try:
                self.until = str(pd.Timestamp(str(self.until)).date())
            except ValueError as err:
                raise ValueError(
                    f"data config '{self.name}': until={self.until!r} is not a date (YYYY-MM-DD)"
                ) from err
        for name, tcfg in self.tables.items():
            self._check_table_config(name, tcfg)
        for col, allowed in self.categories.items():
            if not isinstance(allowed, (list, tuple)) or not allowed:
                raise ValueError(
                    f"data config '{self.name}': categories.{col} must be a non-empty list"
                )
        if self.short_series not in ("reject", "drop"):
            raise ValueError(
                f"data config '{self.name}': short_series must be reject or drop, "
                f"not {self.short_series!r}"
            )
        self._check_plausibility()

    def _check_plausibility(self) -> None:
        where = f"data config '{self.name}': plausibility"
        if not isinstance(self.plausibility, dict):
            raise ValueError(f"{where} must map columns to rules")
        categorical = set(self.categorical_covariates)
        for col, entry in self.plausibility.items():
            if col != "demand" and (col not in self.covariates or col in categorical):
                raise ValueError(
                    f"{where}.{col}: not 'demand' or a numeric covariate of this dataset"
                )
            if is_off(entry):
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"{where}.{col} must be off or a mapping of rules")
            unknown = sorted(set(entry) - set(PLAUSIBILITY_RULES))
            if unknown:
                raise ValueError(
                    f"{where}.{col}: unknown rule(s) {unknown}; choose from "
                    f"{list(PLAUSIBILITY_RULES)}"
                )
            for rule, value in entry.items():
                if is_off(value):
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{where}.{col}.{rule} must be a number or off, not {value!r}")
                if rule == "spike" and not value > 0:
                    raise ValueError(f"{where}.{col}.spike must be > 0, got {value}")
                if rule == "spike_quantile" and not 0 < value < 1:
                    raise ValueError(f"{where}.{col}.spike_quantile must lie in (0, 1), got {value}")
        for col, rules in self.value_rules().items():
            if rules.get("min", -np.inf) > rules.get("max", np.inf):
                raise ValueError(f"{where}.{col}: min {rules['min']} exceeds max {rules['max']}")

    def _check_table_config(self, name: str, tcfg: dict[str, Any]) -> None:
        where = f"data config '{self.name}': tables.{name}"
        if name == "demand":
            raise ValueError(f"{where}: 'demand' is reserved for the demand table (source)")
        if not isinstance(tcfg, dict) or not tcfg.get("path"):
            raise ValueError(f"{where}: needs a 'path'")
        keys = self.table_keys(name)
        if not keys:
            raise ValueError(f"{where}: 'keys' must list at least one of {list(JOIN_KEYS)}")
        bad = [k for k in keys if k not in JOIN_KEYS]
        if bad:
            raise ValueError(f"{where}: unknown join key(s) {bad}; choose from {list(JOIN_KEYS)}")
        if "location_id" in keys and "location_id" not in self.columns:
            raise ValueError(
                f"{where}: joins on location_id but the demand table has no location column"
            )
        for opt, allowed in (
            ("unmatched", ("reject", "keep")),
            ("extra_keys", ("reject", "ignore")),
        ):
            value = tcfg.get(opt, allowed[0])
            if value not in allowed:
                raise ValueError(f"{where}.{opt} must be one of {list(allowed)}, not {value!r}")
        covs = tcfg.get("covariates")
        if covs is not None and not isinstance(covs, (list, tuple, dict)):
            raise ValueError(f"{where}.covariates must be a list or a mapping")
        names = list(covs.values()) if isinstance(covs, dict) else list(covs or [])
        unknown = [c for c in names if c not in self.covariates]
        if unknown:
            raise ValueError(
                f"{where}: covariate(s) {unknown} have no role; list them under "
                "static_*/known_*/unknown_* first"
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

    @property
    def min_series_length(self) -> int:
        """Periods a series needs: ``window.min_encoder_length + window.max_prediction_length``.

        One training sample of the shortest encoder with the full horizon; also what a
        registered model's input example (a series' history plus the horizon) needs.
        """
        return int(self.window["min_encoder_length"]) + int(self.window["max_prediction_length"])

    def value_rules(self) -> dict[str, dict[str, float]]:
        """Plausibility rules per column: the defaults merged with ``plausibility``.

        Returns:
            Column -> ``{rule: value}`` with rules among ``min``, ``max``, ``spike``,
            ``spike_quantile`` (``spike_quantile`` only where ``spike`` is set).
        """
        rules: dict[str, dict[str, Any]] = {
            "demand": {"spike": DEFAULT_SPIKE, "spike_quantile": DEFAULT_SPIKE_QUANTILE}
        }
        for key in ("column", "list_column"):
            if self.price.get(key):
                rules.setdefault(str(self.price[key]), {})["min"] = 0.0
        for col, entry in self.plausibility.items():
            if is_off(entry):
                rules.pop(col, None)
            else:
                rules[col] = {**rules.get(col, {}), **entry}
        out = {}
        for col, entry in rules.items():
            kept = {rule: float(v) for rule, v in entry.items() if not is_off(v)}
            if "spike" in kept:
                kept.setdefault("spike_quantile", DEFAULT_SPIKE_QUANTILE)
            else:
                kept.pop("spike_quantile", None)
            if kept:
                out[col] = kept
        return out

    def nan_rule(self, column: str) -> str:
        return self.nan_policy.get(column, self.nan_policy.get("default", "reject"))

    def table_keys(self, name: str) -> list[str]:
        """Canonical join keys of covariate table ``name``, in canonical order."""
        tcfg = self.tables[name]
        named = {*(tcfg.get("keys") or []), *(tcfg.get("columns") or {})}
        return [k for k in JOIN_KEYS if k in named] + sorted(named - set(JOIN_KEYS))

    def table_columns(self, name: str) -> dict[str, str]:
        """Canonical join key -> source column of covariate table ``name``."""
        mapping = dict(self.tables[name].get("columns") or {})
        return {k: mapping.get(k, k) for k in self.table_keys(name)}

    @property
    def generator(self) -> dict[str, Any] | None:
        """The ``source.generator`` config (``_target_`` + kwargs), if the data is generated."""
        return self.source.get("generator") or None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored with models so prediction reuses the exact mapping)."""
        from dataclasses import asdict

        return asdict(self)
