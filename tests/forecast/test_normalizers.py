"""stockcast.forecast.normalizers: GroupNormalizer's answers from a dict; target-scale scaling
without scikit-learn's per-call checks."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from pytorch_forecasting import TimeSeriesDataSet
from pytorch_forecasting.data import EncoderNormalizer, GroupNormalizer
from sklearn.preprocessing import StandardScaler

from stockcast import PROJECT_ROOT
from stockcast.data.panel import load_panel
from stockcast.forecast.dataset import TimeSplit, dataset_kwargs, training_dataset
from stockcast.forecast.normalizers import ArrayStandardScaler, IndexedGroupNormalizer, indexed


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({
        "item_id": rng.integers(0, 5, n),
        "location_id": rng.integers(0, 3, n),
        "demand": rng.gamma(2.0, 10.0, n),
    })


def _fitted(cls, frame, **kwargs):
    return cls(groups=["item_id", "location_id"], transformation="softplus", **kwargs).fit(
        frame["demand"], frame[["item_id", "location_id"]]
    )


def test_every_fitted_group_gets_the_parents_parameters(frame):
    plain, fast = _fitted(GroupNormalizer, frame), _fitted(IndexedGroupNormalizer, frame)
    groups = frame[["item_id", "location_id"]].drop_duplicates().to_numpy().tolist()
    for group in groups:
        expected = plain.get_parameters(torch.tensor(group), ["item_id", "location_id"])
        got = fast.get_parameters(torch.tensor(group), ["item_id", "location_id"])
        np.testing.assert_array_equal(got, expected)
        assert got.shape == (2,)
    # unseen group: the parent's fallback (the overall parameters), not a KeyError
    np.testing.assert_array_equal(fast.get_parameters(torch.tensor([99, 99])),
                                  plain.get_parameters(torch.tensor([99, 99])))
    # a returned array is the caller's: changing it leaves the lookup alone
    fast.get_parameters(torch.tensor(groups[0]))[0] = -1.0
    assert fast.get_parameters(torch.tensor(groups[0]))[0] != -1.0


def test_refitting_rebuilds_the_lookup_and_pickles_carry_none(frame):
    fast = _fitted(IndexedGroupNormalizer, frame)
    before = fast.get_parameters(torch.tensor([0, 0]))
    fast.fit(frame["demand"] * 10, frame[["item_id", "location_id"]])
    assert not np.allclose(fast.get_parameters(torch.tensor([0, 0])), before)
    assert fast._lookup is not None
    copy = pickle.loads(pickle.dumps(fast))
    assert getattr(copy, "_lookup", None) is None and fast._lookup is not None
    np.testing.assert_array_equal(copy.get_parameters(torch.tensor([0, 0])),
                                  fast.get_parameters(torch.tensor([0, 0])))


def test_only_a_plain_group_normalizer_is_swapped():
    plain = GroupNormalizer(groups=["item_id"], transformation="log1p", center=False)
    swapped = indexed(plain)
    assert type(swapped) is IndexedGroupNormalizer and swapped.get_params() == plain.get_params()
    other = EncoderNormalizer()
    assert indexed(other) is other and indexed(None) is None


def _small_synthetic(tmp_path, *overrides: str):
    """``data=synthetic`` at 3 items x 2 stores x 60 weeks: (spec, panel, split, training set)."""
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "data" / "synthetic.yaml")
    dotlist = [f"source.cache_dir={tmp_path}", "source.generator.n_items=3",
               "source.generator.n_stores=2", "source.generator.n_dcs=1",
               "source.generator.periods=60", *overrides]
    spec = instantiate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist)))
    panel = load_panel(spec)
    split = TimeSplit.from_panel(panel, spec)
    return spec, panel, split, training_dataset(panel, spec, split)


def test_training_samples_are_the_same_as_with_the_plain_normalizer(tmp_path):
    # the swap applies to a configured GroupNormalizer (the default is EncoderNormalizer)
    spec, panel, split, fast = _small_synthetic(
        tmp_path, "dataset.target_normalizer._target_=pytorch_forecasting.data.GroupNormalizer",
        "dataset.target_normalizer.groups=[item_id,location_id]")
    assert type(fast.target_normalizer) is IndexedGroupNormalizer
    kwargs = dataset_kwargs(spec)
    kwargs["target_normalizer"] = GroupNormalizer(**kwargs["target_normalizer"].get_params())
    plain = TimeSeriesDataSet(panel[panel["time_idx"] <= split.train_end], **kwargs)
    assert len(plain) == len(fast)
    for i in range(0, len(fast), 97):
        (x_fast, y_fast), (x_plain, y_plain) = fast[i], plain[i]
        for key in x_plain:
            np.testing.assert_array_equal(np.asarray(x_fast[key]), np.asarray(x_plain[key]), err_msg=key)
        np.testing.assert_array_equal(y_fast[0].numpy(), y_plain[0].numpy())


def test_encoder_normalized_samples_equal_sklearns_scaling_without_its_warning(tmp_path):
    """Default EncoderNormalizer: every sample standardises its own target scale; the fast
    scaler gives scikit-learn's numbers and no per-sample feature-name warning."""
    spec, panel, split, fast = _small_synthetic(tmp_path)
    assert isinstance(fast.target_normalizer, EncoderNormalizer)
    assert type(fast.get_transformer("demand_center")) is ArrayStandardScaler
    kwargs = dataset_kwargs(spec)
    kwargs["scalers"] = {name: StandardScaler() for name in kwargs["scalers"]}
    plain = TimeSeriesDataSet(panel[panel["time_idx"] <= split.train_end], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning while loading a sample fails the test
        for i in range(0, len(fast), 53):
            x_fast, _ = fast[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x_plain, _ = plain[i]
            for key in x_plain:
                np.testing.assert_allclose(np.asarray(x_fast[key]), np.asarray(x_plain[key]),
                                           rtol=1e-6, err_msg=key)
    scaler = ArrayStandardScaler().fit(pd.DataFrame({"v": [1.0, 3.0, 5.0]}))
    np.testing.assert_allclose(scaler.transform(np.array([[3.0], [5.0]])).ravel(), [0.0, 1.224745], rtol=1e-6)
