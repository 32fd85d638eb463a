"""``auto`` settings resolve from the CPUs the process may use; bad ones name their key."""

import pytest

from stockcast import cpus
from stockcast.baselines import AutoETSBaseline, LightGBMBaseline
from stockcast.cpus import n_jobs


def test_auto_follows_the_usable_cpus(monkeypatch):
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1)
    assert cpus.loader_workers("auto") == 0  # one CPU: the loader would take the trainer's
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
    assert cpus.loader_workers("auto") == 1
    assert cpus.loader_workers(3) == 3 and cpus.loader_workers("0") == 0
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 6)
    assert n_jobs("auto", "baseline 'lightgbm'") == 6 and n_jobs(3, "x") == 3
    assert cpus.usable_cpus() >= 1


def test_bad_settings_name_their_key():
    with pytest.raises(ValueError, match=r"loader.num_workers='many'"):
        cpus.loader_workers("many")
    with pytest.raises(ValueError, match=r"loader.num_workers=-1"):
        cpus.loader_workers(-1)
    with pytest.raises(ValueError, match=r"baseline 'lightgbm'.n_jobs=0"):
        LightGBMBaseline(n_jobs=0)
    with pytest.raises(ValueError, match=r"baseline 'auto_ets'.n_jobs='all'"):
        AutoETSBaseline(n_jobs="all")


def test_threads_change_neither_the_forecasts_nor_the_cache_key():
    """n_jobs is an execution setting: LightGBM on 1 or 2 threads and AutoETS in 1 or 2
    processes give equal tables, so it is left out of the cache key (a table prefetched on
    one thread serves an evaluation configured with n_jobs=auto)."""
    import pandas as pd

    from tests.baselines.baseline_toys import SMALL_LGBM, SPEC, noisy_panel

    panel = noisy_panel()
    for make in (lambda j: LightGBMBaseline(spec=SPEC, n_jobs=j, **SMALL_LGBM),
                 lambda j: AutoETSBaseline(spec=SPEC, n_jobs=j, season_length=1)):
        one, two = make(1), make(2)
        assert one.config() == two.config() and "n_jobs" not in one.config()
        pd.testing.assert_frame_equal(one.forecast(panel, [27, 29], 3, [0.1, 0.5, 0.9]),
                                      two.forecast(panel, [27, 29], 3, [0.1, 0.5, 0.9]))
