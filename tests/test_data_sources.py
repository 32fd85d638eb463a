"""Multi-table sources: generated data on demand, caching, config-only onboarding of CSVs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data import io
from stockcast.data.io import (
    config_hash,
    generated_dir,
    materialize,
    read_source,
    read_tables,
    source_path,
)
from stockcast.data.panel import load_panel, to_canonical
from stockcast.data.spec import DatasetSpec
from stockcast.errors import DataValidationError

CONF = PROJECT_ROOT / "conf" / "data"


def spec_from_yaml(name: str, *overrides: str) -> DatasetSpec:
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return instantiate(cfg)


def tiny_generator(n: int = 3, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A generator returning a plain dict of tables (see test_generator_returning_dict)."""
    periods = pd.date_range("2024-01-01", periods=n, freq="MS")
    rng = np.random.default_rng(seed)
    return {"demand": pd.DataFrame({"sku": "a", "month": periods, "qty": rng.poisson(5, n)})}


@pytest.fixture(scope="module")
def syn_spec(tmp_path_factory) -> DatasetSpec:
    """``data=synthetic`` at a reduced size, generated under a temporary cache folder."""
    cache = tmp_path_factory.mktemp("generated")
    return spec_from_yaml(
        "synthetic",
        f"source.cache_dir={cache}",
        "source.generator.n_items=3",
        "source.generator.n_stores=2",
        "source.generator.n_dcs=1",
        "source.generator.periods=60",
    )


@pytest.fixture(scope="module")
def syn_panel(syn_spec) -> pd.DataFrame:
    return load_panel(syn_spec)


def test_synthetic_config_generates_and_loads(syn_spec, syn_panel):
    folder = generated_dir(syn_spec)
    assert folder.name == f"synthetic-{config_hash(syn_spec.generator)}"
    for table in ("demand", "prices", "weather", "locations", "economics", "suppliers", "lanes"):
        assert (folder / f"{table}.parquet").exists(), table
    for table in ("truth_demand", "truth_series", "truth_effects", "truth_lead_times"):
        assert (folder / f"{table}.parquet").exists(), table
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["params"]["n_items"] == 3 and manifest["rows"]["demand"] == 6 * 60
    assert len(syn_panel) == 6 * 60 and syn_panel["time_idx"].max() == 59
    assert syn_panel.groupby(["item_id", "location_id"]).ngroups == 6
    assert set(syn_spec.covariates) | set(syn_spec.calendar) <= set(syn_panel.columns)
    assert not syn_panel[syn_spec.covariates].isna().any().any()
    assert syn_spec.freq == "W-MON"  # interpolated from source.generator.freq


def test_generated_data_is_cached(syn_spec, syn_panel, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("generator called although the cache is complete")

    monkeypatch.setattr("stockcast.data.synthetic.generate", fail)
    again = load_panel(syn_spec)
    pd.testing.assert_frame_equal(again, syn_panel)


def test_other_generator_params_other_folder(syn_spec):
    other = dataclasses.replace(
        syn_spec,
        source={**syn_spec.source, "generator": {**syn_spec.generator, "seed": 1}},
    )
    assert generated_dir(other) != generated_dir(syn_spec)
    assert generated_dir(other).parent == generated_dir(syn_spec).parent


def test_incomplete_cache_is_regenerated(tmp_path):
    spec = spec_from_yaml(
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
            "generator": {"_target_": "tests.test_data_sources.tiny_generator", "n": 4},
            "cache_dir": str(tmp_path),
            "path": "demand.parquet",
        },
        freq="MS",
        columns={"item_id": "sku", "period": "month", "demand": "qty"},
        window={"max_encoder_length": 2, "min_encoder_length": 2, "max_prediction_length": 1},
    )
    panel = load_panel(spec)
    assert len(panel) == 4 and (panel["location_id"] == "all").all()


