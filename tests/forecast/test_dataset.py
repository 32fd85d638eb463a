"""stockcast.forecast.dataset: a data config's roles become TimeSeriesDataSet arguments."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.data.spec import DatasetSpec


@pytest.fixture(scope="module")
def generated_spec(tmp_path_factory) -> DatasetSpec:
    """``data=synthetic`` at a reduced size, generated under a temporary cache folder."""
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "data" / "synthetic.yaml")
    overrides = [
        f"source.cache_dir={tmp_path_factory.mktemp('generated')}",
        "source.generator.n_items=3",
        "source.generator.n_stores=2",
        "source.generator.n_dcs=1",
        "source.generator.periods=60",
    ]
    return instantiate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides)))


@pytest.fixture(scope="module")
def generated_panel(generated_spec) -> pd.DataFrame:
    return load_panel(generated_spec)


def test_synthetic_config_builds_a_timeseries_dataset(generated_spec, generated_panel):
    from pytorch_forecasting import TimeSeriesDataSet

    from stockcast.forecast.dataset import dataset_kwargs

    kwargs = dataset_kwargs(generated_spec)
    ds = TimeSeriesDataSet(generated_panel, **kwargs)
    assert len(ds) > 0
    assert {"sentiment", "market_index"} <= set(ds.time_varying_unknown_reals)
    assert {"price", "promo", "temperature_forecast", "holiday"} <= set(ds.time_varying_known_reals)
    assert {"category", "region"} <= set(ds.static_categoricals)
    assert generated_spec.window["max_prediction_length"] == generated_spec.split["test_periods"] == 8


def test_the_absolute_time_index_input_can_be_left_out(generated_spec, generated_panel):
    """``dataset.add_time_idx: false``: the samples carry only the relative time index."""
    import dataclasses

    from pytorch_forecasting import TimeSeriesDataSet

    from stockcast.forecast.dataset import dataset_kwargs
    from stockcast.schema import TIME_IDX

    assert TIME_IDX in dataset_kwargs(generated_spec)["time_varying_known_reals"]
    relative = dataclasses.replace(generated_spec, dataset={**generated_spec.dataset, "add_time_idx": False})
    kwargs = dataset_kwargs(relative)
    assert "add_time_idx" not in kwargs
    ds = TimeSeriesDataSet(generated_panel, **kwargs)
    assert TIME_IDX not in ds.reals and "relative_time_idx" in ds.reals
    assert {"price", "promo"} <= set(ds.time_varying_known_reals)
