"""``evaluate.py``: a registered model against baselines on its test window; the champion gate.

``run(cfg)``:

1. resolves and loads the model and its panel (:func:`stockcast.tracking.context.load_context`;
   default ``model: latest``, the challenger a training run just registered);
2. forecasts rolling origins of the test window with the model, the model without its
   calibration (when it has one) and every baseline of ``cfg.baselines`` in ONE
   :func:`~stockcast.forecast.protocol.cross_validate` call, so every model is scored with the
   same metrics on identical rows; one MLflow child run per model;
3. logs interpretation (variable importance, attention, price partial dependence), the
   reliability diagram, fan charts and the comparison table on the parent run;
4. moves the ``champion`` alias only if the model beats the current champion on the primary
   metric, both forecasting the same rows in this run (:mod:`stockcast.evaluation.champion`);
   with ``champion.metric: backtest_controllable_cost`` the metric is a decision: both models'
   quantiles plan the network at every review of the test window, each tuned to the fill
   rate ``champion.backtest.fill``, and the lower controllable cost there wins
   (:func:`stockcast.simulation.score.decision_scores`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from stockcast.config import build_baselines, test_window_request
from stockcast.data.io import source_path
from stockcast.data.panel import select_series
from stockcast.evaluation.champion import GateDecision, decide
from stockcast.evaluation.metrics import (
    forecast_metrics,
    mase_scale,
    metrics_by_horizon,
    pit_values,
    relative_by_horizon,
    relative_to,
)
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.cache import CachedForecaster
from stockcast.forecast.dataset import TimeSplit
from stockcast.forecast.interpret import (
    attention_profile,
    interpretation,
    variable_importance,
)
from stockcast.forecast.protocol import Forecaster, by_model, cross_validate
from stockcast.forecast.scenarios import as_of, price_response, price_settings
from stockcast.forecast.truth import ConditionalTruthForecaster, TruthForecaster, TruthUnavailable
from stockcast.plots.forecast import (
    attention_chart,
    calibration_chart,
    comparison_chart,
    fan_chart,
    importance_chart,
    pick_series,
    price_response_chart,
)
from stockcast.schema import FORECAST_ORIGIN
from stockcast.tracking.console import progress
from stockcast.tracking.context import load_context
from stockcast.tracking.mlflow_utils import log_config, log_fingerprint, log_table, tracked_run
from stockcast.tracking.registry import current_champion, load_bundle


@dataclass
class EvalResult:
    """What an evaluation produced."""

    run_id: str
    model_version: str
    summary: pd.DataFrame
    forecasts: dict[str, pd.DataFrame]
    champion: dict[str, object]
    child_runs: dict[str, str] = field(default_factory=dict)
    importance: pd.DataFrame | None = None
    price_response: pd.DataFrame | None = None
    #: ratios to the reference baseline and (synthetic data) to the true quantiles, by name
    relative: dict[str, pd.DataFrame] = field(default_factory=dict)


def baselines(cfg: DictConfig, spec) -> list[Forecaster]:
    """The baselines of ``cfg.baselines`` for the model's dataset, cached on disk by data
    fingerprint and configuration (``cfg.evaluation.cache_dir``; null = no cache)."""
    out: list[Forecaster] = build_baselines(cfg.get("baselines"), spec)
    cache = cfg.evaluation.get("cache_dir")
    return [CachedForecaster(b, cache) for b in out] if cache else out


def run(cfg: DictConfig) -> EvalResult:
    """Evaluate ``cfg.model`` with baselines on the test window and gate the champion."""
    ctx = load_context(cfg)
    bundle, spec, panel, version = ctx.bundle, ctx.spec, ctx.panel, ctx.version
    split = TimeSplit.from_panel(panel, spec)
    origins, horizon = test_window_request(cfg.evaluation, split, bundle.max_horizon)
    scale = mase_scale(panel[panel["time_idx"] < split.test_start])
    forecasters: list[Forecaster] = [bundle]
    if bundle.calibration is not None:  # the model's own quantiles, side by side
        forecasters.append(bundle.uncalibrated())
    forecasters += baselines(cfg, spec)
    # synthetic data: the generator's true quantiles (clairvoyant: every driver as realised)
    # and its law given only what is known at each origin (the attainable limit)
    truths = _truths(cfg, spec)
    forecasters += truths

    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"evaluate-{cfg.model_name}-v{version.version}",
        tags={"stockcast.task": "evaluate", "stockcast.model_version": version.version, "stockcast.dataset": spec.name},
    ) as parent:
        log_config(cfg)
        log_fingerprint(panel, name=spec.name, source=str(source_path(spec)), context="evaluation")
        mlflow.log_params({"model_uri": ctx.uri, "origins": str(origins), "horizon": horizon})
        timings: dict[str, float] = {}
        with progress("evaluate: forecasting the test window", len(forecasters)) as advance:
            def done(name: str, seconds: float) -> None:
                timings[name] = seconds
                advance(f"{name} {seconds:.1f}s")

            cv = cross_validate(forecasters, panel, origins, horizon, bundle.quantiles, callback=done)
        forecasts = by_model(cv)
        cached = [f for f in forecasters if isinstance(f, CachedForecaster)]
        if cached:
            mlflow.log_metrics({"baseline_cache_hits": sum(f.hits for f in cached),
                                "baseline_cache_misses": sum(f.misses for f in cached)})
        summary, children = _score_models(cfg, forecasts, timings, scale, origins, horizon, parent.info.run_id)
        relative = _relative(cfg, summary, forecasts, bundle.name, truths)
        mlflow.log_metrics(forecast_metrics(forecasts[bundle.name], prefix="test", scale=scale))
        if cfg.get("figures", True):
            fig = comparison_chart(summary, highlight=bundle.name)
            mlflow.log_figure(fig, "summary/comparison.png")
            plt.close(fig)
        importance, pdp = _interpret(cfg, bundle, panel, forecasts[bundle.name], origins, horizon, split)
        decision = _champion_gate(cfg, ctx, panel, origins, horizon, forecasts[bundle.name], scale)
        return EvalResult(
            run_id=parent.info.run_id,
            model_version=version.version,
            summary=summary,
            forecasts=forecasts,
            champion=decision.as_dict(),
            child_runs=children,
            importance=importance,
            price_response=pdp,
            relative=relative,
        )


def _truths(cfg: DictConfig, spec) -> list[Forecaster]:
    """On synthetic data, the generator's true quantiles (``evaluation.truth``) and its
    attainable quantiles (``evaluation.truth_attainable``) as forecasters; each null = off."""
    out: list[Forecaster] = []
    if spec.generator is None:
        return out
    for key, cls in (("truth", TruthForecaster), ("truth_attainable", ConditionalTruthForecaster)):
        name = cfg.evaluation.get(key)
        if not name:
            continue
        try:
            out.append(cls.from_spec(spec, name=str(name)))
        except TruthUnavailable:
            continue
    return out


def _relative(cfg, summary, forecasts, model_name, truths) -> dict[str, pd.DataFrame]:
    """Every model's accuracy as a ratio to the reference baseline (``evaluation.reference``,
    LightGBM) and, on synthetic data, to the true and the attainable quantiles; overall and
    per horizon. Logged as tables and as ``test_<metric>_vs_<reference>`` metrics of the
    model."""
    truth_names = [t.name for t in truths]
    refs = [r for r in (cfg.evaluation.get("reference"), *truth_names) if r and r in forecasts]
    out: dict[str, pd.DataFrame] = {}
    # the best baseline on the primary metric: what the model has to beat, in one line
    own = {model_name, f"{model_name}_uncalibrated", *truth_names}
    rivals = summary[~summary["model"].isin(own)]
    if len(rivals):
        best = str(rivals.sort_values("pinball").iloc[0]["model"])
        mine = relative_to(summary, best).set_index("model").loc[model_name]
        mlflow.set_tag("summary.best_baseline", best)
        mlflow.log_metrics({f"test_{m}_vs_best_baseline": float(v) for m, v in mine.items() if pd.notna(v)})
        out["best_baseline"] = relative_to(summary, best)
        out["best_baseline"].attrs["reference"] = best
    for ref in refs:
        overall = relative_to(summary, ref)
        per_h = relative_by_horizon(forecasts, ref)
        log_table(overall.round(4), f"summary/relative_to_{ref}.md")
        log_table(overall, f"summary/relative_to_{ref}.csv")
        log_table(per_h, f"summary/relative_to_{ref}_by_horizon.csv")
        mine = overall.set_index("model").loc[model_name]
        mlflow.log_metrics({f"test_{m}_vs_{ref}": float(v) for m, v in mine.items() if pd.notna(v)})
        out[ref] = overall
        out[f"{ref}_by_horizon"] = per_h
    return out


def _score_models(cfg, forecasts, timings, scale, origins, horizon, parent_id):
    """One child run and one summary row per model, sorted by pinball loss."""
    rows, children = [], {}
    for name, table in forecasts.items():
        metrics = forecast_metrics(table, prefix="test", scale=scale)
        by_h = metrics_by_horizon(table, prefix="test", scale=scale)
        with tracked_run(
            cfg.logger.experiment_name,
            run_name=name,
            tags={"stockcast.task": "evaluate", "stockcast.model": name},
            parent_run_id=parent_id,
        ) as child:
            mlflow.log_params({"model": name, "origins": str(origins), "horizon": horizon})
            mlflow.log_metrics({**metrics, "time_forecast_s": timings[name]})
            for _, r in by_h.iterrows():
                mlflow.log_metrics({"test_mae_by_horizon": r["test_mae"], "test_pinball_by_horizon": r["test_pinball"]}, step=int(r["horizon"]))
            log_table(by_h, "metrics_by_horizon.csv")
            mlflow.log_text(table.to_csv(index=False), "forecast.csv")
            children[name] = child.info.run_id
        rows.append({"model": name, **{k.removeprefix("test_"): v for k, v in metrics.items()}, "seconds": timings[name]})
    summary = pd.DataFrame(rows).sort_values("pinball").reset_index(drop=True)
    log_table(summary.round(4), "summary/comparison.md")
    log_table(summary, "summary/comparison.csv")
    return summary, children


def _interpret(cfg, bundle: ForecastBundle, panel, table, origins, horizon, split):
    """Variable importance, attention, reliability, fan charts and price response."""
    h0 = min(horizon, split.test_end - origins[0])
    _, raw = bundle.forecast_last(as_of(panel, bundle.spec, origins[0], h0), h0, return_raw=True)
    interp = interpretation(bundle.model, raw)
    importance = variable_importance(bundle.model, interp)
    log_table(importance, "interpretation/variable_importance.csv")
    att = attention_profile(interp, int(bundle.spec.window["max_encoder_length"]))
    log_table(att, "interpretation/attention.csv")
    pdp = None
    if cfg.evaluation.price_factors and getattr(bundle.spec, "price", None):
        price_settings(bundle.spec)
        pdp = price_response(bundle, panel, origins[0], h0, list(cfg.evaluation.price_factors))
        log_table(pdp, "interpretation/price_response.csv")
    if not cfg.get("figures", True):
        return importance, pdp
    figs = {
        "interpretation/variable_importance.png": importance_chart(importance),
        "interpretation/attention.png": attention_chart(att),
        "calibration/tft_reliability.png": calibration_chart(pit_values(table), table),
    }
    first = table[table[FORECAST_ORIGIN] == table[FORECAST_ORIGIN].min()]
    for group, series in pick_series(first, seed=int(cfg.seed)).items():
        figs[f"forecasts/fan_{group}.png"] = fan_chart(panel, first, series, title=f"TFT test forecasts: {group} series")
    if pdp is not None:
        figs["interpretation/price_response.png"] = price_response_chart(pdp)
    for path, fig in figs.items():
        mlflow.log_figure(fig, path)
        plt.close(fig)
    return importance, pdp


def _decision_scores(cfg, ctx, panel, bundles) -> dict[str, float]:
    """``champion.metric: backtest_controllable_cost``: each bundle's controllable cost at
    the matched fill rate ``champion.backtest.fill`` over the test window
    (:func:`stockcast.simulation.score.decision_scores`)."""
    from stockcast.cpus import n_jobs
    from stockcast.data.supply import supply_for
    from stockcast.simulation.score import decision_scores

    bt = cfg.champion.get("backtest") or {}
    split = TimeSplit.from_panel(panel, ctx.spec)
    history = panel[panel["time_idx"] < split.test_start]
    supply = supply_for(ctx.spec, history, **OmegaConf.to_container(cfg.supply, resolve=True))
    scores = decision_scores(bundles, panel, ctx.spec, supply, int(split.test_start),
                             int(split.test_end), fill=float(bt.get("fill", 0.95)),
                             plan=(OmegaConf.to_container(bt.plan, resolve=True)
                                   if bt.get("plan") is not None else None),
                             seed=int(cfg.seed),
                             grid=tuple(bt.get("grid", (0.8, 0.95, 0.99))),
                             lead_time_demand=bt.get("lead_time_demand"),
                             validation_periods=bt.get("validation_periods"),
                             n_jobs=n_jobs(bt.get("n_jobs", 1), "champion.backtest"))
    log_table(scores, "champion_decision_scores.csv")
    return dict(zip(scores["model"], scores["controllable_cost"].astype(float), strict=True))


def _champion_gate(cfg, ctx, panel, origins, horizon, table, scale) -> GateDecision:
    """Score challenger and champion on the rows both forecast; move the alias on a win."""
    gate = cfg.champion
    metric = f"test_{gate.metric}"
    version = ctx.version
    decision_aware = gate.metric == "backtest_controllable_cost"
    # decision-aware: the challenger's own score is needed only when no champion is scored
    # beside it (a backtest each, so not run twice)
    challenger = None if decision_aware else forecast_metrics(table, prefix="test", scale=scale)[metric]
    champ = current_champion(cfg.model_name, gate.alias)
    champ_version = champ.version if champ is not None else None
    champ_score, rows = None, None
    if champ is not None and champ.version != version.version:
        t0 = time.perf_counter()
        champ_bundle = load_bundle(champ)
        common = select_series(panel, champ_bundle.series)
        known = common["item_id"].isin(champ_bundle.known_items) & common["location_id"].isin(champ_bundle.known_locations)
        common = common[known]
        if len(common) and decision_aware:
            both = _decision_scores(cfg, ctx, common, [ctx.bundle.renamed("challenger"),
                                                       champ_bundle.renamed("champion")])
            challenger, champ_score = both["challenger"], both["champion"]
            rows = len(common)
        elif len(common):
            both = by_model(cross_validate(
                [ctx.bundle.renamed("challenger"), champ_bundle.renamed("champion")],
                common, origins, min(horizon, champ_bundle.max_horizon), ctx.bundle.quantiles,
            ))
            if len(both.get("challenger", [])):
                challenger = forecast_metrics(both["challenger"], prefix="test", scale=scale)[metric]
                champ_score = forecast_metrics(both["champion"], prefix="test", scale=scale)[metric]
                rows = len(both["challenger"])
        mlflow.log_metric("time_champion_s", time.perf_counter() - t0)
    if challenger is None:
        challenger = _decision_scores(cfg, ctx, panel, [ctx.bundle.renamed("challenger")])[
            "challenger"]
    decision = decide(
        metric, version.version, challenger, champ_version, champ_score,
        greater_is_better=bool(gate.greater_is_better), rows=rows, promote=bool(gate.promote),
    )
    if decision.promoted:
        mlflow.MlflowClient().set_registered_model_alias(cfg.model_name, gate.alias, version.version)
    mlflow.log_metrics({f"challenger_{metric}": decision.challenger_score,
                        **({f"champion_{metric}": decision.champion_score} if decision.champion_score is not None else {})})
    mlflow.set_tags({"champion.decision": "promoted" if decision.promoted else "kept", "champion.reason": decision.reason,
                     "champion.previous_version": str(decision.champion_version)})
    mlflow.log_dict({k: (float(v) if isinstance(v, np.floating) else v) for k, v in decision.as_dict().items()}, "champion_decision.json")
    return decision


def summary(result: EvalResult) -> str:
    """The comparison table and the gate's decision, as ``evaluate.py`` prints them."""
    c = result.champion
    cols = [k for k in ("model", "mae", "rmse", "pinball", "coverage_80", "mase", "bias_scaled", "seconds") if k in result.summary]
    parts = [result.summary[cols].round(3).to_string(index=False)]
    for ref, table in result.relative.items():
        if not ref.endswith("_by_horizon") and ref != "best_baseline":
            parts += ["", f"ratio to {ref} (below 1 = better):", table.round(3).to_string(index=False)]
    return "\n".join([
        *parts,
        f"champion: {'PROMOTED' if c['promoted'] else 'kept'} (was v{c['champion_version']}, "
        f"evaluated v{c['challenger_version']}): {c['reason']}",
    ])

