"""TFT interpretation: variable importance per role and attention over encoder time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pytorch_forecasting import TemporalFusionTransformer


def interpretation(model: TemporalFusionTransformer, prediction) -> dict:
    """Summed interpretation over all samples of a raw ``Prediction``."""
    return model.interpret_output(prediction.output, reduction="sum")


def variable_importance(model: TemporalFusionTransformer, interp: dict) -> pd.DataFrame:
    """Importance of every input variable, normalised to sum to 1 within each role.

    Returns:
        Columns ``role`` (static / encoder / decoder), ``variable``, ``importance``,
        sorted by role then descending importance.
    """
    rows = []
    for role, names in (
        ("static", model.static_variables),
        ("encoder", model.encoder_variables),
        ("decoder", model.decoder_variables),
    ):
        values = interp[f"{role}_variables"].detach().cpu().numpy().astype(float)
        total = values.sum()
        share = values / total if total > 0 else values
        rows += [
            {"role": role, "variable": n, "importance": float(v)} for n, v in zip(names, share, strict=True)
        ]
    out = pd.DataFrame(rows)
    return out.sort_values(["role", "importance"], ascending=[True, False]).reset_index(drop=True)


def attention_profile(interp: dict, max_encoder_length: int) -> pd.DataFrame:
    """Mean attention by encoder position (``-k`` = k periods before the forecast origin)."""
    att = interp["attention"].detach().cpu().numpy().astype(float)
    att = att / att.sum() if att.sum() > 0 else att
    lags = np.arange(-len(att), 0)
    return pd.DataFrame({"relative_period": lags, "attention": att}).tail(max_encoder_length)
