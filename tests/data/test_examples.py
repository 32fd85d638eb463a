"""data/examples: the shipped CSVs load by config alone, and make_weekly_sales.py rebuilds them."""

from __future__ import annotations

import pandas as pd

from stockcast import PROJECT_ROOT
from stockcast.data.io import source_path
from stockcast.data.panel import load_panel


def test_example_weekly_csv_loads_by_config_alone(load_spec):
    spec = load_spec("example_weekly")
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
