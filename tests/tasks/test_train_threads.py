"""``torch_threads``: torch's default, a number, or the CPUs not busy when a training starts."""

from __future__ import annotations

import pytest
import torch

from stockcast.tasks.train import torch_threads


def test_null_leaves_torch_alone_and_numbers_are_taken_as_given():
    assert torch_threads(None) is None
    assert torch_threads(1) == 1 and torch_threads("3") == 3


def test_auto_takes_the_idle_cpus_at_least_one(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert torch_threads("auto", cpus=8, load=0.2) == 8   # a quiet node: torch's default
    assert torch_threads("auto", cpus=8, load=5.4) == 3
    assert torch_threads("auto", cpus=2, load=8.3) == 1   # a busy 2-core box
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert torch_threads("auto", cpus=16, load=0.0) == 2  # never more than torch's default


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, "2.0"])
def test_anything_else_names_the_key(bad):
    with pytest.raises(ValueError, match=r"torch_threads=.*null, auto or a positive number"):
        torch_threads(bad)
