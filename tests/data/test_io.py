"""stockcast.data.io: generated data on demand and cached, paths, reading; unreadable files named."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stockcast import PROJECT_ROOT
from stockcast.data import io
from stockcast.data.io import (
    config_hash,
    generated_dir,
    materialize,
    read_source,
    read_tables,
    source_path,
    table_path,
)
from stockcast.data.panel import load_panel, to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.errors import DataValidationError


def tiny_generator(n: int = 3, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A generator returning a plain dict of tables (see test_generator_returning_dict)."""
    periods = pd.date_range("2024-01-01", periods=n, freq="MS")
    rng = np.random.default_rng(seed)
    return {"demand": pd.DataFrame({"sku": "a", "month": periods, "qty": rng.poisson(5, n)})}


# --------------------------------------------------------------------------- generated data
def test_synthetic_config_generates_and_loads(generated_spec, generated_panel):
    folder = generated_dir(generated_spec)
    assert folder.name == f"synthetic-{config_hash(generated_spec.generator)}"
    for table in ("demand", "prices", "weather", "locations", "economics", "suppliers", "lanes"):
        assert (folder / f"{table}.parquet").exists(), table
    for table in ("truth_demand", "truth_series", "truth_effects", "truth_lead_times"):
        assert (folder / f"{table}.parquet").exists(), table
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["params"]["n_items"] == 3 and manifest["rows"]["demand"] == 6 * 60
    assert len(generated_panel) == 6 * 60 and generated_panel["time_idx"].max() == 59
    assert generated_panel.groupby(["item_id", "location_id"]).ngroups == 6
    assert set(generated_spec.covariates) | set(generated_spec.calendar) <= set(generated_panel.columns)
    assert not generated_panel[generated_spec.covariates].isna().any().any()
    assert generated_spec.freq == "W-MON"  # interpolated from source.generator.freq


def test_generated_data_is_cached(generated_spec, generated_panel, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("generator called although the cache is complete")

    monkeypatch.setattr("stockcast.data.synthetic.generate", fail)
    again = load_panel(generated_spec)
    pd.testing.assert_frame_equal(again, generated_panel)


def test_other_generator_params_other_folder(generated_spec):
    other = dataclasses.replace(
        generated_spec,
        source={**generated_spec.source, "generator": {**generated_spec.generator, "seed": 1}},
    )
    assert generated_dir(other) != generated_dir(generated_spec)
    assert generated_dir(other).parent == generated_dir(generated_spec).parent


def test_incomplete_cache_is_regenerated(load_spec, tmp_path):
    spec = load_spec(
        "synthetic",
        f"source.cache_dir={tmp_path}",
        "source.generator.n_items=2",
        "source.generator.n_stores=1",
        "source.generator.n_dcs=1",
        "source.generator.periods=30",
    )
    folder = materialize(spec)
    (folder / "weather.parquet").unlink()
    assert materialize(spec) == folder
    assert (folder / "weather.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_generator_returning_dict(tmp_path):
    spec = DatasetSpec(
        name="tiny",
        source={
            "generator": {"_target_": f"{__name__}.tiny_generator", "n": 4},
            "cache_dir": str(tmp_path),
            "path": "demand.parquet",
        },
        freq="MS",
        columns={"item_id": "sku", "period": "month", "demand": "qty"},
        window={"max_encoder_length": 2, "min_encoder_length": 2, "max_prediction_length": 1},
    )
    panel = load_panel(spec)
    assert len(panel) == 4 and (panel["location_id"] == "all").all()


def test_cache_hash_tracks_generator_version(generated_spec, monkeypatch):
    before = config_hash(generated_spec.generator)
    monkeypatch.setattr("stockcast.data.synthetic.GENERATOR_VERSION", 999)
    assert config_hash(generated_spec.generator) != before
    assert io.DEFAULT_CACHE_DIR == "data/generated"


# --------------------------------------------------------------------------- reading
def test_read_source_returns_joined_source_schema(generated_spec, generated_panel):
    wide = read_source(generated_spec)
    assert list(wide.columns[:4]) == ["item_id", "location_id", "period", "demand"]
    assert set(generated_spec.required_source_columns) <= set(wide.columns)
    # the joined table is what the model's prediction input looks like: same panel
    pd.testing.assert_frame_equal(to_canonical(wide, generated_spec), generated_panel)


def test_read_source_raises_on_bad_covariate_table(load_spec, tmp_path):
    spec = load_spec("example_weekly")
    weather = pd.read_csv(PROJECT_ROOT / "data" / "examples" / "weather.csv")
    weather.iloc[:20].to_csv(tmp_path / "weather.csv", index=False)
    tables = {
        **spec.tables,
        "weather": {**spec.tables["weather"], "path": str(tmp_path / "weather.csv")},
    }
    with pytest.raises(DataValidationError, match=r"weather\.week: date_coverage"):
        read_source(dataclasses.replace(spec, tables=tables))


def test_stallion_read_source_unchanged(load_spec):
    spec = load_spec("stallion")
    pd.testing.assert_frame_equal(
        read_source(spec), pd.read_parquet(PROJECT_ROOT / "data" / "stallion.parquet")
    )
    assert set(read_tables(spec)) == {"demand"}


def test_missing_file_names_the_path(load_spec, tmp_path):
    spec = load_spec("example_weekly", f"source.path={tmp_path / 'nope.csv'}")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_panel(spec)


# --------------------------------------------------------------------------- unreadable files
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
