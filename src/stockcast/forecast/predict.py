"""TFT predictions -> the forecast table (:mod:`stockcast.schema`).

One row per item_id × location_id × period with ``forecast_origin`` (last period the model
saw), ``horizon`` (1 = first period after the origin) and one column per quantile level
(``q0.1``...), monotone in the level (sorted: no crossing), in demand units, non-negative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

from stockcast.schema import TIME_IDX, quantile_column


def period_lookup(calendar_start: pd.Timestamp, freq: str, max_idx: int) -> pd.DatetimeIndex:
    """Period start dates for ``time_idx`` 0..max_idx on the dataset's grid."""
    return pd.date_range(pd.Timestamp(calendar_start), periods=int(max_idx) + 1, freq=freq)


def quantiles_of(model: TemporalFusionTransformer) -> list[float]:
    return [float(q) for q in model.loss.quantiles]


def raw_predictions(
    model: TemporalFusionTransformer,
    dataset: TimeSeriesDataSet,
    *,
    batch_size: int = 256,
    accelerator: str = "cpu",
):
    """Run the model over every sample of ``dataset`` and keep outputs, inputs and index."""
    loader = dataset.to_dataloader(train=False, batch_size=batch_size, num_workers=0)
    return model.predict(
        loader,
        mode="raw",
        return_x=True,
        return_index=True,
        trainer_kwargs=dict(
            accelerator=accelerator, logger=False, enable_progress_bar=False, enable_model_summary=False
        ),
    )


def to_forecast_table(
    model: TemporalFusionTransformer,
    prediction,
    *,
    calendar_start: pd.Timestamp,
    freq: str,
) -> pd.DataFrame:
    """Turn a raw ``Prediction`` (with x and index) into the forecast table."""
    q = model.to_quantiles(prediction.output)
    q = q.detach().cpu().numpy() if isinstance(q, torch.Tensor) else np.asarray(q)
    q = np.maximum(np.sort(q, axis=-1), 0.0)
    n, horizon, n_q = q.shape
    dec_len = prediction.x["decoder_lengths"].cpu().numpy()
    index = prediction.index.reset_index(drop=True)
    first = index[TIME_IDX].to_numpy()
    h = np.tile(np.arange(1, horizon + 1), n)
    valid = h <= np.repeat(dec_len, horizon)
    time_idx = np.repeat(first, horizon) + h - 1
    periods = period_lookup(calendar_start, freq, time_idx.max() + 1)
    table = pd.DataFrame(
        {
            "item_id": np.repeat(index["item_id"].astype(str).to_numpy(), horizon),
            "location_id": np.repeat(index["location_id"].astype(str).to_numpy(), horizon),
            "period": periods[time_idx],
            "forecast_origin": periods[np.repeat(first, horizon) - 1],
            "horizon": h,
            TIME_IDX: time_idx,
        }
    )
    levels = quantiles_of(model)
    flat = q.reshape(n * horizon, n_q)
    for j, level in enumerate(levels):
        table[quantile_column(level)] = flat[:, j]
    return table[valid].reset_index(drop=True)
