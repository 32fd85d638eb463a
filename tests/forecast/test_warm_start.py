"""Warm start: weights copied by label, new locations from the mean vector."""

from __future__ import annotations

import numpy as np
from hydra.utils import instantiate

from stockcast.data.panel import load_panel
from tests.conftest import MONITOR_MODEL, compose_config


def test_warm_start_copies_weights_by_label_and_adds_new_locations(early_model, tmp_path):
    from stockcast.forecast.dataset import TimeSplit, training_dataset
    from stockcast.forecast.warm_start import warm_start
    from stockcast.tracking.registry import load_bundle, resolve_model

    old = load_bundle(resolve_model(early_model.model_version, MONITOR_MODEL))
    cfg = compose_config("train", ["experiment=smoke", "max_series=14"], tmp_path)
    spec = instantiate(cfg.data)
    from stockcast.data.panel import select_series

    panel = select_series(load_panel(spec), None, 14)
    training = training_dataset(panel, spec, TimeSplit.from_panel(panel, spec))
    model, report = warm_start(instantiate(cfg.tft), training, old.model, old.dataset_parameters)

    old_loc = old.dataset_parameters["categorical_encoders"]["location_id"].classes_
    new_loc = training.get_parameters()["categorical_encoders"]["location_id"].classes_
    old_w = old.model.input_embeddings.embeddings["location_id"].weight.detach()
    new_w = model.input_embeddings.embeddings["location_id"].weight.detach()
    shared = [c for c in new_loc if c in old_loc and c != "nan"]
    added = sorted(c for c in new_loc if c not in old_loc)
    assert shared and added
    for label in shared:  # same vector, wherever its code moved
        assert np.allclose(new_w[new_loc[label]], old_w[old_loc[label]])
    for label in added:  # new location: mean of the known vectors
        assert np.allclose(new_w[new_loc[label]], old_w.mean(dim=0), atol=1e-6)
    assert report.new_labels["location_id"] == added
    # everything else has the same shapes (same covariates, same architecture): all copied
    assert report.reinitialised == []
    assert model.hparams.hidden_size == old.model.hparams.hidden_size
    state, old_state = model.state_dict(), old.model.state_dict()
    key = next(k for k in state if "lstm_encoder" in k)
    assert np.allclose(state[key], old_state[key])


