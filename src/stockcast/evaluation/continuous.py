"""Continuous learning, the measurable part: where a regime change starts and what the
drift demo's timeline says (detection delay, false alarms, pinball loss by phase).

The loop itself (train, gate, monitor, retrain as a scheduler would) is the drift-demo task,
:mod:`stockcast.tasks.drift_demo`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec


def shock_periods(spec: DatasetSpec, n_periods: int) -> tuple[int | None, int | None, dict[str, Any] | None]:
    """Indices of the first period whose demand the generator's regime change affects and of
    the first period it can be seen in the data (a sentiment shock shows in the sentiment
    index ``sentiment_lag`` periods before demand follows), and the change's settings."""
    gen = dict(spec.generator or {})
    shock = dict(gen.get("regime_change") or {})
    if not shock:
        return None, None, None
    period = int(shock.get("period", -1))
    n = int(gen.get("periods", n_periods))
    idx = n + period if period < 0 else period
    lag = int(gen.get("sentiment_lag", 2)) if shock.get("kind") == "sentiment" else 0
    return idx, max(idx - lag, 0), shock


def demo_summary(timeline: pd.DataFrame, scores: pd.DataFrame, shock_idx: int | None, seen_idx: int | None, day) -> dict[str, Any]:
    """Detection delay (periods from the first affected demand period to the first drift
    flag; negative = flagged before demand moved, through a leading covariate), false alarms
    (flags before any checked forecast or actual could carry the change: ``seen_idx``),
    retrains and pinball by phase."""
    drift = timeline[timeline["status"] == "drift"]
    out: dict[str, Any] = {
        "shock_period": day(shock_idx) if shock_idx is not None else None,
        "shock_detectable_from": day(seen_idx) if seen_idx is not None else None,
        "false_alarms": int((drift["time_idx"] < seen_idx).sum()) if seen_idx is not None else int(len(drift)),
        "retrains": int(timeline["action"].str.startswith("retrained").sum() + timeline["action"].str.startswith("retrain failed").sum()),
        "promotions": int(timeline["action"].str.endswith("promoted").sum()),
        "detection_delay_periods": None,
        "first_promotion": None,
    }
    if shock_idx is not None:
        after = drift[drift["time_idx"] >= seen_idx]
        if len(after):
            out["detection_delay_periods"] = int(after["time_idx"].iloc[0] - shock_idx)
            out["detected_at"] = str(after["period"].iloc[0])
    promoted = timeline[timeline["action"].str.endswith("promoted")]
    if seen_idx is not None:
        promoted = promoted[promoted["time_idx"] >= seen_idx]
    if len(promoted):
        out["first_promotion"] = str(promoted["period"].iloc[0])
    # phases: before the shock, after it until the first update after it, after that update
    update_idx = int(promoted["time_idx"].iloc[0]) + 1 if len(promoted) else None
    phases = {
        "before_shock": scores["time_idx"] < (shock_idx if shock_idx is not None else np.inf),
        "after_shock_before_update": (scores["time_idx"] >= (shock_idx if shock_idx is not None else np.inf))
        & (scores["time_idx"] < (update_idx if update_idx is not None else np.inf)),
        "after_update": scores["time_idx"] >= (update_idx if update_idx is not None else np.inf),
    }
    for phase, mask in phases.items():
        out[f"periods_{phase}"] = int(mask.sum())
        for col in ("served", "static", "truth"):
            c = f"{col}_pinball_scaled"
            if c in scores and mask.any():
                out[f"{phase}_{c}"] = float(scores.loc[mask, c].mean())
    s, st = out.get("after_update_served_pinball_scaled"), out.get("after_update_static_pinball_scaled")
    if s is not None and st:
        out["after_update_improvement_vs_static"] = float(1 - s / st)
    return out
