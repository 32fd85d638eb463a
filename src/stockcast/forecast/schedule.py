"""Learning-rate schedules of the TFT, one rate per epoch.

pytorch-forecasting takes a list as ``learning_rate`` and steps through it epoch by epoch
(a ``LambdaLR``); a single number gets its ``ReduceLROnPlateau`` on the validation loss
(``reduce_on_plateau_patience``). :func:`cosine_learning_rates` builds the list of a
warm-up followed by a half-cosine decay, so a training of a fixed number of epochs ends at
a low rate instead of waiting for plateaus (early stopping's patience is then rarely
reached, and the last epochs are the calm ones the snapshot ensemble keeps).
"""

from __future__ import annotations

import math


def cosine_learning_rates(
    initial: float, epochs: int, final_ratio: float = 0.05, warmup_epochs: int = 0
) -> list[float]:
    """Per-epoch rates: ``warmup_epochs`` linear steps up to ``initial``, then a half cosine
    from ``initial`` down to ``final_ratio * initial`` at the last of ``epochs`` epochs.

    >>> [round(r, 4) for r in cosine_learning_rates(0.01, 5, final_ratio=0.1)]
    [0.01, 0.0087, 0.0055, 0.0023, 0.001]
    """
    initial, epochs, warmup = float(initial), int(epochs), int(warmup_epochs)
    if not initial > 0:
        raise ValueError(f"the cosine schedule needs a positive learning rate, got {initial}")
    if epochs < 1:
        raise ValueError(f"the cosine schedule needs trainer.max_epochs >= 1, got {epochs}")
    if not 0 < final_ratio <= 1:
        raise ValueError(f"lr_schedule.final_ratio must be in (0, 1], got {final_ratio}")
    if not 0 <= warmup < epochs:
        raise ValueError(f"lr_schedule.warmup_epochs must be in [0, {epochs}) for {epochs} epochs, got {warmup}")
    rates = [initial * (k + 1) / (warmup + 1) for k in range(warmup)]
    decay = epochs - warmup
    for k in range(decay):
        progress = k / (decay - 1) if decay > 1 else 0.0  # one epoch: the initial rate
        rates.append(initial * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))))
    return rates
