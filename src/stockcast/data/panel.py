"""Raw table -> validated canonical demand panel.

The canonical panel has one row per ``item_id`` × ``location_id`` × ``period`` with
``demand``, the covariates named by the :class:`DatasetSpec`, the derived calendar
features and an integer ``time_idx`` counted in periods from ``calendar_start``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockcast.data.io import read_tables
from stockcast.data.sources import DEMAND_TABLE, PreparedTable, join_tables
from stockcast.data.spec import CALENDAR_FEATURES, DatasetSpec
from stockcast.data.validation import (
    bound_issues,
    category_issues,
    date_issues,
    finite_issues,
    key_strings,
    numeric_column,
    parse_periods,
    raise_if,
    required_columns,
    rows_where,
    schema_issues,
    spike_issues,
    string_values,
)
from stockcast.errors import Issue
from stockcast.schema import GROUP_IDS, TIME_IDX

__all__ = ["DEMAND_TABLE", "load_panel", "short_series", "to_canonical"]

_ROW = "_input_row"
_log = logging.getLogger(__name__)

#: Row-level rules for canonical demand (pandera); missing values follow ``gaps``.
DEMAND_SCHEMA = pa.DataFrameSchema(
    {
        "demand": pa.Column(
            float,
            [
                pa.Check.ge(0, error="non_negative"),
                pa.Check(lambda s: np.isfinite(s) | s.isna(), error="finite"),
            ],
            nullable=True,
        ),
    },
)


def load_panel(spec: DatasetSpec) -> pd.DataFrame:
    """Read the dataset's tables (generating them if configured) -> validated canonical panel.

    With ``spec.until`` set, periods after it are dropped (the data as known at that date).
    Series shorter than ``spec.min_series_length`` (after that cut) are then rejected or
    dropped, as ``spec.short_series`` says (:func:`short_series`).

    Raises:
        DataValidationError: Invalid input, no period on or before ``spec.until``, or
            series too short to train on (``short_series: reject``).
    """
    tables = read_tables(spec)
    demand = tables.pop(DEMAND_TABLE)
    panel = to_canonical(demand, spec, tables=tables if spec.tables else None)
    if spec.until is not None:
        keep = panel["period"] <= pd.Timestamp(spec.until)
        if not keep.any():
            raise_if(
                [
                    Issue(
                        DEMAND_TABLE,
                        spec.columns["period"],
                        "until",
                        f"no period on or before data.until={spec.until} "
                        f"(first period {panel['period'].min().date()})",
                    )
                ]
            )
        panel = panel[keep].reset_index(drop=True)
    return short_series(panel, spec)


def short_series(panel: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Apply ``spec.short_series`` to series with fewer than ``spec.min_series_length`` periods.

    A series needs ``window.min_encoder_length + window.max_prediction_length`` periods
    with observed demand for one training sample (and for a registered model's input
    example); shorter ones would be silently skipped by the dataset and break model
    registration. ``reject`` raises naming them; ``drop`` leaves them out with a warning.

    Raises:
        DataValidationError: Short series under ``reject``, or every series short.
    """
    need = spec.min_series_length
    counts = panel.groupby(GROUP_IDS, sort=True)["demand"].count()
    short = counts[counts < need]
    if short.empty:
        return panel
    names = [f"{item}@{loc} ({n})" for (item, loc), n in short.items()]
    listed = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
    text = (
        f"{len(short)} series have fewer than {need} periods with demand (window."
        f"min_encoder_length + window.max_prediction_length), which training needs: {listed}"
    )
    if spec.short_series == "reject" or len(short) == len(counts):
        hint = (
            "; set data.short_series=drop to leave them out"
            if len(short) < len(counts)
            else "; every series is that short: shorten data.window"
        )
        raise_if([Issue(DEMAND_TABLE, spec.columns["item_id"], "series_length", text + hint)])
    _log.warning("data config '%s': dropped %s (short_series: drop)", spec.name, text)
    keep = ~panel.set_index(GROUP_IDS).index.isin(short.index)
    return panel[keep].reset_index(drop=True)


