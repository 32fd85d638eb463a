"""Drift monitor: are newly arrived actuals still inside what the model promised?

``python evaluate.py task=monitor [model=...] [monitor.as_of=YYYY-MM-DD]`` (``run(cfg)``):

1. loads the monitored model (default: the ``champion`` alias, else the latest version) and
   the data *as it is now* (the model's dataset config, read up to ``monitor.as_of``; by
   default everything in the source);
2. takes the newly arrived periods: those after the last period the model was trained and
   tested on (the ``data_end`` tag of its registered version), at most ``monitor.window``
   of the most recent ones;
3. rebuilds the forecasts that were issued for them: for each period ``p`` the model's
   forecast from origin ``p - monitor.lead``, seeing only what was known then (the
   model is deterministic in inference, so these are the forecasts it issued);
4. scores them with :func:`~stockcast.evaluation.metrics.forecast_metrics` (prefix
   ``monitor``), overall and per segment (``monitor.segments``), and compares them with the
   same model's *reference*: the same lead-``lead`` forecasts over the ``window`` periods
   that end at ``data_end`` (its held-out test window, where it is known to behave);
5. flags drift when a score leaves the band (``monitor.band``): scaled pinball loss above
   ``pinball_ratio_max`` x reference, 80% interval coverage more than
   ``coverage_drop_max`` below reference, or the size of the scaled bias grown by more
   than ``bias_shift_max`` (only deterioration counts: a model doing better than in its
   reference window is not drifting); overall, or in at least ``segment_share`` of the
   segments;
6. logs a run to MLflow (experiment ``stockcast-monitor``), writes a machine-readable alert
   file (``monitor.alert_file``, JSON, written atomically) and returns the exit code a
   scheduler acts on: 0 = no drift (or nothing new), ``monitor.drift_exit_code`` = drift.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig, OmegaConf

from stockcast.data.panel import load_panel, select_series
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.protocol import attach_actuals
from stockcast.forecast.scenarios import as_of
from stockcast.schema import GROUP_IDS, TIME_IDX, quantile_column
from stockcast.tracking.context import resolve
from stockcast.tracking.mlflow_utils import log_config, log_table, setup_tracking, tracked_run
from stockcast.tracking.registry import load_bundle

#: Scores the band is set on (scale-free, so windows and segments of any volume compare).
BAND_METRICS = ("pinball_scaled", "coverage_80", "bias_scaled")

#: Reference scores per (tracking URI, model, version, lead, window): they only depend on
#: data up to the model's ``data_end``, which does not change as new actuals arrive.
_REFERENCE_CACHE: dict[tuple, pd.DataFrame] = {}


@dataclass
class MonitorResult:
    """What one monitoring check found."""

    status: str  # "ok", "drift" or "no_new_actuals"
    exit_code: int
    model_version: str
    periods: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    segments: pd.DataFrame | None = None
    forecasts: pd.DataFrame | None = None
    alert: dict[str, Any] = field(default_factory=dict)
    alert_path: str | None = None
    run_id: str | None = None

    @property
    def drift(self) -> bool:
        return self.status == "drift"


# ---------------------------------------------------------------------------- pieces
def data_end(version: ModelVersion) -> pd.Timestamp:
    """Last period the version was trained and tested on (its ``data_end`` tag, else the
    ``data_end`` parameter of its training run)."""
    value = version.tags.get("data_end")
    if not value and version.run_id:
        value = mlflow.MlflowClient().get_run(version.run_id).data.params.get("data_end")
    if not value:
        raise LookupError(
            f"model {version.name} v{version.version} has no data_end tag or training-run "
            "parameter: cannot tell which actuals are new"
        )
    return pd.Timestamp(value)


def issued_forecasts(
    bundle: ForecastBundle, panel: pd.DataFrame, periods: list[int], lead: int
) -> pd.DataFrame:
    """The forecasts issued for each of ``periods`` (time indices) ``lead`` periods ahead,
    each from its origin ``period - lead`` seeing nothing after it, with actuals attached."""
    tables = []
    for p in periods:
        origin = int(p) - int(lead)
        table = bundle.forecast_last(as_of(panel, bundle.spec, origin, int(lead)), int(lead))
        tables.append(table[table["horizon"] == int(lead)])
    out = pd.concat(tables, ignore_index=True)
    return attach_actuals(out, panel)


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
    current: dict[str, float], reference: dict[str, float], band: DictConfig | dict, scope: str
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


def _reference_table(version, bundle, panel, end_idx, lead, window) -> pd.DataFrame:
    key = (mlflow.get_tracking_uri(), version.name, version.version, int(lead), int(window), int(end_idx))
    if key not in _REFERENCE_CACHE:
        periods = list(range(int(end_idx) - int(window) + 1, int(end_idx) + 1))
        _REFERENCE_CACHE[key] = issued_forecasts(bundle, panel, periods, lead)
    return _REFERENCE_CACHE[key]


def write_alert(alert: dict[str, Any], path: str | Path) -> Path:
    """Write the alert JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(alert, indent=2, default=str))
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------- main
def run(cfg: DictConfig) -> MonitorResult:
    """Check the newly arrived actuals of the monitored model; log, alert, return exit code."""
    setup_tracking()
    mcfg = cfg.monitor
    lead, window = int(mcfg.lead), int(mcfg.window)
    if lead < 1 or window < 1:
        raise ValueError(f"monitor.lead and monitor.window must be >= 1, got {lead} and {window}")
    version = resolve(cfg)
    bundle = load_bundle(version)
    max_h = int(bundle.dataset_parameters["max_prediction_length"])
    if lead > max_h:
        raise ValueError(f"monitor.lead={lead} exceeds the model's horizon ({max_h})")
    spec = dataclasses.replace(bundle.spec, until=mcfg.get("as_of"))
    panel = select_series(load_panel(spec), bundle.series, cfg.get("max_series"))
    end = data_end(version)
    idx_of = panel.drop_duplicates("period").set_index("period")[TIME_IDX].sort_index()
    if end not in idx_of.index:
        raise ValueError(
            f"model v{version.version} was trained on data up to {end.date()}, which is not a "
            f"period of the monitored data ({idx_of.index.min().date()}..{idx_of.index.max().date()})"
        )
    new = idx_of[idx_of.index > end]
    checked = new.tail(window)
    segments = list(mcfg.get("segments") or [])
    alert_path = mcfg.get("alert_file")
    base_alert = {
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": version.name, "version": version.version, "data_end": str(end.date())},
        "as_of": str(idx_of.index.max().date()),
        "lead": lead,
        "band": OmegaConf.to_container(mcfg.band, resolve=True) if isinstance(mcfg.band, DictConfig) else dict(mcfg.band),
        "periods": [str(p.date()) for p in checked.index],
    }
    tags = {"stockcast.task": "monitor", "stockcast.model_version": version.version, "stockcast.dataset": spec.name}
    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"monitor-{version.name}-v{version.version}-{base_alert['as_of']}",
        tags={**tags, **dict(mcfg.get("tags") or {})},
    ) as active:
        log_config(cfg)
        mlflow.log_params({"model_uri": f"models:/{version.name}/{version.version}", "as_of": base_alert["as_of"], "data_end": str(end.date())})
        if checked.empty:
            result = MonitorResult("no_new_actuals", 0, version.version, [])
        else:
            t0 = time.perf_counter()
            table = issued_forecasts(bundle, panel, checked.tolist(), lead)
            ref_table = _reference_table(version, bundle, panel, idx_of[end], lead, window)
            extra = [s for s in segments if s in panel.columns and s not in table.columns]
            static = panel.drop_duplicates(GROUP_IDS)[[*GROUP_IDS, *extra]]
            table, ref_table = (t.merge(static, on=GROUP_IDS, how="left") for t in (table, ref_table))
            min_rows = int(mcfg.min_rows)
            current, seg = score(table, "monitor", segments, min_rows)
            reference, ref_seg = score(ref_table, "reference", segments, min_rows)
            found = breaches(current, reference, mcfg.band, "overall")
            n_seg = n_bad = 0
            if not seg.empty and not ref_seg.empty:
                merged = seg.merge(ref_seg, on=["segment", "value"], suffixes=("", "_ref"))
                flags = []
                for _, r in merged.iterrows():
                    b = breaches(r.to_dict(), r.to_dict(), mcfg.band, f"{r['segment']}={r['value']}")
                    flags.append(bool(b))
                    found += b
                merged["drift"] = flags
                seg = merged[["segment", "value", "rows", *[f"monitor_{m}" for m in BAND_METRICS], *[f"reference_{m}" for m in BAND_METRICS], "drift"]]
                n_seg, n_bad = len(merged), int(np.sum(flags))
            overall_bad = any(b["scope"] == "overall" for b in found)
            share = n_bad / n_seg if n_seg else 0.0
            drift = overall_bad or (n_seg > 0 and share >= float(mcfg.segment_share))
            metrics = {
                **current,
                **reference,
                "monitor_pinball_ratio": current["monitor_pinball_scaled"] / max(reference["reference_pinball_scaled"], 1e-12),
                "monitor_segments_drifting": float(n_bad),
                "monitor_segment_share": share,
                "monitor_drift": float(drift),
                "time_monitor_s": time.perf_counter() - t0,
            }
            result = MonitorResult(
                "drift" if drift else "ok",
                int(mcfg.drift_exit_code) if drift else 0,
                version.version,
                base_alert["periods"],
                metrics=metrics,
                reference=reference,
                breaches=found,
                segments=seg,
                forecasts=table,
            )
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if pd.notna(v)})
            for p, grp in table.groupby("period"):
                m = forecast_metrics(grp, prefix="monitor")
                mlflow.log_metrics({"monitor_pinball_scaled_by_period": m["monitor_pinball_scaled"], **({"monitor_coverage_80_by_period": m["monitor_coverage_80"]} if "monitor_coverage_80" in m else {})}, step=int(idx_of[p]))
            if not seg.empty:
                log_table(seg, "segments.csv")
            mlflow.log_text(table.to_csv(index=False), "forecasts.csv")
            fig = _window_figure(table, ref_table, reference)
            mlflow.log_figure(fig, "monitor_window.png")
            plt.close(fig)
        result.run_id = active.info.run_id
        result.alert = {
            **base_alert,
            "status": result.status,
            "drift": result.drift,
            "exit_code": result.exit_code,
            "breaches": result.breaches,
            "metrics": {k: v for k, v in result.metrics.items() if not k.startswith("reference_")},
            "reference": result.reference,
            "mlflow_run_id": result.run_id,
        }
        mlflow.set_tags({"monitor.status": result.status, "monitor.drift": str(result.drift).lower()})
        mlflow.log_dict(result.alert, "alert.json")
        if alert_path:
            result.alert_path = str(write_alert(result.alert, alert_path))
    return result


