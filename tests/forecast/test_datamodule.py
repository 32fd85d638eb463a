"""stockcast.forecast.datamodule: one fingerprint per rank, checked against rank 0's in setup.

The collective is the strategy's ``broadcast`` (gloo/NCCL under DDP); here a stand-in strategy
answers each source rank with that rank's fingerprint. tests/tasks/test_ddp.py runs the real one.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.forecast.datamodule import TFTDataModule
from stockcast.forecast.dataset import TimeSplit


@pytest.fixture(scope="module")
def panel_spec(tmp_path_factory):
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "data" / "synthetic.yaml")
    overrides = [
        f"source.cache_dir={tmp_path_factory.mktemp('generated')}",
        "source.generator.n_items=3",
        "source.generator.n_stores=2",
        "source.generator.n_dcs=1",
        "source.generator.periods=104",  # every event once in training
    ]
    spec = instantiate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides)))
    return load_panel(spec), spec


def _module(panel, spec) -> TFTDataModule:
    return TFTDataModule(panel, spec, TimeSplit.from_panel(panel, spec), batch_size=8)


def _attach(module: TFTDataModule, by_rank: list[str], rank: int) -> None:
    strategy = SimpleNamespace(broadcast=lambda obj, src=0: by_rank[src])
    module.trainer = SimpleNamespace(world_size=len(by_rank), global_rank=rank, strategy=strategy)


def test_single_process_keeps_its_own_fingerprint(panel_spec):
    module = _module(*panel_spec)
    module.setup("fit")
    assert module.rank_fingerprints == [module.fingerprint] and len(module.fingerprint) == 64
    assert module.validation is not None and len(module.validation) > 0


def test_the_fingerprint_tells_other_encoders_apart(panel_spec):
    panel, spec = panel_spec
    other = panel[panel["item_id"] != panel["item_id"].iloc[0]]  # one item fewer
    assert _module(other, spec).fingerprint != _module(panel, spec).fingerprint
    assert _module(panel.copy(), spec).fingerprint == _module(panel, spec).fingerprint


def test_every_rank_sees_every_fingerprint(panel_spec):
    module = _module(*panel_spec)
    _attach(module, [module.fingerprint, module.fingerprint], rank=1)
    module.setup("fit")
    assert module.rank_fingerprints == [module.fingerprint] * 2


@pytest.mark.parametrize("rank", [0, 1])
def test_all_ranks_fail_together_when_one_differs(panel_spec, rank):
    module = _module(*panel_spec)
    _attach(module, [module.fingerprint, "f" * 64], rank=rank)
    with pytest.raises(RuntimeError, match=r"rank\(s\) \[1\] differ from rank 0's \(ffffffffffff vs"):
        module.setup("fit")


def _same(a, b) -> bool:
    import torch

    if torch.is_tensor(a):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_validation_batches_are_collated_once_and_served_unchanged(panel_spec):
    module = _module(*panel_spec)
    module.setup("fit")
    fresh = list(module.validation.to_dataloader(train=False, batch_size=32, num_workers=0))
    first = list(module.val_dataloader())
    assert len(first) == len(fresh) >= 1 and all(map(_same, first, fresh))
    batches = module._val_batches
    again = list(module.val_dataloader())  # a later epoch: the same batches, not rebuilt
    assert module._val_batches is batches and all(map(_same, again, fresh))
    # under DDP the strategy shards the samples: a plain loader, nothing cached
    ddp = _module(*panel_spec)
    _attach(ddp, [ddp.fingerprint, ddp.fingerprint], rank=0)
    ddp.setup("fit")
    from pytorch_forecasting import TimeSeriesDataSet

    assert isinstance(ddp.val_dataloader().dataset, TimeSeriesDataSet)
    assert ddp._val_batches is None
