"""``drift_demo.py``: continuous learning end to end on synthetic data with a regime change.

A rolling replay (``conf/data/synthetic_drift.yaml``: a sentiment shock) doing what a scheduler
would do every period, each step the real task composed from its own config file
(:func:`stockcast.tasks.run_task`):

1. the first model is trained on the first ``demo.initial_periods`` periods
   (``train`` with ``data.until=<date>``) and evaluated, which makes it champion of its own
   registered model (``model_name``, default ``stockcast-tft-drift-demo``, so the demo never
   touches ``stockcast-tft``);
2. then one period of actuals arrives at a time; after each, ``monitor`` checks the champion on
   the newest actuals;
3. after ``demo.consecutive`` drift flags in a row (and at least ``demo.cooldown`` periods
   after the previous retrain) a retrain is triggered: a warm start from the champion on all
   data up to now (``train`` with ``init_from=models:/<name>@champion``), then ``evaluate`` on
   the new version: the champion gate promotes it only if it beats the champion on the same
   held-out window. A retrain that fails is recorded and the champion stays (its training run
   is FAILED, nothing is registered);
4. finally every period's *served* forecast (issued by the champion of that moment) is scored
   against the actuals and compared with two yardsticks on the same periods: the first model
   never retrained (what happens without continuous learning) and, because the data are
   synthetic, the true demand quantiles (the best any forecaster can do).

Everything is logged: one parent run in ``stockcast-drift_demo`` with the timeline and the
summary (detection delay, false alarms, pinball loss before the shock / after it / after the
update), with the train, evaluate and monitor runs nested under it.
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
from hydra.utils import instantiate
from omegaconf import DictConfig

from stockcast.config import compose_task
from stockcast.data.panel import load_panel, select_series
from stockcast.data.spec import DatasetSpec
from stockcast.evaluation.continuous import demo_summary, shock_periods
from stockcast.evaluation.metrics import forecast_metrics
from stockcast.evaluation.monitor import issued_forecasts
from stockcast.forecast.truth import TruthForecaster, TruthUnavailable
from stockcast.plots.forecast import drift_demo_chart
from stockcast.schema import TIME_IDX
from stockcast.tasks import run_task
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


def _experiment() -> list[str]:
    """``experiment=<name>`` when the demo itself was started with one (passed on to every step)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    choice = HydraConfig.get().runtime.choices.get("experiment")
    return [f"experiment={choice}"] if choice not in (None, "null", "None") else []


def _task_cfg(cfg: DictConfig, task: str, out: Path, overrides: list[str]) -> DictConfig:
    """``task``'s own config with the demo's model name, experiment, outputs and the demo's
    extra overrides for that task (``demo.train``, ``demo.evaluate``, ``demo.monitor``)."""
    return compose_task(
        task,
        [f"model_name={cfg.model_name}", f"paths.output_dir={out}", *_experiment(),
         *[str(o) for o in cfg.demo.get(task, []) or []], *overrides],
    )


def _train(cfg: DictConfig, until: str, out: Path, extra: list[str], parent: str):
    # no baselines beside the training: the demo's evaluations compare champion and challenger
    overrides = [f"data={cfg.demo.data}", f"data.until={until}", f"+tags.drift_demo_run={parent}",
                 "prefetch_baselines.enabled=false", *extra]
    return run_task("train", _task_cfg(cfg, "train", out, overrides))


def _evaluate(cfg: DictConfig, version, out: Path):
    return run_task("evaluate", _task_cfg(cfg, "evaluate", out, [f"model={version}"]))


def _data_spec(cfg: DictConfig) -> DatasetSpec:
    return instantiate(compose_task("train", [f"data={cfg.demo.data}"]).data)


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
    shock_idx, seen_idx, shock = shock_periods(spec, len(dates))
    out = Path(cfg.paths.output_dir)
    day = lambda i: str(pd.Timestamp(dates[i]).date())  # noqa: E731
    lead = int(_task_cfg(cfg, "monitor", out, []).monitor.lead)

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
        _evaluate(cfg, initial.model_version, out / "evaluate_initial")
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
            check = run_task("monitor", _task_cfg(cfg, "monitor", out / f"monitor_{day(k)}", [
                f"monitor.as_of={day(k)}",
                f"monitor.alert_file={out / 'alerts' / f'{day(k)}.json'}",
                f"+monitor.tags.drift_demo_run={pid}",
            ]))
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
        scores = _score_served(cfg, spec, panel, served_by, initial_version, lead)
        # a check at period k scores forecasts issued at k - lead for periods up to k: it
        # can only see the change once its actuals or its forecasts' inputs carry it
        detectable = None if shock_idx is None else min(shock_idx, seen_idx + lead)
        summary = demo_summary(timeline, scores, shock_idx, detectable, day)
        mlflow.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, int | float) and v is not None and np.isfinite(v)})
        mlflow.set_tags({"demo.detected": str(summary["detection_delay_periods"] is not None).lower()})
        log_table(timeline, "timeline.csv")
        log_table(timeline, "timeline.md")
        log_table(scores, "scores_by_period.csv")
        mlflow.log_dict(summary, "summary.json")
        fig = drift_demo_chart(scores, timeline, shock_idx, dates)
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
        out.mkdir(parents=True, exist_ok=True)
        (out / "retrain_error.txt").write_text(traceback.format_exc())
        log.error("retrain on data up to %s failed (champion kept): %s: %s", until, type(err).__name__, err)
        if mlflow.active_run() is not None:
            mlflow.set_tag(f"demo.retrain_failed.{until}", f"{type(err).__name__}: {err}"[:500])
        return "retrain failed (champion kept)", None
    decision = _evaluate(cfg, new.model_version, out / "evaluate").champion
    verdict = "promoted" if decision["promoted"] else "kept"
    return f"retrained v{new.model_version}: {verdict}", new.model_version


def _score_served(cfg, spec, panel, served_by, initial_version, lead) -> pd.DataFrame:
    """Per period: pinball/mean demand of the served, never-retrained and true quantiles."""
    versions = sorted(set(served_by.values()) | {initial_version}, key=int)
    bundles = {v: load_bundle(resolve_model(v, cfg.model_name)) for v in versions}
    try:
        truth = TruthForecaster.from_spec(spec, name="truth")
    except TruthUnavailable:
        truth = None
    rows = []
    for k, champ in served_by.items():
        # forecast for period k issued at k - lead by the champion of that moment
        issuer = served_by.get(k - lead + 1, champ) if lead > 1 else champ
        row: dict[str, Any] = {"time_idx": k, "period": panel.loc[panel[TIME_IDX] == k, "period"].iloc[0], "served_by": int(issuer)}
        for name, version in (("served", issuer), ("static", initial_version)):
            bundle = bundles[version]
            table = issued_forecasts(bundle, select_series(panel, bundle.series), [k], lead)
            row[f"{name}_pinball_scaled"] = forecast_metrics(table, prefix="x")["x_pinball_scaled"]
        if truth is not None:  # the same rows as the served forecasts
            table = issued_forecasts(truth, select_series(panel, bundles[issuer].series), [k], lead)
            row["truth_pinball_scaled"] = forecast_metrics(table, prefix="x")["x_pinball_scaled"]
        rows.append(row)
    return pd.DataFrame(rows)


def summary(result: DemoResult) -> str:
    """What ``drift_demo.py`` prints."""
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
