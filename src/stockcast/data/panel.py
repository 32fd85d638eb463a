"""Raw table -> validated canonical demand panel.

The canonical panel has one row per ``item_id`` × ``location_id`` × ``period`` with
``demand``, the covariates named by the :class:`DatasetSpec`, the derived calendar
features and an integer ``time_idx`` counted in periods from ``calendar_start``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockcast.data.spec import CALENDAR_FEATURES, GROUP_IDS, TIME_IDX, DatasetSpec, read_source
from stockcast.data.validation import (
    numeric_column,
    raise_if,
    required_columns,
    rows_where,
    schema_issues,
)
from stockcast.errors import Issue

DEMAND_TABLE = "demand"


def load_panel(spec: DatasetSpec) -> pd.DataFrame:
    """Read the dataset's source file and return the validated canonical panel."""
    return to_canonical(read_source(spec), spec)


def to_canonical(
    raw: pd.DataFrame,
    spec: DatasetSpec,
    *,
    table: str = DEMAND_TABLE,
    allow_future: bool = False,
    calendar_start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Map a raw table onto the canonical schema, validate it, and apply gap/NaN policies.

    Args:
        raw: Source-schema table (column names as in the data config).
        spec: The dataset specification.
        table: Table name used in error messages.
        allow_future: Accept trailing rows with missing demand (future periods to forecast,
            carrying known-future covariates). Their ``demand`` stays NaN.
        calendar_start: Period that ``time_idx`` 0 refers to; defaults to the earliest period.
            Prediction passes the training value so indices line up with the model.

    Raises:
        DataValidationError: Listing every issue found (table, column, rule, rows).
    """
    raw = raw.reset_index(drop=True)
    raise_if(required_columns(raw, table, spec.required_source_columns))

    cols = spec.columns
    df = pd.DataFrame(index=raw.index)
    issues: list[Issue] = []

    # keys -------------------------------------------------------------------------------
    df["item_id"] = raw[cols["item_id"]].astype(str)
    df["location_id"] = raw[cols["location_id"]].astype(str) if "location_id" in cols else "all"
    for key in GROUP_IDS:
        missing = raw[cols[key]].isna() if key in cols else pd.Series(False, index=raw.index)
        if missing.any():
            issues.append(
                Issue(table, cols[key], "no_missing_values", f"{key} is missing", rows_where(missing))
            )
    period_raw = raw[cols["period"]]
    period = pd.to_datetime(
        period_raw.astype(str) if spec.source.get("date_format") else period_raw,
        format=spec.source.get("date_format"),
        errors="coerce",
    )
    bad_dates = period.isna()
    if bad_dates.any():
        fmt = spec.source.get("date_format") or "inferred"
        examples = ", ".join(period_raw[bad_dates].astype(str).unique()[:5])
        issues.append(
            Issue(
                table,
                cols["period"],
                "date_format",
                f"cannot parse as dates (format {fmt}), e.g. {examples}",
                rows_where(bad_dates),
            )
        )
    df["period"] = period.astype("datetime64[ns]")

    demand, demand_issues = numeric_column(raw, table, cols["demand"])
    issues += demand_issues
    df["demand"] = demand

    # covariates -------------------------------------------------------------------------
    for c in spec.covariates:
        if c in spec.categorical_covariates:
            df[c] = raw[c].astype("string").astype(object)
        else:
            df[c], cov_issues = numeric_column(raw, table, c)
            issues += cov_issues
    raise_if(issues)

    # row-level schema (pandera) ---------------------------------------------------------
    schema = pa.DataFrameSchema(
        {
            "demand": pa.Column(
                float,
                [
                    pa.Check.ge(0, error="demand must be >= 0"),
                    pa.Check(np.isfinite, element_wise=True, ignore_na=True, error="finite"),
                ],
                nullable=True,
            ),
        },
        unique=["item_id", "location_id", "period"],
        report_duplicates="all",
    )
    issues += [
        _rename(i, {"demand": cols["demand"], "period": cols["period"]})
        for i in schema_issues(df, table, schema)
    ]
    raise_if(issues)

    # period grid ------------------------------------------------------------------------
    start = df["period"].min() if calendar_start is None else pd.Timestamp(calendar_start)
    grid = pd.date_range(start, max(df["period"].max(), start), freq=spec.freq)
    pos = pd.Series(np.arange(len(grid)), index=grid)
    time_idx = df["period"].map(pos)
    off_grid = time_idx.isna()
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
    raise_if(issues)
    df[TIME_IDX] = time_idx.astype(int)

    # missing demand: only as trailing future rows when allowed ----------------------------
    df = df.sort_values([*GROUP_IDS, TIME_IDX])
    nan_demand = df["demand"].isna()
    if nan_demand.any():
        observed_last = df[~nan_demand].groupby(GROUP_IDS)[TIME_IDX].max()
        last = df.set_index(GROUP_IDS).index.map(observed_last.to_dict().get)
        is_future = nan_demand & (df[TIME_IDX].to_numpy() > np.asarray(last, dtype=float))
        inner = nan_demand & ~is_future if allow_future else nan_demand
        if inner.any():
            issues.append(
                Issue(
                    table,
                    cols["demand"],
                    "no_missing_values",
                    "demand is missing"
                    + (" inside the history (only trailing future rows may omit it)" if allow_future else ""),
                    sorted(rows_where(inner)),
                )
            )

    # static covariates must be constant per series ---------------------------------------
    for c in [*spec.static_categoricals, *spec.static_reals]:
        nunique = df.groupby(GROUP_IDS)[c].transform("nunique")
        varying = nunique > 1
        if varying.any():
            issues.append(
                Issue(table, c, "static_constant", "static covariate varies within a series", sorted(rows_where(varying)))
            )
    raise_if(issues)

    df = _fill_gaps(df, spec, table)
    df = _apply_nan_policy(df, spec, table, allow_future)
    for name in spec.calendar:
        df[name] = CALENDAR_FEATURES[name](df["period"])
    return df.reset_index(drop=True)


def _rename(issue: Issue, mapping: dict[str, str]) -> Issue:
    if issue.column in mapping:
        issue.column = mapping[issue.column]
    return issue


def _fill_gaps(df: pd.DataFrame, spec: DatasetSpec, table: str) -> pd.DataFrame:
    span = df.groupby(GROUP_IDS)[TIME_IDX].agg(["min", "max", "count"])
    gappy = span[span["max"] - span["min"] + 1 != span["count"]]
    if gappy.empty:
        return df
    if spec.gaps == "reject":
        names = [f"{i}@{loc}" for i, loc in gappy.index[:10]]
        raise_if(
            [
                Issue(
                    table,
                    spec.columns["period"],
                    "no_gaps",
                    f"{len(gappy)} series have missing periods (set data.gaps=zero or ffill to "
                    f"fill them), e.g. {', '.join(names)}",
                )
            ]
        )
    full = [
        pd.DataFrame({"item_id": i, "location_id": loc, TIME_IDX: np.arange(r["min"], r["max"] + 1)})
        for (i, loc), r in span.loc[gappy.index].iterrows()
    ]
    filled = pd.concat(full).merge(df, on=[*GROUP_IDS, TIME_IDX], how="left")
    filled = pd.concat([df[~df.set_index(GROUP_IDS).index.isin(gappy.index)], filled])
    filled = filled.sort_values([*GROUP_IDS, TIME_IDX]).reset_index(drop=True)
    new = filled["period"].isna()
    grid0 = df["period"].min() - df[TIME_IDX].min() * pd.tseries.frequencies.to_offset(spec.freq)
    filled.loc[new, "period"] = [
        grid0 + int(k) * pd.tseries.frequencies.to_offset(spec.freq) for k in filled.loc[new, TIME_IDX]
    ]
    if spec.gaps == "zero":
        filled.loc[new, "demand"] = 0.0
    cov = spec.covariates
    g = filled.groupby(GROUP_IDS, sort=False)
    filled[cov] = g[cov].ffill()
    if spec.gaps == "ffill":
        filled["demand"] = g["demand"].ffill()
    return filled


def _apply_nan_policy(df: pd.DataFrame, spec: DatasetSpec, table: str, allow_future: bool) -> pd.DataFrame:
    issues = []
    for c in spec.covariates:
        missing = df[c].isna()
        if not missing.any():
            continue
        rule = spec.nan_rule(c)
        if rule == "reject":
            issues.append(
                Issue(
                    table,
                    c,
                    "no_missing_values",
                    f"{int(missing.sum())} missing value(s); set data.nan_policy.{c} to zero, ffill "
                    "or mean to impute",
                    rows_where(missing),
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
                Issue(table, c, "no_missing_values", f"nan_policy '{rule}' could not fill every value", rows_where(still))
            )
    raise_if(issues)
    return df
