"""stockcast.forecast.bundle.example_input: the registered model's input example, day-first dates."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.io import read_source
from stockcast.data.panel import to_canonical
from stockcast.forecast.bundle import example_input, load_checkpoint

EXAMPLES = PROJECT_ROOT / "data" / "examples"


@pytest.fixture(scope="module")
def day_first(tmp_path_factory):
    """example_weekly with week_start written day/month/2-digit-year (``%d/%m/%y``)."""
    sales = pd.read_csv(EXAMPLES / "weekly_sales.csv")
    week = pd.to_datetime(sales["week_start"], format="%d/%m/%Y")
    sales["week_start"] = week.dt.strftime("%d/%m/%y")
    path = tmp_path_factory.mktemp("day_first") / "weekly_sales.csv"
    sales.to_csv(path, index=False)
    spec = instantiate(OmegaConf.load(PROJECT_ROOT / "conf" / "data" / "example_weekly.yaml"))
    source = {**spec.source, "path": str(path), "date_format": "%d/%m/%y"}
    return dataclasses.replace(spec, source=source), sales.assign(_week=week)


def test_example_input_takes_each_series_latest_periods(day_first):
    spec, sales = day_first
    n_history, horizon = 26, 8
    example = example_input(read_source(spec), spec, 2, n_history, horizon)
    weeks = pd.to_datetime(example["week_start"], format="%d/%m/%y")
    assert example.groupby(["store", "product"]).ngroups == 2
    for (store, product), rows in example.groupby(["store", "product"], sort=False):
        mine = weeks[rows.index]
        assert mine.is_monotonic_increasing and mine.is_unique  # in period order
        series = sales[(sales["store"] == store) & (sales["product"] == product)]
        latest = series["_week"].sort_values().tail(n_history + horizon)
        assert list(mine) == list(latest)  # contiguous: the series' last rows
        future = rows["units_sold"].isna()
        assert future.sum() == horizon and future.iloc[-horizon:].all()
    # contiguous per series in the table itself
    blocks = (example[["store", "product"]] != example[["store", "product"]].shift()).any(axis=1)
    assert blocks.sum() == 2


def test_example_input_round_trips_through_to_canonical(day_first):
    spec, _ = day_first
    example = example_input(read_source(spec), spec, 2, 26, 8)
    panel = to_canonical(example, spec, allow_future=True)
    for _, g in panel.groupby(["item_id", "location_id"]):
        assert g["time_idx"].diff().dropna().eq(1).all()
        assert g["demand"].iloc[-8:].isna().all() and g["demand"].iloc[:-8].notna().all()


def test_example_input_restricted_to_given_series(day_first):
    spec, _ = day_first
    raw = read_source(spec)
    example = example_input(raw, spec, 2, 4, 1, series=[("P1002", "S02"), ("P9999", "S01")])
    assert set(zip(example["product"], example["store"], strict=True)) == {("P1002", "S02")}


class _NoModel:
    """Stands in for the TFT: ``prepare`` validates inputs against the dataset parameters only."""

    def eval(self):
        return self


def test_prepare_accepts_the_example_of_the_trained_series(day_first):
    from stockcast.data.panel import load_panel
    from stockcast.forecast.bundle import ForecastBundle
    from stockcast.forecast.dataset import TimeSplit, training_dataset

    spec, _ = day_first
    panel = load_panel(spec)
    training = training_dataset(panel, spec, TimeSplit.from_panel(panel, spec))
    series = panel[["item_id", "location_id"]].drop_duplicates().to_numpy().tolist()
    bundle = ForecastBundle(
        _NoModel(), training.get_parameters(), spec, panel["period"].min(), series
    )
    example = example_input(read_source(spec), spec, 2, 26, 8, series=series[3:])
    canonical, horizon = bundle.prepare(example)
    assert horizon == 8 and canonical.groupby(["item_id", "location_id"]).ngroups == 2
    assert {tuple(s) for s in canonical[["item_id", "location_id"]].to_numpy()} <= {
        tuple(s) for s in series[3:5]
    }


def test_specs_saved_before_plausibility_load_without_its_rules(day_first):
    from stockcast.data.spec import DatasetSpec
    from stockcast.forecast.bundle import saved_spec

    spec, _ = day_first
    old = spec.to_dict()
    del old["plausibility"], old["short_series"]
    assert DatasetSpec(**old).value_rules() != {}
    assert saved_spec(old).value_rules() == {}
    assert saved_spec(spec.to_dict()).value_rules() == spec.value_rules()


def test_one_dataset_for_all_origins_equals_forecasting_each_origin_alone(smoke_train):
    """The protocol forecast (one window dataset for every origin) gives exactly what the model
    gives from each origin's own view of the panel (nothing after the origin but known
    covariates), including origins whose horizon the panel's end truncates."""
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.scenarios import as_of
    from stockcast.tracking.registry import load_bundle, resolve_model

    result, _ = smoke_train
    bundle = load_bundle(resolve_model(result.model_version, "stockcast-tft"))
    panel = select_series(load_panel(bundle.spec), None, 12)
    end = int(panel.time_idx.max())
    origins = [50, 53, 55, end - 1]
    together = bundle.forecast(panel, origins, 3)
    alone = pd.concat(
        [bundle.forecast_last(as_of(panel, bundle.spec, o, min(3, end - o)), min(3, end - o)) for o in origins],
        ignore_index=True,
    ).sort_values(["forecast_origin", "item_id", "location_id", "horizon"], ignore_index=True)
    assert len(together) == 12 * (3 + 3 + 3 + 1)
    pd.testing.assert_frame_equal(together, alone, check_exact=False, rtol=1e-5, atol=1e-4)


def test_an_ensemble_averages_its_members_quantiles(smoke_train):
    from stockcast.data.panel import load_panel, select_series
    from stockcast.forecast.bundle import ForecastBundle
    from stockcast.tracking.registry import load_bundle, resolve_model

    result, _ = smoke_train
    one = load_bundle(resolve_model(result.model_version, "stockcast-tft")).uncalibrated()
    other = ForecastBundle(load_checkpoint(result.best_checkpoint), one.dataset_parameters, one.spec,
                           one.calendar_start, one.series)
    shifted = copy.deepcopy(other.model)
    with torch.no_grad():
        shifted.output_layer.bias += 0.5  # a different member
    member = ForecastBundle(shifted, one.dataset_parameters, one.spec, one.calendar_start, one.series)
    pair = ForecastBundle([one.model, shifted], one.dataset_parameters, one.spec, one.calendar_start, one.series)
    panel = select_series(load_panel(one.spec), None, 12)
    a, b, ab = (m.forecast(panel, [56], 3) for m in (one, member, pair))
    cols = [c for c in a.columns if c.startswith("q")]
    mean = (a[cols].to_numpy() + b[cols].to_numpy()) / 2
    np.testing.assert_allclose(ab[cols].to_numpy(), np.sort(np.clip(mean, 0, None), axis=1), rtol=1e-5)
    assert not np.allclose(a[cols].to_numpy(), b[cols].to_numpy())