def to_canonical(
    raw: pd.DataFrame,
    spec: DatasetSpec,
    *,
    table: str = DEMAND_TABLE,
    allow_future: bool = False,
    calendar_start: pd.Timestamp | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Map a raw table onto the canonical schema, validate it, and apply gap/NaN policies.

    Args:
        raw: Source-schema table (column names as in the data config). For a multi-table
            dataset either the demand table with ``tables`` given, or the already joined
            table :func:`~stockcast.data.io.read_source` returns.
        spec: The dataset specification.
        table: Table name used in error messages.
        allow_future: Accept trailing rows with missing demand (future periods to forecast,
            carrying known-future covariates). Their ``demand`` stays NaN.
        calendar_start: Period that ``time_idx`` 0 refers to; defaults to the earliest period.
            Prediction passes the training value so indices line up with the model.
        tables: Raw covariate tables by name (``spec.tables``), validated and joined onto
            ``raw``; their issues are reported together with the demand table's.

    Raises:
        DataValidationError: Listing every issue found (table, column, rule, rows).
    """
    raw = raw.reset_index(drop=True)
    if raw.empty:
        raise_if([Issue(table, None, "not_empty", "the table has no rows")])
    issues: list[Issue] = []
    provider: dict[str, str] = {}
    prepared: dict[str, PreparedTable] = {}
    if tables is not None and spec.tables:
        joined = join_tables(raw, tables, spec, table=table, allow_future=allow_future)
        raw, prepared, provider, issues = (
            joined.frame,
            joined.prepared,
            joined.provided,
            joined.issues,
        )
    issues += required_columns(
        raw, table, [c for c in spec.required_source_columns if c not in provider]
    )
    if any(c not in raw.columns for c in spec.required_source_columns):
        raise_if(issues)

    cols = spec.columns
    data: dict[str, object] = {}

    # keys -------------------------------------------------------------------------------
    data["item_id"] = key_strings(raw[cols["item_id"]])
    data["location_id"] = key_strings(raw[cols["location_id"]]) if "location_id" in cols else "all"
    for key in GROUP_IDS:
        missing = raw[cols[key]].isna() if key in cols else pd.Series(False, index=raw.index)
        if missing.any():
            issues.append(
                Issue(
                    table, cols[key], "no_missing_values", f"{key} is missing", rows_where(missing)
                )
            )
        if key in spec.categories:
            issues += category_issues(raw[cols[key]], spec.categories[key], table, cols[key])
    period_raw = raw[cols["period"]]
    period = parse_periods(period_raw, spec.source.get("date_format"))
    issues += date_issues(period_raw, period, table, cols["period"], spec.source.get("date_format"))
    if period_raw.isna().any():
        issues.append(
            Issue(
                table,
                cols["period"],
                "no_missing_values",
                "period is missing",
                rows_where(period_raw.isna()),
            )
        )
    data["period"] = period

    demand, demand_issues = numeric_column(raw, table, cols["demand"])
    issues += demand_issues
    data["demand"] = demand

    # covariates -------------------------------------------------------------------------
    for c in spec.covariates:
        if c in spec.categorical_covariates:
            data[c] = string_values(raw[c])
            if c in spec.categories and c not in provider:
                issues += category_issues(raw[c], spec.categories[c], table, c)
        elif c in provider:
            data[c] = pd.to_numeric(raw[c], errors="coerce").astype(float)
        else:
            data[c], cov_issues = numeric_column(raw, table, c)
            issues += cov_issues + finite_issues(data[c], table, c)

    df = pd.DataFrame(data, index=raw.index)

    # demand values (pandera) and unique series periods ----------------------------------
    issues += [
        _rename(i, {"demand": cols["demand"]})
        for i in schema_issues(df[["demand"]], table, DEMAND_SCHEMA)
    ]
    issues += _plausibility_issues(df, spec, table, provider)
    dup = df.duplicated(["item_id", "location_id", "period"], keep=False) & df["period"].notna()
    if dup.any():
        first = df[dup].iloc[0]
        issues.append(
            Issue(
                table,
                ", ".join(spec.source_key_columns[:-1]),
                "unique_key",
                f"{int(dup.sum())} rows repeat a series period (duplicate periods), e.g. "
                f"{first['item_id']}@{first['location_id']} {first['period'].date()}",
                rows_where(dup),
            )
        )

    # period grid ------------------------------------------------------------------------
    valid = df["period"].notna()
    start = df["period"].min() if calendar_start is None else pd.Timestamp(calendar_start)
    if pd.isna(start) or not valid.any():
        raise_if(issues)
    grid = pd.date_range(start, max(df.loc[valid, "period"].max(), start), freq=spec.freq)
    time_idx = pd.Series(grid.get_indexer(df["period"]), index=df.index, dtype=float)
    time_idx[time_idx < 0] = np.nan
    off_grid = time_idx.isna() & valid
    if off_grid.any():
        examples = ", ".join(df.loc[off_grid, "period"].dt.strftime("%Y-%m-%d").unique()[:5])
        issues.append(
            Issue(
                table,
                cols["period"],
                "period_on_grid",
                f"periods not on the '{spec.freq}' grid starting {start.date()}, e.g. {examples}",
                rows_where(off_grid),
            )
        )

    # static covariates must be constant per series ---------------------------------------
    statics = [*spec.static_categoricals, *spec.static_reals]
    series = (
        df.groupby(GROUP_IDS, sort=False, dropna=False).ngroup().to_numpy() if statics else None
    )
    for c in statics:
        varying = _varies_within(series, df[c])
        if varying.any():
            n_series = df.loc[varying, GROUP_IDS].drop_duplicates().shape[0]
            issues.append(
                Issue(
                    provider.get(c, table),
                    c,
                    "static_constant",
                    f"static covariate varies within {n_series} series; rows are '{table}' rows",
                    sorted(rows_where(varying)),
                )
            )

    # missing values under nan_policy 'reject' ---------------------------------------------
    for c in spec.covariates:
        missing = df[c].isna()
        if missing.any() and spec.nan_rule(c) == "reject":
            issues.append(
                Issue(
                    provider.get(c, table),
                    c,
                    "no_missing_values",
                    f"{int(missing.sum())} missing value(s) (rows are '{table}' rows); set "
                    f"data.nan_policy.{c} to zero, ffill or mean to impute",
                    rows_where(missing),
                )
            )

    inner = pd.Series(False, index=df.index)
    if not (time_idx.isna().any() or df["item_id"].isna().any() or df["location_id"].isna().any()):
        df[TIME_IDX] = time_idx.astype(int)
        df[_ROW] = df.index  # position in the input table, reported by later issues
        df = df.sort_values([*GROUP_IDS, TIME_IDX])
        inner = _missing_demand(df, spec, table, allow_future, issues)
        if spec.gaps == "reject":
            issues += _gap_issues(df, spec, table, start)
    raise_if(issues)

    if inner.any():
        df = _fill_missing_demand(df, inner, spec, table)
    df = _fill_gaps(df, spec, table, start, prepared)
    df = _apply_nan_policy(df, spec, table, provider)
    if spec.calendar:  # derived once per distinct period
        periods = pd.DatetimeIndex(df["period"].unique())
        at = periods.get_indexer(df["period"])
        for name in spec.calendar:
            values = CALENDAR_FEATURES[name](pd.Series(periods)).to_numpy()
            df[name] = values[at]
    return df.drop(columns=_ROW).reset_index(drop=True)


def _plausibility_issues(
    df: pd.DataFrame, spec: DatasetSpec, table: str, provider: Mapping[str, str]
) -> list[Issue]:
    """Bounds and spikes (``spec.value_rules()``) of demand and the covariates in ``df``.

    Covariates that come from a covariate table are checked there, on that table's rows.
    """
    issues: list[Issue] = []
    categorical = set(spec.categorical_covariates)
    for col, rules in spec.value_rules().items():
        if col in provider or col in categorical or col not in df.columns:
            continue
        src = spec.columns["demand"] if col == "demand" else col
        setting = f"data.plausibility.{col}"
        issues += bound_issues(df[col], table, src, rules, setting=setting)
        issues += spike_issues(df[col], df[GROUP_IDS], table, src, rules, setting=setting)
    return issues


def _varies_within(series: np.ndarray, values: pd.Series) -> pd.Series:
    """True on rows whose series (integer code) has more than one distinct non-missing value."""
    codes, uniques = pd.factorize(values)
    ok = codes >= 0
    pairs = np.unique(series[ok].astype(np.int64) * (len(uniques) + 1) + codes[ok])
    counts = np.bincount(pairs // (len(uniques) + 1), minlength=int(series.max(initial=0)) + 1)
    return pd.Series(counts[series] > 1, index=values.index)


def _missing_demand(
    df: pd.DataFrame, spec: DatasetSpec, table: str, allow_future: bool, issues: list[Issue]
) -> pd.Series:
    """Rows with missing demand inside the history (trailing future rows excluded if allowed).

    With ``gaps=reject`` they are an issue; otherwise they are filled like missing periods.
    """
    nan_demand = df["demand"].isna()
    if not nan_demand.any():
        return nan_demand
    observed_last = df[~nan_demand].groupby(GROUP_IDS)[TIME_IDX].max()
    last = df.set_index(GROUP_IDS).index.map(observed_last.to_dict().get)
    is_future = nan_demand & (df[TIME_IDX].to_numpy() > np.asarray(last, dtype=float))
    inner = nan_demand & ~is_future if allow_future else nan_demand
    if inner.any() and spec.gaps == "reject":
        issues.append(
            Issue(
                table,
                spec.columns["demand"],
                "no_missing_values",
                "demand is missing"
                + (
                    " inside the history (only trailing future rows may omit it)"
                    if allow_future
                    else ""
                )
                + " (set data.gaps=zero or ffill to fill it like a missing period)",
                sorted(rows_where(inner)),
            )
        )
    return inner


def _fill_missing_demand(
    df: pd.DataFrame, inner: pd.Series, spec: DatasetSpec, table: str
) -> pd.DataFrame:
    if spec.gaps == "zero":
        df.loc[inner, "demand"] = 0.0
        return df
    ffilled = df.groupby(GROUP_IDS, sort=False)["demand"].ffill()
    df.loc[inner, "demand"] = ffilled[inner]
    still = inner & df["demand"].isna()
    if still.any():
        raise_if(
            [
                Issue(
                    table,
                    spec.columns["demand"],
                    "no_missing_values",
                    "demand is missing at the start of a series: gaps=ffill cannot fill it",
                    sorted(rows_where(still)),
                )
            ]
        )
    return df


def _gap_issues(
    df: pd.DataFrame, spec: DatasetSpec, table: str, start: pd.Timestamp
) -> list[Issue]:
    """``no_gaps`` issue (``gaps=reject``): rows are the first row after each gap."""
    step = df.groupby(GROUP_IDS, sort=False)[TIME_IDX].diff()
    after_gap = step > 1
    if not after_gap.any():
        return []
    first = df[after_gap].iloc[0]
    grid = pd.date_range(start, periods=int(first[TIME_IDX]), freq=spec.freq)
    lo = grid[int(first[TIME_IDX] - step[after_gap].iloc[0] + 1)].date()
    hi = grid[int(first[TIME_IDX]) - 1].date()
    n_series = df.loc[after_gap, GROUP_IDS].drop_duplicates().shape[0]
    return [
        Issue(
            table,
            spec.columns["period"],
            "no_gaps",
            f"{n_series} series miss {int((step[after_gap] - 1).sum())} period(s), e.g. "
            f"{first['item_id']}@{first['location_id']} lacks {lo}..{hi} (set data.gaps=zero "
            "or ffill to fill them); rows are the first row after each gap",
            sorted(int(r) for r in df.loc[after_gap, _ROW]),
        )
    ]


def _rename(issue: Issue, mapping: dict[str, str]) -> Issue:
    if issue.column in mapping:
        issue.column = mapping[issue.column]
    return issue


def _fill_gaps(
    df: pd.DataFrame,
    spec: DatasetSpec,
    table: str,
    start: pd.Timestamp,
    prepared: Mapping[str, PreparedTable],
) -> pd.DataFrame:
    """Reject or fill missing periods inside each series (``df`` sorted by series, time).

    Filled rows take their covariates from the covariate tables where those have the
    period, else the series' previous value; their demand is 0 (``zero``) or the previous
    demand (``ffill``).
    """
    step = df.groupby(GROUP_IDS, sort=False)[TIME_IDX].diff()
    if not (step > 1).any():
        return df
    if spec.gaps == "reject":  # reported by _gap_issues before filling
        raise RuntimeError("gaps=reject with gaps left unreported")
    span = df.groupby(GROUP_IDS, sort=True)[TIME_IDX].agg(["min", "max", "count"])
    gappy = span[span["max"] - span["min"] + 1 != span["count"]]
    lens = (gappy["max"] - gappy["min"] + 1).to_numpy()
    offsets = np.repeat(np.cumsum(lens) - lens, lens)
    full = pd.DataFrame(
        {
            "item_id": np.repeat(gappy.index.get_level_values("item_id").to_numpy(), lens),
            "location_id": np.repeat(gappy.index.get_level_values("location_id").to_numpy(), lens),
            TIME_IDX: np.repeat(gappy["min"].to_numpy(), lens) + np.arange(lens.sum()) - offsets,
        }
    )
    in_gappy = df.set_index(GROUP_IDS).index.isin(gappy.index)
    filled = pd.concat([df[~in_gappy], full.merge(df, on=[*GROUP_IDS, TIME_IDX], how="left")])
    filled = filled.sort_values([*GROUP_IDS, TIME_IDX]).reset_index(drop=True)
    new = filled[_ROW].isna().to_numpy()
    grid = pd.date_range(start, periods=int(filled[TIME_IDX].max()) + 1, freq=spec.freq)
    filled.loc[new, "period"] = grid[filled.loc[new, TIME_IDX].to_numpy()]
    filled["period"] = filled["period"].astype("datetime64[ns]")
    for p in prepared.values():
        look = filled.loc[new, p.keys].merge(p.frame, on=p.keys, how="left")
        for cov in p.covariates.values():
            filled.loc[new, cov] = look[cov].to_numpy()
    g = filled.groupby(GROUP_IDS, sort=False)
    cov = spec.covariates
    if cov:
        carried = g[cov].ffill()
        for c in cov:
            fill = new & filled[c].isna().to_numpy()
            filled.loc[fill, c] = carried.loc[fill, c]
    if spec.gaps == "zero":
        filled.loc[new, "demand"] = 0.0
    else:
        filled.loc[new, "demand"] = g["demand"].ffill()[new]
    return filled


def _apply_nan_policy(
    df: pd.DataFrame, spec: DatasetSpec, table: str, provider: Mapping[str, str]
) -> pd.DataFrame:
    issues = []
    for c in spec.covariates:
        missing = df[c].isna()
        if not missing.any():
            continue
        rule = spec.nan_rule(c)
        if rule == "reject":
            issues.append(
                Issue(
                    provider.get(c, table),
                    c,
                    "no_missing_values",
                    f"{int(missing.sum())} missing value(s)"
                    + _where(df, missing, table)
                    + f"; set data.nan_policy.{c} to zero, ffill or mean to impute",
                    _input_rows(df, missing),
                )
            )
        elif rule == "zero":
            df[c] = df[c].fillna(0)
        elif rule == "ffill":
            g = df.groupby(GROUP_IDS, sort=False)[c]
            df[c] = g.ffill()
            df[c] = df.groupby(GROUP_IDS, sort=False)[c].bfill()
        elif rule == "mean":
            df[c] = df[c].fillna(df.groupby(GROUP_IDS, sort=False)[c].transform("mean"))
        still = df[c].isna()
        if rule != "reject" and still.any():
            issues.append(
                Issue(
                    provider.get(c, table),
                    c,
                    "no_missing_values",
                    f"nan_policy '{rule}' could not fill every value" + _where(df, still, table),
                    _input_rows(df, still),
                )
            )
    raise_if(issues)
    return df


def _input_rows(df: pd.DataFrame, mask: pd.Series) -> list[int]:
    return sorted(int(r) for r in df.loc[mask.to_numpy(), _ROW].dropna())


def _where(df: pd.DataFrame, mask: pd.Series, table: str) -> str:
    gap_rows = int(df.loc[mask.to_numpy(), _ROW].isna().sum())
    text = f" (rows are '{table}' rows"
    return text + (f"; {gap_rows} more in filled gap periods)" if gap_rows else ")")


def select_series(
    panel: pd.DataFrame,
    series: list[tuple[str, str]] | None = None,
    max_series: int | None = None,
) -> pd.DataFrame:
    """Restrict a panel to the series a run works on, always in this order:

    1. the given ``series`` (item_id, location_id) pairs, e.g. those a model was trained on
       (``None`` = every series of the panel);
    2. then the first ``max_series`` of what is left, sorted by key (``None``/0 = all).

    Every task restricts series through this one function, so the same ``max_series`` picks
    the same series in training, evaluation, monitoring, planning and the backtest.
    """
    out = panel
    if series is not None:
        keys = pd.DataFrame([tuple(map(str, s)) for s in series], columns=GROUP_IDS)
        out = out.merge(keys.drop_duplicates(), on=GROUP_IDS)
    if max_series:
        keys = out[GROUP_IDS].drop_duplicates().sort_values(GROUP_IDS).head(int(max_series))
        out = out.merge(keys, on=GROUP_IDS)
    return out.reset_index(drop=True)
