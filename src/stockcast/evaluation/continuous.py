"""Continuous learning, end to end: ``python evaluate.py task=drift_demo``.

A rolling replay on synthetic data with an injected regime change (``conf/data/
synthetic_drift.yaml``: a sentiment shock), doing what a scheduler would do every period:

1. the first model is trained on the first ``demo.initial_periods`` periods
   (``train.py data=synthetic_drift data.until=<date>``) and evaluated, which makes it
   champion of its own registered model (``model_name``, default ``stockcast-tft-drift-demo``,
   so the demo never touches ``stockcast-tft``);
2. then one period of actuals arrives at a time; after each, the monitor
   (:mod:`stockcast.evaluation.monitor`) checks the champion on the newest actuals;
3. after ``demo.consecutive`` drift flags in a row (and at least ``demo.cooldown`` periods
   after the previous retrain) a retrain is triggered: a warm start from the champion on
   all data up to now (``train.py init_from=models:/<name>@champion data.until=<now>``),
   then ``evaluate.py`` on the new version: the champion gate promotes it only if it beats
   the champion on the same held-out window. A retrain that fails is recorded and the
   champion stays (its training run is FAILED, nothing is registered);
4. finally every period's *served* forecast (issued by the champion of that moment) is
   scored against the actuals and compared with two yardsticks on the same periods: the
   first model never retrained (what happens without continuous learning) and, because the
   data are synthetic, the true demand quantiles (the best any forecaster can do).

Everything is logged: one parent run in ``stockcast-drift_demo`` with the timeline (metrics
per period, table, figure) and summary figures (detection delay in periods, false alarms,
pinball loss before the shock / after it / after the update), with the train, evaluate and
monitor runs nested under it.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from stockcast.config import compose_task
from stockcast.data.panel import load_panel
from stockcast.data.spec import DatasetSpec
from stockcast.evaluation import evaluate as evaluate_task
from stockcast.evaluation import monitor as monitor_task
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.schema import GROUP_IDS, TIME_IDX
from stockcast.tracking.mlflow_utils import log_config, log_table, setup_tracking, tracked_run
from stockcast.tracking.registry import current_champion, load_bundle, resolve_model

log = logging.getLogger(__name__)

@dataclass
class DemoResult:
    """The demo's timeline and summary."""

    run_id: str
    timeline: pd.DataFrame
    summary: dict[str, Any]
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)


# ---------------------------------------------------------------------------- helpers
def _train(cfg: DictConfig, until: str, out: Path, extra: list[str], parent: str):
    from stockcast.train import run as train_run

    overrides = [
        f"data={cfg.demo.data}",
        f"data.until={until}",
        f"model_name={cfg.model_name}",
        f"paths.output_dir={out}",
        f"+tags.drift_demo_run={parent}",
        *([f"experiment={cfg.demo.experiment}"] if cfg.demo.get("experiment") else []),
        *[str(o) for o in cfg.demo.train],
        *extra,
    ]
    return train_run(compose_task("train", overrides))


def _sub_cfg(cfg: DictConfig, task: str, **values: Any) -> DictConfig:
    sub = cfg.copy()
    with open_dict(sub):
        sub.logger.experiment_name = f"stockcast-{task}"
        for key, value in values.items():
            OmegaConf.update(sub, key, value, force_add=True)
    return sub


def _data_spec(cfg: DictConfig) -> DatasetSpec:
    from hydra.utils import instantiate

    data_cfg = compose_task("train", [f"data={cfg.demo.data}"]).data
    return instantiate(data_cfg)


def _shock(spec: DatasetSpec, dates: list[pd.Timestamp]) -> tuple[int | None, int | None, dict[str, Any] | None]:
    """Indices (into ``dates``) of the first period whose demand the generator's regime
    change affects and of the first period it can be seen in the data (a sentiment shock
    shows in the sentiment index ``sentiment_lag`` periods before demand follows)."""
    gen = dict(spec.generator or {})
    shock = dict(gen.get("regime_change") or {})
    if not shock:
        return None, None, None
    period = int(shock.get("period", -1))
    n = int(gen.get("periods", len(dates)))
    idx = n + period if period < 0 else period
    lag = int(gen.get("sentiment_lag", 2)) if shock.get("kind") == "sentiment" else 0
    return idx, max(idx - lag, 0), shock


