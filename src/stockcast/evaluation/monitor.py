"""Drift monitoring rules: are newly arrived actuals still inside what the model promised?

The monitor task (:mod:`stockcast.tasks.monitor`) rebuilds the forecasts a model issued for the
newly arrived periods (:func:`issued_forecasts`: for each period ``p`` the forecast from origin
``p - lead``, seeing only what was known then), scores them with
:func:`~stockcast.evaluation.metrics.forecast_metrics` overall and per segment (:func:`score`)
and compares them with the same model's *reference* (the same lead-``lead`` forecasts over the
``window`` periods ending at its ``data_end``, its held-out test window). :func:`judge` applies
the band (:func:`breaches`): scaled pinball loss above ``pinball_ratio_max`` x reference, 80%
interval coverage more than ``coverage_drop_max`` below reference, or the size of the scaled
bias grown by more than ``bias_shift_max`` (only deterioration counts: a model doing better
than in its reference window is not drifting); overall, or in at least ``segment_share`` of
the judged segments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stockcast.evaluation.metrics import forecast_metrics
from stockcast.forecast.protocol import Forecaster, by_model, cross_validate
from stockcast.schema import HORIZON, TIME_IDX

#: Scores the band is set on (scale-free, so windows and segments of any volume compare).
BAND_METRICS = ("pinball_scaled", "coverage_80", "bias_scaled")


def issued_forecasts(forecaster: Forecaster, panel: pd.DataFrame, periods: list[int], lead: int) -> pd.DataFrame:
    """The forecasts issued for each of ``periods`` (time indices) ``lead`` periods ahead,
    each from its origin ``period - lead`` seeing nothing after it, with actuals attached."""
    origins = [int(p) - int(lead) for p in periods]
    last = max(int(p) for p in periods)
    cv = cross_validate([forecaster], panel[panel[TIME_IDX] <= last], origins, int(lead))
    table = by_model(cv)[forecaster.name]
    return table[table[HORIZON] == int(lead)].reset_index(drop=True)


def score(table: pd.DataFrame, prefix: str, segments: list[str], min_rows: int) -> tuple[dict[str, float], pd.DataFrame]:
    """Overall metrics and a per-segment table (``segment``, ``value``, ``rows``, metrics)."""
    overall = forecast_metrics(table, prefix=prefix)
    rows = []
    for col in segments:
        if col not in table.columns:
            raise ValueError(
                f"monitor.segments: column {col!r} is not in the forecast table; choose from "
                f"{sorted(c for c in table.columns if not c.startswith('q'))}"
            )
        for value, grp in table.groupby(col, observed=True):
            grp = grp.dropna(subset=["demand"])
            if len(grp) < min_rows or grp["demand"].abs().sum() <= 0:
                continue
            m = forecast_metrics(grp, prefix=prefix)
            rows.append({"segment": col, "value": str(value), "rows": len(grp), **m})
    return overall, pd.DataFrame(rows)


def breaches(
    current: dict[str, float], reference: dict[str, float], band: Mapping[str, Any], scope: str
) -> list[dict[str, Any]]:
    """Band rules broken by ``current`` (``monitor_*`` scores) against ``reference_*``."""
    out = []
    cur = {m: current.get(f"monitor_{m}") for m in BAND_METRICS}
    ref = {m: reference.get(f"reference_{m}") for m in BAND_METRICS}

    def add(rule: str, value: float, limit: float) -> None:
        out.append({"scope": scope, "rule": rule, "value": float(value), "limit": float(limit)})

    if band.get("pinball_ratio_max") is not None and cur["pinball_scaled"] is not None and ref["pinball_scaled"]:
        ratio = cur["pinball_scaled"] / ref["pinball_scaled"]
        if ratio > float(band["pinball_ratio_max"]):
            add("pinball_ratio_max", ratio, band["pinball_ratio_max"])
    if band.get("coverage_drop_max") is not None and cur["coverage_80"] is not None and ref["coverage_80"] is not None:
        drop = ref["coverage_80"] - cur["coverage_80"]
        if drop > float(band["coverage_drop_max"]):
            add("coverage_drop_max", drop, band["coverage_drop_max"])
    if band.get("bias_shift_max") is not None and cur["bias_scaled"] is not None and ref["bias_scaled"] is not None:
        # only a bias that grew counts (a model less biased than in its reference is fine)
        shift = abs(cur["bias_scaled"]) - abs(ref["bias_scaled"])
        if shift > float(band["bias_shift_max"]):
            add("bias_shift_max", shift, band["bias_shift_max"])
    return out


def write_alert(alert: dict[str, Any], path: str | Path) -> Path:
    """Write the alert JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(alert, indent=2, default=str))
    tmp.replace(path)
    return path


@dataclass
class Judgement:
    """The band applied to one checked window."""

    drift: bool
    breaches: list[dict[str, Any]]
    segments: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)


def judge(
    current: dict[str, float],
    segments: pd.DataFrame,
    reference: dict[str, float],
    ref_segments: pd.DataFrame,
    band: Mapping[str, Any],
    segment_share: float,
) -> Judgement:
    """Overall and per-segment breaches; drift if overall breaches or enough segments do."""
    found = breaches(current, reference, band, "overall")
    seg, n_seg, n_bad = segments, 0, 0
    if not segments.empty and not ref_segments.empty:
        merged = segments.merge(ref_segments, on=["segment", "value"], suffixes=("", "_ref"))
        flags = []
        for _, r in merged.iterrows():
            b = breaches(r.to_dict(), r.to_dict(), band, f"{r['segment']}={r['value']}")
            flags.append(bool(b))
            found += b
        merged["drift"] = flags
        seg = merged[["segment", "value", "rows", *[f"monitor_{m}" for m in BAND_METRICS],
                      *[f"reference_{m}" for m in BAND_METRICS], "drift"]]
        n_seg, n_bad = len(merged), int(np.sum(flags))
    overall_bad = any(b["scope"] == "overall" for b in found)
    share = n_bad / n_seg if n_seg else 0.0
    drift = overall_bad or (n_seg > 0 and share >= float(segment_share))
    metrics = {
        "monitor_pinball_ratio": current["monitor_pinball_scaled"] / max(reference["reference_pinball_scaled"], 1e-12),
        "monitor_segments_drifting": float(n_bad),
        "monitor_segment_share": share,
        "monitor_drift": float(drift),
    }
    return Judgement(drift, found, seg, metrics)
