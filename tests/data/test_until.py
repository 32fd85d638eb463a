"""The data as known on a date (``data.until``)."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra.utils import instantiate

from stockcast.data.panel import load_panel
from stockcast.errors import DataValidationError
from tests.conftest import compose_config


def test_until_keeps_only_the_data_known_then(tmp_path):
    cfg = compose_config("train", ["data.until=2016-06-15"], tmp_path)
    panel = load_panel(instantiate(cfg.data))
    assert panel["period"].max() == pd.Timestamp("2016-06-01")
    assert panel["time_idx"].min() == 0  # the calendar still starts at the first period


def test_until_before_the_data_names_the_table_and_column(tmp_path):
    cfg = compose_config("train", ["data.until=2010-01-01"], tmp_path)
    with pytest.raises(DataValidationError, match=r"demand.*date.*until=2010-01-01"):
        load_panel(instantiate(cfg.data))


def test_until_must_be_a_date(tmp_path):
    cfg = compose_config("train", ["data.until=soon"], tmp_path)
    with pytest.raises(Exception, match="until=.soon. is not a date"):
        instantiate(cfg.data)


