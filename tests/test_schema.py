"""The shared contracts: quantile naming, the forecast-table validator, season lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockcast.errors import DataValidationError
from stockcast.schema import (
    check_levels,
    non_crossing,
    periods_per_year,
    point_column,
    quantile_column,
    quantile_levels,
    season_length_for,
    validate_forecast_table,
)


def _table(**quantiles) -> pd.DataFrame:
    n = len(next(iter(quantiles.values())))
    return pd.DataFrame(
        {
            "item_id": ["a"] * n,
            "location_id": ["x"] * n,
            "period": pd.date_range("2024-01-01", periods=n, freq="MS"),
            "forecast_origin": pd.Timestamp("2023-12-01"),
            "horizon": range(1, n + 1),
            **quantiles,
        }
    )


def test_quantile_naming_round_trips():
    assert quantile_column(0.5) == "q0.5" and quantile_column(0.02) == "q0.02"
    t = _table(**{"q0.9": [2.0], "q0.1": [1.0], "q0.5": [1.5]})
    assert quantile_levels(t) == [0.1, 0.5, 0.9] and point_column(t) == "q0.5"
    assert check_levels(None)[0] == 0.02
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_levels([0.0, 0.5])


def test_validator_names_the_rows_at_fault():
    good = _table(**{"q0.1": [1.0, 2.0, 0.0], "q0.9": [2.0, 3.0, 0.0]})
    assert validate_forecast_table(good) is good
    bad = _table(**{"q0.1": [1.0, 5.0, -1.0], "q0.9": [2.0, 3.0, 0.0]})
    with pytest.raises(DataValidationError) as err:
        validate_forecast_table(bad, name="lightgbm forecast")
    text = str(err.value)
    assert "lightgbm forecast: non_crossing" in text and "[rows: 1]" in text
    assert "lightgbm forecast: non_negative" in text and "[rows: 2]" in text
    with pytest.raises(DataValidationError, match="horizon: missing_column"):
        validate_forecast_table(good.drop(columns="horizon"))
    np.testing.assert_array_equal(non_crossing([[3.0, -1.0, 2.0]]), [[0.0, 2.0, 3.0]])


def test_season_lengths_and_periods_per_year():
    assert season_length_for("MS") == 12 and season_length_for("W-MON") == 52
    assert season_length_for("2W") == 26 and season_length_for("D") == 7
    assert periods_per_year("W-MON") == 52 and periods_per_year("MS") == 12
    assert periods_per_year("D") == 365 and periods_per_year("QS") == 4
    with pytest.raises(ValueError, match="season_length"):
        season_length_for("min")
