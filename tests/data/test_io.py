"""stockcast.data.io: files that cannot be read, or hold no rows, are named, never a traceback."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from stockcast.data.io import read_tables, source_path, table_path
from stockcast.data.panel import load_panel
from stockcast.errors import DataValidationError

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def bad_file(folder: Path, kind: str, header_of: Path) -> Path:
    path = folder / f"{kind}.csv"
    if kind == "binary":
        path.write_bytes(BINARY)
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # header only
        path.write_text(header_of.read_text().splitlines()[0] + "\n")
    return path


def pointing(spec, table: str, path: Path):
    """``spec`` with table ``table`` (``demand`` = the source) read from ``path``."""
    if table == "demand":
        return dataclasses.replace(spec, source={**spec.source, "path": str(path)})
    tables = copy.deepcopy(spec.tables)
    tables[table]["path"] = str(path)
    return dataclasses.replace(spec, tables=tables)


@pytest.mark.parametrize("table", ["demand", "weather", "products"])
@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("binary", r"is not utf-8 text .*a binary file\?"),
        ("empty", "is empty: no header and no rows"),
        ("header", r"has no rows \(columns: "),
    ],
)
def test_unreadable_or_empty_table_is_named(weekly_spec, tmp_path, table, kind, problem):
    original = source_path(weekly_spec) if table == "demand" else table_path(weekly_spec, table)
    path = bad_file(tmp_path, kind, original)
    spec = pointing(weekly_spec, table, path)
    with pytest.raises(DataValidationError, match=problem) as err:
        load_panel(spec)
    (issue,) = err.value.issues
    assert issue.table == table and issue.rule == "readable"
    assert str(path) in issue.message and "example_weekly" in issue.message


def test_parquet_that_is_not_parquet(stallion_spec, tmp_path):
    path = tmp_path / "stallion.parquet"
    path.write_text("sku,agency,date\nSKU_01,Agency_01,2013-01-01\n")
    with pytest.raises(DataValidationError, match=r"demand: readable: parquet file .* is not a "):
        read_tables(pointing(stallion_spec, "demand", path))


def test_header_only_csv_via_read_options(weekly_spec, tmp_path):
    """``read_options`` that leave no rows (here ``nrows: 0``) are reported the same way."""
    spec = dataclasses.replace(
        weekly_spec, source={**weekly_spec.source, "read_options": {"nrows": 0}}
    )
    with pytest.raises(DataValidationError, match="has no rows"):
        read_tables(spec)
    assert len(pd.read_csv(source_path(weekly_spec))) > 0