def _truth(spec: DatasetSpec) -> pd.DataFrame | None:
    """The generator's true demand quantiles (synthetic data only)."""
    if spec.generator is None:
        return None
    from stockcast.data.io import materialize

    path = materialize(spec) / "truth_demand.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path)
    truth[GROUP_IDS] = truth[GROUP_IDS].astype(str)
    return truth


# ---------------------------------------------------------------------------- main
def run(cfg: DictConfig) -> DemoResult:
    """Replay ``demo.steps`` periods of monitoring, retraining and gating (module docstring)."""
    setup_tracking()
    demo = cfg.demo
    spec = _data_spec(cfg)
    panel = load_panel(spec)
    dates = sorted(panel["period"].unique())
    first, steps = int(demo.initial_periods), int(demo.steps)
    if not 0 < first < len(dates) or first + steps > len(dates):
        raise ValueError(
            f"demo.initial_periods={first} and demo.steps={steps} need {first + steps} periods; "
            f"data '{spec.name}' has {len(dates)}"
        )
    shock_idx, seen_idx, shock = _shock(spec, dates)
    out = Path(cfg.paths.output_dir)
    day = lambda i: str(pd.Timestamp(dates[i]).date())  # noqa: E731

    rows: list[dict[str, Any]] = []
    served_by: dict[int, str] = {}  # period index -> champion version whose forecast was served
    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"drift-demo-{spec.name}",
        tags={"stockcast.task": "drift_demo", "stockcast.dataset": spec.name},
    ) as parent:
        pid = parent.info.run_id
        log_config(cfg)
        mlflow.log_params({"shock": str(shock), "shock_period": day(shock_idx) if shock_idx is not None else "none"})

        # 1. the first model
        initial = _train(cfg, day(first - 1), out / "train_initial", [], pid)
        evaluate_task.run(_sub_cfg(cfg, "evaluate", model_ref=initial.model_version))
        champion = current_champion(cfg.model_name, cfg.champion.alias)
        if champion is None or champion.version != initial.model_version:
            raise RuntimeError(
                f"the first model (v{initial.model_version}) did not become champion of "
                f"'{cfg.model_name}': use a model_name of its own for the demo"
            )
        initial_version = champion.version
        flags, last_retrain = 0, None

        # 2. periods arrive one at a time
        for k in range(first, first + steps):
            served_by[k] = champion.version
            check = monitor_task.run(
                _sub_cfg(
                    cfg,
                    "monitor",
                    model_ref=None,
                    **{"monitor.as_of": day(k), "monitor.alert_file": str(out / "alerts" / f"{day(k)}.json"), "monitor.tags": {"drift_demo_run": pid}},
                )
            )
            row: dict[str, Any] = {
                "period": day(k),
                "time_idx": k,
                "champion": int(champion.version),
                "status": check.status,
                "pinball_ratio": check.metrics.get("monitor_pinball_ratio", np.nan),
                "coverage_80": check.metrics.get("monitor_coverage_80", np.nan),
                "bias_scaled": check.metrics.get("monitor_bias_scaled", np.nan),
                "action": "",
                "new_version": None,
            }
            flags = flags + 1 if check.drift else 0
            cooled = last_retrain is None or k - last_retrain >= int(demo.cooldown)
            if check.drift and flags >= int(demo.consecutive) and cooled and k < first + steps - 1:
                last_retrain = k
                row["action"], row["new_version"] = _retrain(cfg, day(k), out / f"retrain_{day(k)}", pid)
                champion = current_champion(cfg.model_name, cfg.champion.alias)
                flags = 0
            rows.append(row)
            log.info(
                "%s champion v%s: %s (pinball ratio %.2f)%s", row["period"], row["champion"], check.status,
                row["pinball_ratio"], f" -> {row['action']}" if row["action"] else "",
            )
            mlflow.log_metrics(
                {
                    "demo_pinball_ratio": float(row["pinball_ratio"]),
                    "demo_drift": float(check.drift),
                    "demo_champion_version": float(row["champion"]),
                },
                step=k,
            )
        timeline = pd.DataFrame(rows)

        # 3. served vs never-retrained vs truth, period by period
        scores = _score_served(cfg, spec, panel, served_by, initial_version)
        # a check at period k scores forecasts issued at k - lead for periods up to k: it
        # can only see the change once its actuals or its forecasts' inputs carry it
        detectable = None if shock_idx is None else min(shock_idx, seen_idx + int(cfg.monitor.lead))
        summary = _summary(timeline, scores, shock_idx, detectable, day)
        mlflow.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, int | float) and v is not None and np.isfinite(v)})
        mlflow.set_tags({"demo.detected": str(summary["detection_delay_periods"] is not None).lower()})
        log_table(timeline, "timeline.csv")
        log_table(timeline, "timeline.md")
        log_table(scores, "scores_by_period.csv")
        mlflow.log_dict(summary, "summary.json")
        fig = _figure(scores, timeline, shock_idx, dates)
        mlflow.log_figure(fig, "drift_demo.png")
        plt.close(fig)
        for _, s in scores.iterrows():
            mlflow.log_metrics({f"demo_{c}": float(s[c]) for c in ("served_pinball_scaled", "static_pinball_scaled", "truth_pinball_scaled") if pd.notna(s.get(c))}, step=int(s["time_idx"]))
    return DemoResult(run_id=pid, timeline=timeline, summary=summary, scores=scores)


