"""ForecastBundle.forecast reads only the periods a forecast needs, with the same result."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hydra.utils import instantiate

from stockcast.data.panel import load_panel, select_series
from stockcast.forecast import bundle as bundle_module
from stockcast.forecast.scenarios import as_of
from stockcast.schema import TIME_IDX
from stockcast.tracking.registry import load_bundle, resolve_model


def test_forecasts_from_the_recent_window_equal_those_from_the_whole_history(smoke_train, monkeypatch):
    result, cfg = smoke_train
    bundle = load_bundle(resolve_model(result.model_version, cfg.model_name))
    assert bundle.calibration is not None and bundle.calibration.scale == "encoder_mean"
    panel = select_series(load_panel(instantiate(cfg.data)), None, cfg.max_series)
    horizon = bundle.max_horizon
    last = int(panel[TIME_IDX].max())
    origins = [last - horizon - 10, last - horizon - 4, last - horizon]
    # what forecast() did before: the whole history up to each origin
    whole = pd.concat(
        [bundle.forecast_last(as_of(panel, bundle.spec, o, horizon), horizon) for o in origins],
        ignore_index=True,
    )
    seen = []
    real = bundle_module.as_of
    monkeypatch.setattr(bundle_module, "as_of", lambda p, *a: seen.append(p[TIME_IDX].min()) or real(p, *a))
    recent = bundle.forecast(panel, origins, horizon)
    pd.testing.assert_frame_equal(recent, whole)
    context = bundle.context_periods()
    assert context == max(int(bundle.dataset_parameters["max_encoder_length"]), bundle.calibration.window)
    assert seen == [o - context + 1 for o in origins]  # only the recent window was read


def test_missing_demand_in_the_history_reads_everything():
    panel = pd.DataFrame({TIME_IDX: np.arange(10), "demand": [1.0] * 10})
    assert len(bundle_module._recent(panel, 7, 3)) == 5  # time_idx 5..9
    holes = panel.assign(demand=[1.0, np.nan] + [1.0] * 8)
    assert len(bundle_module._recent(holes, 7, 3)) == 10
    future = panel.assign(demand=[1.0] * 8 + [np.nan] * 2)  # after the origin: not history
    assert len(bundle_module._recent(future, 7, 3)) == 5