def summary_text(result: MonitorResult) -> str:
    """Human-readable report printed by ``evaluate.py task=monitor``."""
    lines = [f"monitor: model v{result.model_version}, status {result.status.upper()} (exit code {result.exit_code})"]
    if result.periods:
        m, r = result.metrics, result.reference
        lines.append(f"  periods checked: {', '.join(result.periods)}")
        lines.append(
            f"  pinball (scaled) {m['monitor_pinball_scaled']:.3f} vs reference {r['reference_pinball_scaled']:.3f} "
            f"(ratio {m['monitor_pinball_ratio']:.2f}); coverage_80 {m.get('monitor_coverage_80', float('nan')):.2f} vs "
            f"{r.get('reference_coverage_80', float('nan')):.2f}; bias (scaled) {m['monitor_bias_scaled']:+.3f} vs {r['reference_bias_scaled']:+.3f}"
        )
    else:
        lines.append("  no actuals after the model's data_end yet: nothing to check")
    for b in result.breaches:
        lines.append(f"  BREACH {b['scope']}: {b['rule']} value {b['value']:.3f} > limit {b['limit']:.3f}")
    if result.alert_path:
        lines.append(f"  alert file: {result.alert_path}")
    return "\n".join(lines)


def _window_figure(table: pd.DataFrame, ref_table: pd.DataFrame, reference: dict[str, float]) -> plt.Figure:
    """Scaled pinball and 80% coverage per period: reference window, then checked window."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for t, color, label in ((ref_table, "tab:gray", "reference"), (table, "tab:red", "checked")):
        per = [(p, forecast_metrics(g, prefix="m")) for p, g in t.groupby("period")]
        x = [p for p, _ in per]
        axes[0].plot(x, [m["m_pinball_scaled"] for _, m in per], "o-", color=color, label=label)
        if quantile_column(0.1) in t and quantile_column(0.9) in t:
            axes[1].plot(x, [m["m_coverage_80"] for _, m in per], "o-", color=color, label=label)
    axes[0].axhline(reference["reference_pinball_scaled"], color="black", ls="--", lw=1)
    axes[0].set_title("pinball loss / mean demand")
    axes[1].axhline(0.8, color="black", ls="--", lw=1)
    axes[1].set_title("80% interval coverage")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
    fig.tight_layout()
    return fig
