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


def _examples(values: pd.Series, mask: pd.Series) -> str:
    return ", ".join(f"{v:g}" for v in values[mask].drop_duplicates().head(5))


def bound_issues(
    values: pd.Series,
    table: str,
    column: str,
    rules: dict[str, float],
    note: str = "",
    setting: str | None = None,
) -> list[Issue]:
    """``min`` / ``max`` issues for values outside ``rules``' bounds (missing values skipped).

    Args:
        values: Numeric values (row labels are the rows reported).
        table: Table named in the issue.
        column: Column named in the issue.
        rules: Plausibility rules of the column (``min``, ``max``; others ignored).
        note: Appended to the message (e.g. which table the rows belong to).
        setting: Config key to change the rule, named in the message (default
            ``data.plausibility.<column>``).
    """
    setting = setting or f"data.plausibility.{column}"
    issues = []
    for rule, bad, text in (
        ("min", lambda v, b: v < b, "below"),
        ("max", lambda v, b: v > b, "above"),
    ):
        if rule not in rules:
            continue
        mask = bad(values, rules[rule]).fillna(False).astype(bool)
        if mask.any():
            name = "non_negative" if rule == "min" and rules[rule] == 0 else f"plausible_{rule}"
            issues.append(
                Issue(
                    table,
                    column,
                    name,
                    f"{int(mask.sum())} value(s) {text} {rules[rule]:g}, e.g. "
                    f"{_examples(values, mask)}{note} (rule {setting}.{rule})",
                    rows_where(mask),
                )
            )
    return issues


def spike_issues(
    values: pd.Series,
    keys: pd.DataFrame | None,
    table: str,
    column: str,
    rules: dict[str, float],
    note: str = "",
    setting: str | None = None,
) -> list[Issue]:
    """``plausible_spike`` issue for values far outside their own series' range.

    A value is flagged when it exceeds ``spike x max(1, q)``, ``q`` being the
    ``spike_quantile`` quantile (default 0.9) of its series' values. A high quantile is
    barely moved by a few wild values (up to a tenth of a series at 0.9), and the floor of 1
    keeps series that mostly sell nothing from flagging ordinary sales. The shipped datasets
    peak at under 40 x their own 0.9 quantile; the default ``spike`` is 100.

    Args:
        values: Numeric values (row labels are the rows reported).
        keys: Series key columns, aligned with ``values`` (``None``: one series).
        table: Table named in the issue.
        column: Column named in the issue.
        rules: Plausibility rules of the column (``spike``, ``spike_quantile``).
        note: Appended to the message.
        setting: Config key of the rule, named in the message.
    """
    if "spike" not in rules:
        return []
    setting = setting or f"data.plausibility.{column}"
    k, q = rules["spike"], rules.get("spike_quantile", 0.9)
    if keys is None or keys.shape[1] == 0:
        codes = np.zeros(len(values), dtype=np.int64)
    else:
        codes = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    level = values.groupby(codes).quantile(q)
    threshold = k * np.maximum(level.reindex(codes).to_numpy(dtype=float), 1.0)
    mask = pd.Series(values.to_numpy(dtype=float) > threshold, index=values.index)
    if not mask.any():
        return []
    first = int(np.flatnonzero(mask.to_numpy())[0])
    series = "" if keys is None or keys.shape[1] == 0 else " of " + "@".join(
        str(v) for v in keys.iloc[first]
    )
    n_series = len(np.unique(codes[mask.to_numpy()]))
    return [
        Issue(
            table,
            column,
            "plausible_spike",
            f"{int(mask.sum())} value(s) in {n_series} series above {k:g} x max(1, the "
            f"series' own {q:g} quantile), e.g. {values.iloc[first]:g} in row {values.index[first]}"
            f"{series} (limit {threshold[first]:g}){note}; if real, raise {setting}.spike "
            "or set it to off",
            rows_where(mask),
        )
    ]
