"""stockcast.data.synthetic.generator: seeded, validated arguments, 10,000 item-locations fast."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from stockcast.data.synthetic import QUANTILES, generate, write


def test_same_seed_same_tables_other_seed_other_data():
    a = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=5)
    b = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=5)
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], obj=name)
    c = generate(n_items=3, n_stores=2, n_dcs=1, periods=30, seed=6)
    assert not np.array_equal(a.demand["demand"], c.demand["demand"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_items": 0}, ">= 1"),
        ({"n_dcs": 5, "n_stores": 2}, "cannot exceed"),
        ({"periods": 1}, "periods"),
        ({"intermittent_share": 2.0}, "intermittent_share"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(**kwargs)


def test_ten_thousand_item_locations_without_quantiles():
    t0 = time.perf_counter()
    d = generate(n_items=200, n_stores=50, n_dcs=5, periods=156, quantiles=None)
    elapsed = time.perf_counter() - t0
    assert len(d.demand) == 10_000 * 156
    assert d.demand.groupby(["item_id", "location_id"], observed=True).ngroups == 10_000
    assert len(d.supply["economics"]) == 200 * 55
    assert elapsed < 60


@pytest.mark.slow
def test_ten_thousand_item_locations_with_truth_quantiles(tmp_path):
    d = generate(n_items=200, n_stores=50, n_dcs=5, periods=156)
    assert len(d.truth["truth_demand"]) == 10_000 * 164
    assert not d.truth["truth_demand"][[f"q{q:g}" for q in QUANTILES]].isna().any().any()
    write(d, tmp_path)
    assert (tmp_path / "truth_demand.parquet").stat().st_size > 0
