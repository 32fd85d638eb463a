"""``auto`` settings resolve from the CPUs the process may use; bad ones name their key."""

import pytest

from stockcast import cpus
from stockcast.baselines import AutoETSBaseline, LightGBMBaseline
from stockcast.baselines.base import n_jobs


def test_auto_follows_the_usable_cpus(monkeypatch):
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1)
    assert cpus.loader_workers("auto") == 0  # one CPU: the loader would take the trainer's
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
    assert cpus.loader_workers("auto") == 1
    assert cpus.loader_workers(3) == 3 and cpus.loader_workers("0") == 0
    monkeypatch.setattr("stockcast.baselines.base.usable_cpus", lambda: 6)
    assert n_jobs("auto", "baseline 'lightgbm'") == 6 and n_jobs(2, "x") == 2
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
