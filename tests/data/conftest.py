"""Data-layer fixtures: the shipped data configs as specs, and tiny tables built once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.data.spec import DatasetSpec
from stockcast.data.synthetic import generate

CONF = PROJECT_ROOT / "conf" / "data"
EXAMPLES = PROJECT_ROOT / "data" / "examples"


def _load_spec(name: str, *overrides: str, **changes) -> DatasetSpec:
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    spec = instantiate(cfg)
    return dataclasses.replace(spec, **changes) if changes else spec


@pytest.fixture(scope="session")
def load_spec() -> Callable[..., DatasetSpec]:
    """``load_spec(name, *dotlist_overrides, **field_changes)``: ``conf/data/<name>.yaml``."""
    return _load_spec


@pytest.fixture(scope="session")
def stallion_spec() -> DatasetSpec:
    return _load_spec("stallion")


@pytest.fixture(scope="session")
def weekly_spec() -> DatasetSpec:
    """``conf/data/example_weekly.yaml``: three CSVs, day-first dates, gaps filled with 0."""
    return _load_spec("example_weekly")


@pytest.fixture(scope="session")
def stallion_raw() -> pd.DataFrame:
    return pd.read_parquet(PROJECT_ROOT / "data" / "stallion.parquet")


@pytest.fixture(scope="session")
def stallion_three(stallion_raw) -> pd.DataFrame:
    """Three Stallion series (180 rows) in canonical order (sku, agency, date). Copy to edit."""
    keys = stallion_raw[["agency", "sku"]].drop_duplicates().head(3)
    out = stallion_raw.merge(keys).sort_values(["sku", "agency", "date"])
    return out.reset_index(drop=True)


@pytest.fixture(scope="session")
def synthetic_spec() -> DatasetSpec:
    """``conf/data/synthetic.yaml`` as a spec (its mapping; nothing generated)."""
    return _load_spec("synthetic")


@pytest.fixture(scope="session")
def synthetic_tables() -> dict[str, pd.DataFrame]:
    """A tiny network (2 items x 2 stores x 20 weeks): demand and covariate tables. Copy to edit."""
    data = generate(n_items=2, n_stores=2, n_dcs=1, periods=20, horizon=2, seed=3, quantiles=None)
    return {"demand": data.demand, **data.covariates}


@pytest.fixture(scope="session")
def generated_spec(tmp_path_factory) -> DatasetSpec:
    """``data=synthetic`` at a reduced size, generated under a temporary cache folder."""
    cache = tmp_path_factory.mktemp("generated")
    return _load_spec(
        "synthetic",
        f"source.cache_dir={cache}",
        "source.generator.n_items=3",
        "source.generator.n_stores=2",
        "source.generator.n_dcs=1",
        "source.generator.periods=60",
    )


@pytest.fixture(scope="session")
def generated_panel(generated_spec) -> pd.DataFrame:
    return load_panel(generated_spec)
