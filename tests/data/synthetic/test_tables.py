"""stockcast.data.synthetic.tables: every table written as parquet plus a manifest."""

from __future__ import annotations

import pandas as pd

from stockcast.data.synthetic import generate, write


def test_write_round_trip(tmp_path):
    d = generate(n_items=2, n_stores=2, n_dcs=1, periods=12, horizon=2, seed=4)
    paths = write(d, tmp_path)
    assert (tmp_path / "manifest.json").exists() and set(paths) == {*d.tables(), "manifest"}
    for name, frame in d.tables().items():
        back = pd.read_parquet(paths[name])
        pd.testing.assert_frame_equal(back, frame, check_dtype=False, obj=name)