def _retrain(cfg: DictConfig, until: str, out: Path, parent: str) -> tuple[str, str | None]:
    """Warm-start retrain + champion gate. A failed retrain leaves the champion as it was."""
    ref = f"models:/{cfg.model_name}@{cfg.champion.alias}"
    try:
        new = _train(cfg, until, out, [f"init_from={ref}", *[str(o) for o in cfg.demo.retrain]], parent)
    except Exception as err:  # a failed retrain must not stop monitoring: record it, keep champion
        (out / "retrain_error.txt").parent.mkdir(parents=True, exist_ok=True)
        (out / "retrain_error.txt").write_text(traceback.format_exc())
        if mlflow.active_run() is not None:
            mlflow.set_tag(f"demo.retrain_failed.{until}", f"{type(err).__name__}: {err}"[:500])
        return "retrain failed (champion kept)", None
    decision = evaluate_task.run(_sub_cfg(cfg, "evaluate", model_ref=new.model_version)).champion
    verdict = "promoted" if decision["promoted"] else "kept"
    return f"retrained v{new.model_version}: {verdict}", new.model_version


def _score_served(cfg, spec, panel, served_by, initial_version) -> pd.DataFrame:
    """Per period: pinball/mean demand of the served, never-retrained and true quantiles."""
    lead = int(cfg.monitor.lead)
    versions = sorted(set(served_by.values()) | {initial_version}, key=int)
    bundles = {v: load_bundle(resolve_model(v, cfg.model_name)) for v in versions}
    rows, truth = [], _truth(spec)
    for k, champ in served_by.items():
        # forecast for period k issued at k - lead by the champion of that moment
        issuer = served_by.get(k - lead + 1, champ) if lead > 1 else champ
        row: dict[str, Any] = {"time_idx": k, "period": panel.loc[panel[TIME_IDX] == k, "period"].iloc[0], "served_by": int(issuer)}
        tables = {}
        for name, version in (("served", issuer), ("static", initial_version)):
            bundle = bundles[version]
            sub = panel.merge(pd.DataFrame(bundle.series, columns=GROUP_IDS), on=GROUP_IDS) if bundle.series is not None else panel
            tables[name] = monitor_task.issued_forecasts(bundle, sub, [k], lead)
            row[f"{name}_pinball_scaled"] = forecast_metrics(tables[name], prefix="x")["x_pinball_scaled"]
        if truth is not None:
            keys = tables["served"][[*GROUP_IDS, "period", "demand"]]
            t = truth.merge(keys[[*GROUP_IDS, "period"]], on=[*GROUP_IDS, "period"])
            qcols = [c for c in t.columns if c.startswith("q")]
            if qcols and len(t):
                row["truth_pinball_scaled"] = forecast_metrics(t[[*GROUP_IDS, "period", "demand", *qcols]], prefix="x")["x_pinball_scaled"]
        rows.append(row)
    return pd.DataFrame(rows)


