"""Multi-table sources: validating covariate tables and joining them onto the demand rows.

A dataset is a demand table (``spec.source``) plus optional covariate tables
(``spec.tables``), each with its own path, format, date format, column names and join keys
(any of ``item_id``, ``location_id``, ``period``: price tables join on all three, weather on
location and period, market indicators and events on period only, item attributes on the
item alone). :func:`join_tables` validates every table and left-joins it onto the demand
rows, collecting every problem as an :class:`~stockcast.errors.Issue`:

* missing columns, keys that are missing or do not parse, periods off the ``freq`` grid;
* duplicate keys (a join would duplicate demand rows);
* items/locations the demand table does not have (``unknown_category``);
* tables whose periods do not cover the demand date range (``date_coverage``);
* demand rows without a partner (``join_drops_rows``: an inner join would drop them);
* non-numeric or infinite values in real covariates, categories outside ``spec.categories``.

Reading the tables (and generating them) is :mod:`stockcast.data.io`'s job; this module
works on frames already read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.data.validation import (
    bound_issues,
    category_issues,
    date_issues,
    finite_issues,
    key_strings,
    numeric_column,
    on_grid,
    parse_periods,
    rows_where,
    spike_issues,
)
from stockcast.errors import Issue

DEMAND_TABLE = "demand"


# ---------------------------------------------------------------------------- joining
@dataclass
class JoinResult:
    """Outcome of :func:`join_tables`."""

    frame: pd.DataFrame  # demand rows (same order and count) + covariate columns
    prepared: dict[str, PreparedTable]
    provided: dict[str, str]  # covariate -> table that supplies it
    issues: list[Issue]


@dataclass
class PreparedTable:
    """A covariate table in canonical form: canonical keys + covariate columns, unique keys."""

    name: str
    keys: list[str]
    covariates: dict[str, str]  # source column -> covariate name
    frame: pd.DataFrame


def demand_keys(
    demand: pd.DataFrame, spec: DatasetSpec, date_format: str | None = None
) -> pd.DataFrame:
    """Canonical ``item_id``/``location_id`` strings and parsed ``period`` of the demand rows."""
    cols = spec.columns
    out = pd.DataFrame(index=demand.index)
    for key in ("item_id", "location_id"):
        if key in cols and cols[key] in demand.columns:
            out[key] = key_strings(demand[cols[key]])
        elif key in cols:
            out[key] = pd.Series(np.nan, index=demand.index, dtype=object)
        else:
            out[key] = "all"
    fmt = date_format if date_format is not None else spec.source.get("date_format")
    if cols["period"] in demand.columns:
        out["period"] = parse_periods(demand[cols["period"]], fmt)
    else:
        out["period"] = pd.Series(pd.NaT, index=demand.index, dtype="datetime64[ns]")
    return out


def table_covariates(spec: DatasetSpec, name: str, frame: pd.DataFrame) -> dict[str, str]:
    """Source column -> covariate name for covariate table ``name``."""
    covs = spec.tables[name].get("covariates")
    if isinstance(covs, Mapping):
        return {str(k): str(v) for k, v in covs.items()}
    if covs is not None:
        return {str(c): str(c) for c in covs}
    keys = set(spec.table_columns(name).values())
    return {c: c for c in spec.covariates if c in frame.columns and c not in keys}


def join_tables(
    demand: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    spec: DatasetSpec,
    *,
    table: str = DEMAND_TABLE,
    allow_future: bool = False,
) -> JoinResult:
    """Validate the covariate tables and left-join them onto the demand rows.

    Args:
        demand: Demand table in its source schema (row positions are the row numbers that
            issues about demand rows report).
        tables: Raw covariate tables by name (as configured in ``spec.tables``).
        spec: The dataset specification.
        table: Name of the demand table in messages.
        allow_future: Prediction input: rows with missing demand are future rows; they need
            no partner in tables that only carry unknown (past-only) covariates, and
            items/locations absent from the input are not reported.

    Returns:
        The demand table with the covariate columns added (order and row count unchanged),
        the prepared (canonical, de-duplicated) tables, which table supplies each
        covariate, and every issue found.
    """
    demand = demand.reset_index(drop=True)
    added: dict[str, np.ndarray] = {}
    issues: list[Issue] = []
    prepared: dict[str, PreparedTable] = {}
    dkeys = demand_keys(demand, spec)
    key_ok = dkeys.notna().all(axis=1)
    demand_present = (
        pd.to_numeric(demand[spec.columns["demand"]], errors="coerce").notna()
        if spec.columns["demand"] in demand.columns
        else pd.Series(True, index=demand.index)
    )
    anchor = dkeys["period"].min()
    key_ok &= on_grid(dkeys["period"], spec.freq, anchor if pd.notna(anchor) else None)
    provided: dict[str, str] = {}
    known_roles = {*spec.known_future_columns, *spec.static_categoricals, *spec.static_reals}

    for name in spec.tables:
        if name not in tables:
            issues.append(Issue(name, None, "missing_table", "covariate table was not supplied"))
            continue
        raw = tables[name].reset_index(drop=True)
        tcfg = spec.tables[name]
        colmap = spec.table_columns(name)
        covmap = table_covariates(spec, name, raw)
        absent = [c for c in [*colmap.values(), *covmap] if c not in raw.columns]
        issues += [Issue(name, c, "missing_column", "required column is absent") for c in absent]
        for src, cov in covmap.items():
            owner = provided.get(cov) or (table if cov in demand.columns else None)
            if owner is not None:
                issues.append(
                    Issue(
                        name,
                        src,
                        "ambiguous_column",
                        f"covariate '{cov}' is also supplied by table '{owner}'",
                    )
                )
            provided[cov] = name
        if absent:
            continue
        if raw.empty:
            issues.append(Issue(name, None, "not_empty", "covariate table has no rows"))
            continue
        t_issues, frame, valid = _prepare_table(raw, name, colmap, covmap, spec, anchor)
        issues += t_issues
        keys = list(colmap)

        # items / locations the demand table does not have
        if tcfg.get("extra_keys", "reject") == "reject" and not allow_future:
            for key in ("item_id", "location_id"):
                if key in keys:
                    known = dkeys.loc[key_ok, key].unique()
                    issues += category_issues(
                        frame[key].where(valid), known, name, colmap[key], f"{key}s in '{table}'"
                    )

        # duplicate keys would duplicate demand rows
        dup = frame[keys].duplicated(keep=False) & valid
        if dup.any():
            keyed = dkeys[keys].merge(frame.loc[dup, keys].drop_duplicates(), on=keys)
            issues.append(
                Issue(
                    name,
                    ", ".join(colmap[k] for k in keys),
                    "unique_key",
                    f"{int(dup.sum())} rows share a key ({', '.join(keys)}); the join would "
                    f"duplicate {len(keyed)} demand row(s)",
                    rows_where(dup),
                )
            )
        right = frame[valid & ~frame[keys].duplicated(keep="first")]
        prepared[name] = PreparedTable(
            name, keys, covmap, right.rename(columns=covmap).reset_index(drop=True)
        )

        # which demand rows must find a partner
        must = key_ok.copy()
        if allow_future and not (set(covmap.values()) & known_roles):
            must &= demand_present
        if "period" in keys and right["period"].notna().any():
            lo, hi = right["period"].min(), right["period"].max()
            outside = must & ((dkeys["period"] < lo) | (dkeys["period"] > hi))
            if outside.any():
                issues.append(
                    Issue(
                        name,
                        colmap["period"],
                        "date_coverage",
                        f"covers {lo.date()}..{hi.date()} but {int(outside.sum())} demand row(s) "
                        f"in '{table}' lie outside it (demand spans "
                        f"{dkeys.loc[must, 'period'].min().date()}.."
                        f"{dkeys.loc[must, 'period'].max().date()}); rows are '{table}' rows",
                        rows_where(outside),
                    )
                )
                must &= ~outside
        pos = _lookup(right[keys], dkeys[keys])
        unmatched = must & (pos < 0)
        if unmatched.any() and tcfg.get("unmatched", "reject") == "reject":
            first = dkeys[unmatched].iloc[0]
            example = " ".join(str(first[k].date() if k == "period" else first[k]) for k in keys)
            issues.append(
                Issue(
                    name,
                    ", ".join(colmap[k] for k in keys),
                    "join_drops_rows",
                    f"{int(unmatched.sum())} '{table}' row(s) have no matching row on "
                    f"({', '.join(keys)}), e.g. {example}; an inner join would drop them "
                    f"(set tables.{name}.unmatched=keep to leave them to nan_policy); rows are "
                    f"'{table}' rows",
                    rows_where(unmatched),
                )
            )
        for src, cov in covmap.items():
            added[cov] = _take(right[src], pos)
    wide = pd.concat(
        [
            demand.drop(columns=[c for c in added if c in demand.columns]),
            pd.DataFrame(added, index=demand.index),
        ],
        axis=1,
    )
    return JoinResult(wide, prepared, provided, issues)


def _lookup(right: pd.DataFrame, left: pd.DataFrame) -> np.ndarray:
    """Row position in ``right`` (unique, non-missing keys) of each ``left`` row; -1 if none."""
    rkey = np.zeros(len(right), dtype=np.int64)
    lkey = np.zeros(len(left), dtype=np.int64)
    for col in right.columns:
        codes, uniques = pd.factorize(right[col])
        lcodes = pd.Index(uniques).get_indexer(left[col])
        width = len(uniques) + 1
        rkey = rkey * width + codes + 1
        lkey = lkey * width + lcodes + 1  # 0 (no such value) never occurs in rkey
    return pd.Index(rkey).get_indexer(lkey)


def _take(values: pd.Series, pos: np.ndarray) -> np.ndarray:
    """``values`` at positions ``pos`` with missing values where ``pos`` is -1."""
    arr = values.to_numpy()
    if arr.dtype.kind in "fc":
        out = arr[np.clip(pos, 0, None)] if len(arr) else np.full(len(pos), np.nan)
        return np.where(pos >= 0, out, np.nan)
    out = arr.astype(object)[np.clip(pos, 0, None)] if len(arr) else np.empty(len(pos), object)
    out = np.asarray(out, dtype=object)
    out[pos < 0] = None
    return out


def _prepare_table(
    raw: pd.DataFrame,
    name: str,
    colmap: dict[str, str],
    covmap: dict[str, str],
    spec: DatasetSpec,
    anchor: pd.Timestamp | None,
) -> tuple[list[Issue], pd.DataFrame, pd.Series]:
    """Canonical keys and typed covariates of one table, its issues and its usable rows."""
    issues: list[Issue] = []
    frame = pd.DataFrame(index=raw.index)
    valid = pd.Series(True, index=raw.index)
    for key, src in colmap.items():
        if key == "period":
            fmt = spec.tables[name].get("date_format")
            parsed = parse_periods(raw[src], fmt)
            issues += date_issues(raw[src], parsed, name, src, fmt)
            grid = on_grid(parsed, spec.freq, anchor if pd.notna(anchor) else None)
            off = parsed.notna() & ~grid
            if off.any():
                examples = ", ".join(parsed[off].dt.strftime("%Y-%m-%d").unique()[:5])
                issues.append(
                    Issue(
                        name,
                        src,
                        "period_on_grid",
                        f"periods not on the '{spec.freq}' grid, e.g. {examples}",
                        rows_where(off),
                    )
                )
            frame[key] = parsed
            valid &= parsed.notna() & grid
        else:
            frame[key] = key_strings(raw[src])
        missing = raw[src].isna()
        if missing.any():
            issues.append(
                Issue(name, src, "no_missing_values", f"{key} is missing", rows_where(missing))
            )
        valid &= frame[key].notna()
    categorical = set(spec.categorical_covariates)
    for src, cov in covmap.items():
        if cov in categorical:
            frame[src] = raw[src].astype("string").astype(object)
            if cov in spec.categories:
                issues += category_issues(raw[src], spec.categories[cov], name, src)
        else:
            frame[src], num_issues = numeric_column(raw, name, src)
            issues += num_issues + finite_issues(frame[src], name, src)
            rules = spec.value_rules().get(cov)
            if rules:
                series = [k for k in colmap if k != "period"]
                setting = f"data.plausibility.{cov}"
                issues += bound_issues(frame[src], name, src, rules, setting=setting)
                issues += spike_issues(
                    frame[src], frame[series], name, src, rules, setting=setting
                )
    return issues, frame, valid
