"""Table validation with pandera: every failure is collected and reported as an :class:`Issue`.

Checks that need more than one row at a time (gaps, static columns, period alignment)
live here too, so every table goes through one function, :func:`run_checks`, and a
single :class:`~stockcast.errors.DataValidationError` lists everything wrong at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockcast.errors import DataValidationError, Issue

Check = Callable[[pd.DataFrame], list[Issue]]


def schema_issues(df: pd.DataFrame, table: str, schema: pa.DataFrameSchema) -> list[Issue]:
    """Validate ``df`` lazily against ``schema`` and turn pandera's failure cases into issues."""
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        fc = err.failure_cases
        issues = []
        fc = fc.assign(column=fc["column"].fillna(""), check=fc["check"].astype(str))
        for (column, check), grp in fc.groupby(["column", "check"], sort=False):
            rows = sorted({int(i) for i in grp["index"].dropna()})
            if check == "column_in_dataframe":
                for missing in grp["failure_case"]:
                    issues.append(
                        Issue(table, str(missing), "missing_column", "required column is absent")
                    )
                continue
            values = grp["failure_case"].astype(str).unique()[:5]
            issues.append(
                Issue(
                    table,
                    column or None,
                    _rule_name(check),
                    f"{len(grp)} failing value(s), e.g. {', '.join(values)}",
                    rows,
                )
            )
        return issues
    return []


def _rule_name(check: str) -> str:
    names = {
        "not_nullable": "no_missing_values",
        "multiple_fields_uniqueness": "unique_key",
        "field_uniqueness": "unique_key",
    }
    if check.startswith("dtype("):
        return f"type {check}"
    return names.get(check, check)


def run_checks(table: str, df: pd.DataFrame, checks: Iterable[Check]) -> None:
    """Run every check on ``df``; raise one error listing all issues if any failed."""
    issues: list[Issue] = []
    for check in checks:
        issues.extend(check(df))
    if issues:
        raise DataValidationError(issues)


def raise_if(issues: list[Issue]) -> None:
    if issues:
        raise DataValidationError(issues)


def rows_where(mask: pd.Series) -> list[int]:
    """Row labels (positions in the input table) where ``mask`` is true."""
    return [int(i) for i in mask[mask.fillna(False).astype(bool)].index]


def required_columns(df: pd.DataFrame, table: str, columns: Iterable[str]) -> list[Issue]:
    return [
        Issue(table, c, "missing_column", "required column is absent")
        for c in columns
        if c not in df.columns
    ]


def numeric_column(df: pd.DataFrame, table: str, column: str) -> tuple[pd.Series, list[Issue]]:
    """Coerce a column to float; values that are present but not numbers become an issue."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    issues = []
    if bad.any():
        examples = ", ".join(map(str, raw[bad].astype(str).unique()[:5]))
        issues.append(
            Issue(
                table,
                column,
                "numeric",
                f"values are not numbers, e.g. {examples}",
                rows_where(bad),
            )
        )
    return values.astype(float), issues


def string_values(values: pd.Series, missing: object = pd.NA) -> pd.Series:
    """Values as Python strings (object dtype), ``missing`` where absent; fast on categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), pd.Index(values.cat.categories)
    else:
        codes, uniques = pd.factorize(values)
    labels = np.array([str(u) for u in uniques] + [missing], dtype=object)
    out = labels[np.where(codes < 0, len(uniques), codes)]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def key_strings(values: pd.Series) -> pd.Series:
    """Key column as strings (NaN where missing); whole-number floats lose the ``.0``."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and bool((finite == finite.round()).all()):
            values = values.astype("Int64")
    return string_values(values, np.nan)


def parse_periods(values: pd.Series, date_format: str | None) -> pd.Series:
    """Parse a period column (``NaT`` where it does not parse); datetimes pass through."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values, errors="coerce")
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
    else:
        out = pd.to_datetime(
            values.astype(str).where(values.notna()) if date_format else values,
            format=date_format,
            errors="coerce",
        )
    return out.astype("datetime64[ns]")


def date_issues(
    raw: pd.Series, parsed: pd.Series, table: str, column: str, date_format: str | None
) -> list[Issue]:
    """``date_format`` issue for values that are present but do not parse."""
    bad = parsed.isna() & raw.notna()
    if not bad.any():
        return []
    examples = ", ".join(raw[bad].astype(str).unique()[:5])
    return [
        Issue(
            table,
            column,
            "date_format",
            f"cannot parse as dates (format {date_format or 'inferred'}), e.g. {examples}",
            rows_where(bad),
        )
    ]


def on_grid(periods: pd.Series, freq: str, anchor: pd.Timestamp | None = None) -> pd.Series:
    """True where a (non-missing) period lies on the ``freq`` grid.

    Anchored frequencies (``MS``, ``W-MON``...) only need the date to be on the offset and at
    midnight; fixed-length ones (``D``, ``7D``) also need a whole number of steps from
    ``anchor`` (the demand table's first period).
    """
    offset = pd.tseries.frequencies.to_offset(freq)
    uniq = pd.DatetimeIndex(periods.dropna().unique())
    if isinstance(offset, pd.tseries.offsets.Tick):
        base = (anchor if anchor is not None else uniq.min()) if len(uniq) else None
        ok = np.array([(d - base) % pd.Timedelta(offset) == pd.Timedelta(0) for d in uniq])
    else:
        ok = np.array([bool(offset.is_on_offset(d)) and d == d.normalize() for d in uniq])
    pos = uniq.get_indexer(periods)
    out = np.ones(len(periods), dtype=bool)
    out[pos >= 0] = ok[pos[pos >= 0]] if len(ok) else True
    return pd.Series(out, index=periods.index)


def finite_issues(values: pd.Series, table: str, column: str) -> list[Issue]:
    """``finite`` issue for +/-inf in a numeric column."""
    bad = pd.Series(np.isinf(values.to_numpy(dtype=float)), index=values.index)
    if not bad.any():
        return []
    return [Issue(table, column, "finite", f"{int(bad.sum())} infinite value(s)", rows_where(bad))]


def category_issues(
    values: pd.Series, allowed: Iterable, table: str, column: str, what: str = "allowed values"
) -> list[Issue]:
    """``unknown_category`` issue for values outside ``allowed`` (missing values are skipped)."""
    allowed = {str(a) for a in allowed}
    bad = values.notna() & ~values.astype(str).isin(allowed)
    if not bad.any():
        return []
    examples = ", ".join(values[bad].astype(str).unique()[:5])
    return [
        Issue(
            table,
            column,
            "unknown_category",
            f"{int(bad.sum())} value(s) not among the {what}, e.g. {examples}",
            rows_where(bad),
        )
    ]