def test_read_source_returns_joined_source_schema(syn_spec, syn_panel):
    wide = read_source(syn_spec)
    assert list(wide.columns[:4]) == ["item_id", "location_id", "period", "demand"]
    assert set(syn_spec.required_source_columns) <= set(wide.columns)
    # the joined table is what the model's prediction input looks like: same panel
    pd.testing.assert_frame_equal(to_canonical(wide, syn_spec), syn_panel)


def test_read_source_raises_on_bad_covariate_table(tmp_path):
    spec = spec_from_yaml("example_weekly")
    weather = pd.read_csv(PROJECT_ROOT / "data" / "examples" / "weather.csv")
    weather.iloc[:20].to_csv(tmp_path / "weather.csv", index=False)
    tables = {
        **spec.tables,
        "weather": {**spec.tables["weather"], "path": str(tmp_path / "weather.csv")},
    }
    with pytest.raises(DataValidationError, match=r"weather\.week: date_coverage"):
        read_source(dataclasses.replace(spec, tables=tables))


def test_stallion_read_source_unchanged():
    spec = spec_from_yaml("stallion")
    pd.testing.assert_frame_equal(
        read_source(spec), pd.read_parquet(PROJECT_ROOT / "data" / "stallion.parquet")
    )
    assert set(read_tables(spec)) == {"demand"}


def test_missing_file_names_the_path(tmp_path):
    spec = spec_from_yaml("example_weekly", f"source.path={tmp_path / 'nope.csv'}")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_panel(spec)


def test_example_weekly_csv_loads_by_config_alone():
    spec = spec_from_yaml("example_weekly")
    raw = pd.read_csv(source_path(spec))
    assert list(raw.columns) == [
        "store",
        "product",
        "week_start",
        "units_sold",
        "price",
        "on_promo",
    ]
    panel = load_panel(spec)
    assert panel.groupby(["item_id", "location_id"]).ngroups == 12
    assert len(panel) == 12 * 104 > len(raw)  # weeks missing from the export are filled...
    filled = len(panel) - len(raw)
    assert (panel["demand"] == 0).sum() >= filled  # ...with zero sales (gaps: zero)
    assert panel["period"].min() == pd.Timestamp("2022-01-03")
    assert panel["period"].dt.dayofweek.eq(0).all()
    assert not panel[["temperature_forecast", "category", "price"]].isna().any().any()
    assert set(panel["category"]) <= {"beverages", "snacks", "dairy", "household"}


def test_example_csvs_are_small_and_reproducible(tmp_path):
    import importlib.util

    path = PROJECT_ROOT / "data" / "examples" / "make_weekly_sales.py"
    module_spec = importlib.util.spec_from_file_location("make_weekly_sales", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    written = module.main(tmp_path)
    for name, fresh in written.items():
        shipped = PROJECT_ROOT / "data" / "examples" / fresh.name
        assert shipped.read_bytes() == fresh.read_bytes(), name
    total = sum(p.stat().st_size for p in (PROJECT_ROOT / "data" / "examples").glob("*.csv"))
    assert total < 200_000


def test_synthetic_config_builds_a_timeseries_dataset(syn_spec, syn_panel):
    from pytorch_forecasting import TimeSeriesDataSet

    from stockcast.forecast.dataset import dataset_kwargs

    kwargs = dataset_kwargs(syn_spec)
    ds = TimeSeriesDataSet(syn_panel, **kwargs)
    assert len(ds) > 0
    assert {"sentiment", "market_index"} <= set(ds.time_varying_unknown_reals)
    assert {"price", "promo", "temperature_forecast", "holiday"} <= set(ds.time_varying_known_reals)
    assert {"category", "region"} <= set(ds.static_categoricals)
    assert syn_spec.window["max_prediction_length"] == syn_spec.split["test_periods"] == 8


def test_cache_hash_tracks_generator_version(syn_spec, monkeypatch):
    before = config_hash(syn_spec.generator)
    monkeypatch.setattr("stockcast.data.synthetic.GENERATOR_VERSION", 999)
    assert config_hash(syn_spec.generator) != before
    assert io.DEFAULT_CACHE_DIR == "data/generated"
