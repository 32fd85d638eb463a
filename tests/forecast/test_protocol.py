"""The forecaster protocol and the one rolling-origin cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockcast.errors import DataValidationError
from stockcast.forecast.protocol import (
    Forecaster,
    attach_actuals,
    by_model,
    cross_validate,
    rolling_origins,
)
from stockcast.schema import FORECAST_KEYS, quantile_column


def _panel(n_series: int = 2, periods: int = 10) -> pd.DataFrame:
    rows = []
    for s in range(n_series):
        for t in range(periods):
            rows.append(
                {
                    "item_id": f"i{s}",
                    "location_id": "L",
                    "period": pd.Timestamp("2024-01-01") + pd.DateOffset(months=t),
                    "time_idx": t,
                    "demand": float(10 * (s + 1) + t),
                }
            )
    return pd.DataFrame(rows)


class LastValue:
    """A tiny forecaster: the last observed value, +-1 for the 0.1/0.9 quantiles."""

    def __init__(self, name: str = "last", skip: str | None = None, cross: bool = False):
        self.name, self.skip, self.cross, self.seen = name, skip, cross, []

    def forecast(self, panel, origins, horizon, quantiles=None):
        out = []
        end = int(panel.time_idx.max())
        for o in origins:
            self.seen.append(int(panel.loc[panel.time_idx <= o, "time_idx"].max()))
            for (item, loc), g in panel.groupby(["item_id", "location_id"]):
                if item == self.skip:
                    continue
                last = float(g.loc[g.time_idx == o, "demand"].iloc[0])
                for h in range(1, min(horizon, end - o) + 1):
                    row = g[g.time_idx == o + h].iloc[0]
                    out.append(
                        {
                            "item_id": item,
                            "location_id": loc,
                            "period": row.period,
                            "forecast_origin": g.loc[g.time_idx == o, "period"].iloc[0],
                            "horizon": h,
                            "q0.1": last + (1 if self.cross else -1),
                            "q0.5": last,
                            "q0.9": last + 1,
                        }
                    )
        return pd.DataFrame(out)


def test_rolling_origins_stay_inside_the_window():
    assert rolling_origins(54, 59, 3, 2) == [53, 55, 57]
    assert rolling_origins(54, 59, 10, 3) == [53, 56]
    assert rolling_origins(48, 50, 3, 2) == [47, 49]
    with pytest.raises(ValueError, match="n_origins and stride"):
        rolling_origins(5, 9, 0, 1)


def test_cross_validate_stacks_models_on_common_rows_with_actuals():
    panel = _panel()
    full, partial = LastValue("full"), LastValue("partial", skip="i1")
    assert isinstance(full, Forecaster)
    cv = cross_validate([full, partial], panel, [5, 7], 3)
    assert list(cv.columns[: len(FORECAST_KEYS) + 1]) == ["model", *FORECAST_KEYS]
    # i1 is forecast by one model only: dropped for both, so both score identical rows
    assert set(cv.item_id) == {"i0"}
    assert cv.groupby("model").size().to_dict() == {"full": 5, "partial": 5}  # 3 + 2 (end)
    # actuals attached; the median of the last-value forecaster is the origin's demand
    row = cv[(cv.model == "full") & (cv.horizon == 2)].iloc[0]
    assert row.demand == pytest.approx(10 + 5 + 2) and row["q0.5"] == pytest.approx(15)
    assert full.seen == [5, 7]
    tables = by_model(cv)
    assert list(tables) == ["full", "partial"] and "model" not in tables["full"]
    everything = cross_validate([full, partial], panel, [5], 3, common_rows=False)
    assert set(everything[everything.model == "full"].item_id) == {"i0", "i1"}


def test_cross_validate_rejects_bad_tables_and_names():
    panel = _panel()
    with pytest.raises(DataValidationError, match=r"crossing.*non_crossing"):
        cross_validate([LastValue("crossing", cross=True)], panel, [5], 2)
    with pytest.raises(ValueError, match="duplicate forecaster name"):
        cross_validate([LastValue(), LastValue()], panel, [5], 2)
    with pytest.raises(ValueError, match="no origin"):
        cross_validate([LastValue()], panel, [], 2)


def test_attach_actuals_leaves_the_future_missing():
    panel = _panel(1, 6)
    table = pd.DataFrame(
        {
            "item_id": ["i0", "i0"],
            "location_id": ["L", "L"],
            "period": [panel.period.iloc[5], panel.period.iloc[5] + pd.DateOffset(months=1)],
            quantile_column(0.5): [1.0, 2.0],
        }
    )
    out = attach_actuals(table, panel)
    assert out.demand.iloc[0] == 15.0 and np.isnan(out.demand.iloc[1])
