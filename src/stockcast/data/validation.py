"""Table validation with pandera: every failure is collected and reported as an :class:`Issue`.

Checks that need more than one row at a time (gaps, static columns, period alignment)
live here too, so every table goes through one function, :func:`run_checks`, and a
single :class:`~stockcast.errors.DataValidationError` lists everything wrong at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
            Issue(table, column, "numeric", f"values are not numbers, e.g. {examples}", rows_where(bad))
        )
    return values.astype(float), issues