def _summary(timeline, scores, shock_idx, seen_idx, day) -> dict[str, Any]:
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


def _figure(scores: pd.DataFrame, timeline: pd.DataFrame, shock_idx: int | None, dates) -> plt.Figure:
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    x = pd.to_datetime(scores["period"])
    for col, color, label in (("served", "tab:red", "served (continuous learning)"), ("static", "tab:gray", "first model, never retrained"), ("truth", "tab:green", "true quantiles")):
        c = f"{col}_pinball_scaled"
        if c in scores:
            axes[0].plot(x, scores[c], "o-", color=color, label=label, ms=3)
    axes[0].set_ylabel("pinball / mean demand")
    axes[0].legend(fontsize=8)
    tx = pd.to_datetime(timeline["period"])
    axes[1].plot(tx, timeline["pinball_ratio"], "o-", color="tab:blue", ms=3, label="monitor pinball ratio")
    drift = timeline["status"] == "drift"
    axes[1].scatter(tx[drift], timeline.loc[drift, "pinball_ratio"], color="tab:red", zorder=3, label="drift flagged")
    for _, r in timeline[timeline["action"] != ""].iterrows():
        axes[1].axvline(pd.Timestamp(r["period"]), color="tab:purple", ls=":", lw=1)
        axes[1].annotate(r["action"], (pd.Timestamp(r["period"]), axes[1].get_ylim()[1] * 0.9), fontsize=6, rotation=90, va="top")
    axes[1].set_ylabel("monitor: pinball ratio")
    axes[1].legend(fontsize=8)
    if shock_idx is not None and shock_idx < len(dates):
        for ax in axes:
            ax.axvline(pd.Timestamp(dates[shock_idx]), color="black", ls="--", lw=1)
    fig.suptitle("Drift demo: regime change (dashed), monitor flags, retrains (dotted)")
    fig.tight_layout()
    return fig


def summary_text(result: DemoResult) -> str:
    """What ``evaluate.py task=drift_demo`` prints."""
    s = result.summary
    cols = ["period", "champion", "status", "pinball_ratio", "coverage_80", "bias_scaled", "action"]
    lines = [result.timeline[cols].round(3).to_string(index=False), ""]
    lines.append(
        f"regime change: demand affected from {s['shock_period']} (first check that can see it: {s['shock_detectable_from']}); "
        f"first drift flag from then {s.get('detected_at')} (delay {s['detection_delay_periods']} periods); false alarms before: {s['false_alarms']}"
    )
    lines.append(f"retrains: {s['retrains']}, promotions: {s['promotions']} (first after the shock: {s['first_promotion']})")
    for phase in ("before_shock", "after_shock_before_update", "after_update"):
        parts = [f"{c} {s[f'{phase}_{c}_pinball_scaled']:.3f}" for c in ("served", "static", "truth") if f"{phase}_{c}_pinball_scaled" in s]
        if parts:
            lines.append(f"pinball/mean demand {phase} ({s[f'periods_{phase}']} periods): " + ", ".join(parts))
    if "after_update_improvement_vs_static" in s:
        lines.append(f"after the update the served forecasts' pinball is {100 * s['after_update_improvement_vs_static']:.1f}% lower than the never-retrained model's")
    lines.append(f"MLflow run: {result.run_id} (experiment stockcast-drift_demo)")
    return "\n".join(lines)
