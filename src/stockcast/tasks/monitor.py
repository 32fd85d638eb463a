"""``monitor.py``: are newly arrived actuals still inside what the model promised?

``run(cfg)``:

1. loads the monitored model (default: the ``champion`` alias, else the latest version) and the
   data *as it is now* (the model's dataset config, read up to ``monitor.as_of``; by default
   everything in the source) through :func:`stockcast.tracking.context.load_context`;
2. takes the newly arrived periods: those after the last period the model was trained and
   tested on (the ``data_end`` tag of its registered version), at most ``monitor.window`` of
   the most recent ones;
3. rebuilds the forecasts that were issued for them and scores them against the model's own
   reference window with the band rules of :mod:`stockcast.evaluation.monitor`;
4. logs a run to MLflow (experiment ``stockcast-monitor``), writes a machine-readable alert
   file (``monitor.alert_file``, JSON, written atomically) and returns the exit code a
   scheduler acts on: 0 = no drift (or nothing new), ``monitor.drift_exit_code`` = drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from stockcast.evaluation.metrics import forecast_metrics
from stockcast.evaluation.monitor import issued_forecasts, judge, score, write_alert
from stockcast.schema import GROUP_IDS, TIME_IDX
from stockcast.tracking.context import load_context
from stockcast.tracking.mlflow_utils import log_config, log_table, tracked_run
from stockcast.tracking.registry import data_end

#: Reference scores per (tracking URI, model, version, lead, window, end): they only depend on
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


def _reference_table(version, bundle, panel, end_idx, lead, window) -> pd.DataFrame:
    key = (mlflow.get_tracking_uri(), version.name, version.version, int(lead), int(window), int(end_idx))
    if key not in _REFERENCE_CACHE:
        periods = list(range(int(end_idx) - int(window) + 1, int(end_idx) + 1))
        _REFERENCE_CACHE[key] = issued_forecasts(bundle, panel, periods, lead)
    return _REFERENCE_CACHE[key]


def run(cfg: DictConfig) -> MonitorResult:
    """Check the newly arrived actuals of the monitored model; log, alert, return exit code."""
    mcfg = cfg.monitor
    lead, window = int(mcfg.lead), int(mcfg.window)
    if lead < 1 or window < 1:
        raise ValueError(f"monitor.lead and monitor.window must be >= 1, got {lead} and {window}")
    ctx = load_context(cfg, until=mcfg.get("as_of"))  # None: all the actuals that arrived
    version, bundle, panel, spec = ctx.version, ctx.bundle, ctx.panel, ctx.spec
    if lead > bundle.max_horizon:
        raise ValueError(f"monitor.lead={lead} exceeds the model's horizon ({bundle.max_horizon})")
    end = data_end(version)
    idx_of = panel.drop_duplicates("period").set_index("period")[TIME_IDX].sort_index()
    if end not in idx_of.index:
        raise ValueError(
            f"model v{version.version} was trained on data up to {end.date()}, which is not a "
            f"period of the monitored data ({idx_of.index.min().date()}..{idx_of.index.max().date()})"
        )
    checked = idx_of[idx_of.index > end].tail(window)
    segments = list(mcfg.get("segments") or [])
    band = OmegaConf.to_container(mcfg.band, resolve=True) if isinstance(mcfg.band, DictConfig) else dict(mcfg.band)
    base_alert = {
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": version.name, "version": version.version, "data_end": str(end.date())},
        "as_of": str(idx_of.index.max().date()),
        "lead": lead,
        "band": band,
        "periods": [str(p.date()) for p in checked.index],
    }
    tags = {"stockcast.task": "monitor", "stockcast.model_version": version.version, "stockcast.dataset": spec.name}
    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"monitor-{version.name}-v{version.version}-{base_alert['as_of']}",
        tags={**tags, **dict(mcfg.get("tags") or {})},
    ) as active:
        log_config(cfg)
        mlflow.log_params({"model_uri": ctx.uri, "as_of": base_alert["as_of"], "data_end": str(end.date())})
        if checked.empty:
            result = MonitorResult("no_new_actuals", 0, version.version, [])
        else:
            t0 = time.perf_counter()
            table = issued_forecasts(bundle, panel, checked.tolist(), lead)
            ref_table = _reference_table(version, bundle, panel, idx_of[end], lead, window)
            extra = [s for s in segments if s in panel.columns and s not in table.columns]
            static = panel.drop_duplicates(GROUP_IDS)[[*GROUP_IDS, *extra]]
            table, ref_table = (t.merge(static, on=GROUP_IDS, how="left") for t in (table, ref_table))
            current, seg = score(table, "monitor", segments, int(mcfg.min_rows))
            reference, ref_seg = score(ref_table, "reference", segments, int(mcfg.min_rows))
            verdict = judge(current, seg, reference, ref_seg, band, float(mcfg.segment_share))
            metrics = {**current, **reference, **verdict.metrics, "time_monitor_s": time.perf_counter() - t0}
            result = MonitorResult(
                "drift" if verdict.drift else "ok",
                int(mcfg.drift_exit_code) if verdict.drift else 0,
                version.version,
                base_alert["periods"],
                metrics=metrics,
                reference=reference,
                breaches=verdict.breaches,
                segments=verdict.segments,
                forecasts=table,
            )
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if pd.notna(v)})
            for p, grp in table.groupby("period"):
                m = forecast_metrics(grp, prefix="monitor")
                mlflow.log_metrics({"monitor_pinball_scaled_by_period": m["monitor_pinball_scaled"], **({"monitor_coverage_80_by_period": m["monitor_coverage_80"]} if "monitor_coverage_80" in m else {})}, step=int(idx_of[p]))
            if not verdict.segments.empty:
                log_table(verdict.segments, "segments.csv")
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
        if mcfg.get("alert_file"):
            result.alert_path = str(write_alert(result.alert, mcfg.alert_file))
    return result


def summary(result: MonitorResult) -> str:
    """Human-readable report printed by ``monitor.py``."""
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
        if all("m_coverage_80" in m for _, m in per):
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

