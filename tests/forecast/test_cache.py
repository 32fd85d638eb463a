"""CachedForecaster: a repeated request reads the stored table; data or config changes miss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from stockcast.baselines import MovingAverageBaseline
from stockcast.forecast.cache import BackgroundFill, CachedForecaster, fill_cache, forecaster_config
from stockcast.forecast.protocol import Forecaster, cross_validate


def _panel(n_series: int = 3, periods: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_series):
        for t in range(periods):
            rows.append(
                {
                    "item_id": f"i{s}",
                    "location_id": "L",
                    "period": pd.Timestamp("2024-01-01") + pd.DateOffset(months=t),
                    "time_idx": t,
                    "demand": float(rng.poisson(20 * (s + 1))),
                }
            )
    return pd.DataFrame(rows)


@dataclass
class Counting(MovingAverageBaseline):
    """A moving average that counts its fits."""

    name: str = "ma"
    calls: int = 0

    def config(self):
        return {k: v for k, v in super().config().items() if k != "calls"}

    def forecast(self, panel, origins, horizon, quantiles=None):
        self.calls += 1
        return super().forecast(panel, origins, horizon, quantiles)


def test_second_identical_call_reads_the_file(tmp_path):
    panel = _panel()
    inner = Counting(window=3)
    cached = CachedForecaster(inner, tmp_path / "cache")
    assert isinstance(cached, Forecaster) and cached.name == "ma"
    first = cached.forecast(panel, [15, 17], 3, [0.1, 0.5, 0.9])
    path = cached.last_path
    assert path.exists() and path.suffix == ".parquet" and path.parent == tmp_path / "cache"
    second = cached.forecast(panel, [15, 17], 3, [0.1, 0.5, 0.9])
    assert inner.calls == 1 and (cached.hits, cached.misses) == (1, 1)
    pd.testing.assert_frame_equal(first, second)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temp file left
    # the same through cross_validate, with another wrapper on the same folder
    again = CachedForecaster(Counting(window=3), tmp_path / "cache")
    cv = cross_validate([again], panel, [15, 17], 3, [0.1, 0.5, 0.9])
    assert again.hits == 1 and again.forecaster.calls == 0 and len(cv) == len(first)


def test_changed_data_misses(tmp_path):
    panel = _panel()
    inner = Counting(window=3)
    cached = CachedForecaster(inner, tmp_path)
    a = cached.forecast(panel, [15], 3)
    changed = panel.copy()
    changed.loc[changed["time_idx"] == 15, "demand"] += 100  # one period's demand
    b = cached.forecast(changed, [15], 3)
    assert inner.calls == 2 and cached.hits == 0
    assert not np.allclose(a["q0.5"], b["q0.5"])
    cached.forecast(panel, [15], 3)  # the first panel still hits
    assert inner.calls == 2 and cached.hits == 1


def test_changed_config_or_request_misses(tmp_path):
    panel = _panel()
    calls = 0
    for forecaster, args in [
        (Counting(window=3), ([15], 3, None)),
        (Counting(window=4), ([15], 3, None)),  # another field value
        (Counting(window=3, min_errors=5), ([15], 3, None)),
        (Counting(window=3, name="ma3"), ([15], 3, None)),
        (Counting(window=3), ([16], 3, None)),  # another origin
        (Counting(window=3), ([15], 2, None)),  # another horizon
        (Counting(window=3), ([15], 3, [0.5])),  # other levels
    ]:
        cached = CachedForecaster(forecaster, tmp_path)
        cached.forecast(panel, *args)
        calls += forecaster.calls
    assert calls == 7 and len(list(tmp_path.iterdir())) == 7
    extra = CachedForecaster(Counting(window=3), tmp_path, key_extra={"model_version": "2"})
    extra.forecast(panel, [15], 3)
    assert extra.misses == 1


def test_forecaster_without_configuration_is_refused(tmp_path):
    class Opaque:
        name = "opaque"

        def forecast(self, panel, origins, horizon, quantiles=None):
            raise AssertionError("never called")

    with pytest.raises(ValueError, match="cannot be keyed"):
        CachedForecaster(Opaque(), tmp_path)

    @dataclass
    class Plain:
        name: str = "plain"
        alpha: float = 0.5

    assert forecaster_config(Plain()) == {
        "class": f"{Plain.__module__}.{Plain.__qualname__}", "name": "plain", "alpha": 0.5,
    }  # fmt: skip


@dataclass
class Failing(MovingAverageBaseline):
    """A baseline whose fit fails (module level: a spawned process must import it)."""

    name: str = "failing"

    def forecast(self, panel, origins, horizon, quantiles=None):
        raise RuntimeError("no fit today")


@dataclass
class Slow(MovingAverageBaseline):
    """A baseline that takes far longer than a test may wait."""

    name: str = "slow"

    def forecast(self, panel, origins, horizon, quantiles=None):
        import time

        time.sleep(120)
        raise AssertionError("never reached")


def test_fill_cache_stores_what_later_requests_read(tmp_path):
    panel = _panel()
    seconds = fill_cache([MovingAverageBaseline(name="ma", window=3)], tmp_path, panel, [15, 17], 3, [0.1, 0.5, 0.9])
    assert set(seconds) == {"ma"} and seconds["ma"] >= 0
    later = CachedForecaster(MovingAverageBaseline(name="ma", window=3), tmp_path)
    table = later.forecast(panel, [15, 17], 3, [0.1, 0.5, 0.9])
    assert (later.hits, later.misses) == (1, 0)
    assert later.holds(panel, [15, 17], 3, [0.1, 0.5, 0.9]) and not later.holds(panel, [16], 3, None)
    pd.testing.assert_frame_equal(table, MovingAverageBaseline(name="ma", window=3).forecast(panel, [15, 17], 3, [0.1, 0.5, 0.9]))


def test_background_fill_runs_in_another_process_and_reports_failures(tmp_path):
    panel = _panel()
    job = BackgroundFill([MovingAverageBaseline(name="ma", window=3), Failing()], tmp_path, panel, [15], 3)
    seconds, error, waited = job.wait()
    # the first table is stored, the failure is reported as text, nothing is raised
    assert seconds == {} and error == "RuntimeError: no fit today" and waited >= 0
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.parquet")] == ["ma"]
    assert CachedForecaster(MovingAverageBaseline(name="ma", window=3), tmp_path).holds(panel, [15], 3)
    ok = BackgroundFill([MovingAverageBaseline(name="ma4", window=4)], tmp_path, panel, [15], 3)
    seconds, error, _ = ok.wait()
    assert error is None and set(seconds) == {"ma4"}


def test_background_fill_stop_ends_the_process(tmp_path):
    import time

    job = BackgroundFill([Slow()], tmp_path, _panel(), [15], 3)
    t0 = time.perf_counter()
    job.stop()
    assert time.perf_counter() - t0 < 30 and not job._process.is_alive()
    assert not list(tmp_path.iterdir())
