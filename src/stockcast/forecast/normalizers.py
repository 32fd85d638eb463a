"""Target normalizers whose per-sample lookups do not dominate data loading.

pytorch-forecasting's ``TimeSeriesDataSet.__getitem__`` asks the target normalizer for each
sample's group scale (``get_parameters``); ``GroupNormalizer`` answers with a pandas
``.loc`` on a MultiIndex, about half of a training batch's loading time on CPU
(benchmarks/scale.py). :class:`IndexedGroupNormalizer` is the same normalizer (same fit,
same transforms, same parameters: a drop-in subclass) answering from a dict built once per
fit. :func:`indexed` swaps a plain ``GroupNormalizer`` for it, so data configs keep naming
``pytorch_forecasting.data.GroupNormalizer``.

With an ``EncoderNormalizer`` the sample's own encoder gives its target scale, and
``__getitem__`` standardises that scale (the ``<target>_center`` / ``<target>_scale`` inputs
of ``add_target_scales``) with a scikit-learn ``StandardScaler`` per sample: input
validation plus a feature-name warning on every call, most of a training run's time on CPU.
:class:`ArrayStandardScaler` is the same scaler (same fit, same numbers) whose ``transform``
is the plain arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pytorch_forecasting.data import GroupNormalizer
from sklearn.preprocessing import StandardScaler


class IndexedGroupNormalizer(GroupNormalizer):
    """``GroupNormalizer`` with ``get_parameters`` from a dict of the fitted groups.

    Only the lookup differs: a group unseen at fit time, ``scale_by_group=True`` or another
    order of group names take the parent's path (and answer). The dict is rebuilt after every
    fit and never pickled (a saved model carries the fitted ``norm_`` as before).
    """

    def fit(self, *args: Any, **kwargs: Any) -> IndexedGroupNormalizer:
        self._lookup = None
        return super().fit(*args, **kwargs)

    def get_parameters(self, groups, group_names: list[str] | None = None) -> np.ndarray:
        if self.scale_by_group or not self._groups or (
            group_names is not None and list(group_names) != list(self._groups)
        ):
            return super().get_parameters(groups, group_names)
        key = tuple(groups.tolist()) if isinstance(groups, torch.Tensor) else tuple(groups)
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = self._lookup = self._build_lookup()
        params = lookup.get(key)
        if params is None:  # not seen at fit time: the parent's fallback (missing_)
            return super().get_parameters(groups, group_names)
        return params.copy()

    def _build_lookup(self) -> dict[tuple, np.ndarray]:
        values = self.norm_.to_numpy()
        index = self.norm_.index
        keys = index.tolist() if index.nlevels > 1 else [(k,) for k in index.tolist()]
        return {tuple(k): values[i] for i, k in enumerate(keys)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: the live instance keeps its dict
        state.pop("_lookup", None)
        return state


def indexed(normalizer: Any) -> Any:
    """An exact ``GroupNormalizer`` as an :class:`IndexedGroupNormalizer` with the same
    arguments; anything else (another normalizer, a subclass, None) unchanged."""
    if type(normalizer) is GroupNormalizer:
        return IndexedGroupNormalizer(**normalizer.get_params())
    return normalizer


class ArrayStandardScaler(StandardScaler):
    """``StandardScaler`` whose ``transform`` is ``(x - mean_) / scale_`` on an array.

    Fitted exactly as scikit-learn fits it (``fit`` is inherited); ``transform`` skips the
    per-call validation, so the per-sample scaling of target scales costs microseconds.
    """

    def transform(self, X: Any, copy: bool | None = None) -> np.ndarray:  # noqa: N803 (sklearn)
        values = np.asarray(X, dtype=np.float64)
        if self.with_mean:
            values = values - self.mean_
        if self.with_std:
            values = values / self.scale_
        return values


def target_scale_scalers(target: str) -> dict[str, ArrayStandardScaler]:
    """Scalers of the ``add_target_scales`` inputs of ``target`` (for ``scalers=``)."""
    return {f"{target}_center": ArrayStandardScaler(), f"{target}_scale": ArrayStandardScaler()}
