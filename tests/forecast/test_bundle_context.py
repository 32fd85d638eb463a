"""ForecastBundle.forecast reads only the periods a forecast needs, with the same result."""

from __future__ import annotations

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
    # each origin alone, from the whole history up to it
    whole = pd.concat(
        [bundle.forecast_last(as_of(panel, bundle.spec, o, horizon), horizon) for o in origins],
        ignore_index=True,
    ).sort_values(["forecast_origin", "item_id", "location_id", "horizon"], ignore_index=True)
    seen = []
    real = bundle_module.TimeSeriesDataSet.from_parameters

    def spy(params, data, **kw):
        if not kw.get("predict", False):
            seen.append(int(data[TIME_IDX].min()))
        return real(params, data, **kw)

    monkeypatch.setattr(bundle_module.TimeSeriesDataSet, "from_parameters", spy)
    recent = bundle.forecast(panel, origins, horizon)
    pd.testing.assert_frame_equal(recent, whole, check_exact=False, rtol=1e-6)
    context = bundle.context_periods()
    assert context == max(int(bundle.dataset_parameters["max_encoder_length"]), bundle.calibration.window)
    assert seen == [origins[0] - context + 1]  # one dataset, from the recent window only
