"""Evaluate a registered TFT on the held-out test window against baselines; gate the champion.

``run(cfg)`` (called by ``evaluate.py``):

1. resolves ``cfg.model_ref`` (``models:/name@alias``, ``models:/name/3``, a version number, a
   training run id, or null = latest version) and loads its :class:`ForecastBundle`;
2. forecasts the test window from rolling origins, each seeing nothing after its origin
   except known-future covariates (:func:`stockcast.forecast.scenarios.as_of`);
3. runs every baseline on the same origins and scores all models with the same metrics
   (:func:`stockcast.evaluation.metrics.forecast_metrics`), one MLflow child run each (a
   model that carries a quantile calibration is also scored without it, ``tft_uncalibrated``);
4. logs interpretation (variable importance, attention, price partial dependence),
   calibration and fan charts, and a comparison table on the parent run;
5. moves the ``champion`` alias only if the model beats the current champion on the
   primary metric, computed on the same window in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from stockcast.baselines import REGISTRY
from stockcast.evaluation.metrics import (
    forecast_metrics,
    mase_scale,
    metrics_by_horizon,
    pit_values,
)
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.dataset import TimeSplit
from stockcast.forecast.interpret import attention_profile, interpretation, variable_importance
from stockcast.forecast.protocol import attach_actuals, rolling_origins
from stockcast.forecast.scenarios import as_of, price_settings, with_price
from stockcast.plots.forecast import (
    attention_chart,
    calibration_chart,
    fan_chart,
    importance_chart,
    pick_series,
)
from stockcast.schema import GROUP_IDS, TIME_IDX, quantile_column
from stockcast.tracking.context import load_context
from stockcast.tracking.mlflow_utils import (
    log_config,
    log_fingerprint,
    log_table,
    tracked_run,
)
from stockcast.tracking.registry import current_champion, load_bundle

TFT = "tft"


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


# ---------------------------------------------------------------------------- forecasting
def tft_forecast(
    bundle: ForecastBundle,
    panel: pd.DataFrame,
    origins: list[int],
    horizon: int,
    end: int,
    *,
    calibrated: bool = True,
) -> tuple[pd.DataFrame, object]:
    """TFT forecasts from each origin (horizon truncated at ``end``); raw output of the first.

    ``calibrated=False`` gives the model's own quantiles when the bundle carries a calibration.
    """
    tables, first_raw = [], None
    for origin in origins:
        h = min(horizon, end - origin)
        table, raw = bundle.forecast_last(
            as_of(panel, bundle.spec, origin, h), h, return_raw=True, calibrated=calibrated
        )
        tables.append(table)
        first_raw = first_raw if first_raw is not None else raw
    return pd.concat(tables, ignore_index=True), first_raw


def price_response(
    bundle: ForecastBundle, panel: pd.DataFrame, origin: int, horizon: int, factors: list[float]
) -> pd.DataFrame:
    """Partial dependence of forecast demand on the planned price.

    Every series' price over the horizon is set to ``factor`` × list price; the table
    gives mean forecast quantiles per factor and the implied arc elasticity of the median.
    """
    base = as_of(panel, bundle.spec, origin, horizon)
    rows = []
    for f in factors:
        t = bundle.forecast_last(with_price(base, bundle.spec, origin, f), horizon)
        rows.append({"price_factor": f, **{c: t[c].mean() for c in t.columns if c.startswith("q")}})
    out = pd.DataFrame(rows).sort_values("price_factor").reset_index(drop=True)
    med = out[quantile_column(0.5)].to_numpy()
    fac = out["price_factor"].to_numpy()
    el = np.full(len(out), np.nan)
    el[1:] = (np.diff(med) / ((med[1:] + med[:-1]) / 2)) / (np.diff(fac) / ((fac[1:] + fac[:-1]) / 2))
    out["arc_elasticity"] = el
    return out


# ---------------------------------------------------------------------------- main
def run(cfg: DictConfig) -> EvalResult:
    """Evaluate ``cfg.model`` with baselines on the test window and gate the champion."""
    ctx = load_context(cfg)
    name, version, bundle, spec, panel = cfg.model_name, ctx.version, ctx.bundle, ctx.spec, ctx.panel
    split = TimeSplit.from_panel(panel, spec)
    horizon = int(cfg.evaluation.horizon or spec.window["max_prediction_length"])
    origins = rolling_origins(split.test_start, split.test_end, cfg.evaluation.n_origins, cfg.evaluation.origin_stride)
    quantiles = [float(q) for q in bundle.model.loss.quantiles]
    scale = mase_scale(panel[panel[TIME_IDX] < split.test_start])

    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"evaluate-{name}-v{version.version}",
        tags={"stockcast.task": "evaluate", "stockcast.model_version": version.version, "stockcast.dataset": spec.name},
    ) as parent:
        log_config(cfg)
        log_fingerprint(panel)
        mlflow.log_params({"model_uri": f"models:/{name}/{version.version}", "origins": str(origins), "horizon": horizon})

        forecasts: dict[str, pd.DataFrame] = {}
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        tft_table, raw = tft_forecast(bundle, panel, origins, horizon, split.test_end)
        forecasts[TFT] = attach_actuals(tft_table, panel)
        timings[TFT] = time.perf_counter() - t0
        if bundle.calibration is not None:  # the model's own quantiles, side by side
            t0 = time.perf_counter()
            own, _ = tft_forecast(bundle, panel, origins, horizon, split.test_end, calibrated=False)
            forecasts[f"{TFT}_uncalibrated"] = attach_actuals(own, panel)
            timings[f"{TFT}_uncalibrated"] = time.perf_counter() - t0
        for key, entry in cfg.baselines.items():
            if entry is False:
                continue
            baseline = (REGISTRY[key] if entry is None else instantiate(entry, _partial_=True, _convert_="all"))(name=key, spec=spec)
            t0 = time.perf_counter()
            table = baseline.forecast(panel, origins, horizon, quantiles)
            forecasts[baseline.name] = attach_actuals(table, panel)
            timings[baseline.name] = time.perf_counter() - t0

        rows, children = [], {}
        for model_name, table in forecasts.items():
            metrics = forecast_metrics(table, prefix="test", scale=scale)
            by_h = metrics_by_horizon(table, prefix="test", scale=scale)
            with tracked_run(
                cfg.logger.experiment_name,
                run_name=f"{model_name}",
                tags={"stockcast.task": "evaluate", "stockcast.model": model_name},
                parent_run_id=parent.info.run_id,
            ) as child:
                mlflow.log_params({"model": model_name, "origins": str(origins), "horizon": horizon})
                mlflow.log_metrics({**metrics, "time_forecast_s": timings[model_name]})
                for _, r in by_h.iterrows():
                    mlflow.log_metrics({"test_mae_by_horizon": r["test_mae"], "test_pinball_by_horizon": r["test_pinball"]}, step=int(r["horizon"]))
                log_table(by_h, "metrics_by_horizon.csv")
                mlflow.log_text(table.to_csv(index=False), "forecast.csv")
                children[model_name] = child.info.run_id
            rows.append({"model": model_name, **{k.removeprefix("test_"): v for k, v in metrics.items()}, "seconds": timings[model_name]})
        summary = pd.DataFrame(rows).sort_values("pinball").reset_index(drop=True)
        log_table(summary.round(4), "summary/comparison.md")
        log_table(summary, "summary/comparison.csv")
        mlflow.log_metrics({f"{k}": v for k, v in forecast_metrics(forecasts[TFT], prefix="test", scale=scale).items()})
        _log_comparison_figure(summary)

        # interpretation and calibration of the TFT
        interp = interpretation(bundle.model, raw)
        importance = variable_importance(bundle.model, interp)
        log_table(importance, "interpretation/variable_importance.csv")
        att = attention_profile(interp, int(spec.window["max_encoder_length"]))
        log_table(att, "interpretation/attention.csv")
        figs = {
            "interpretation/variable_importance.png": importance_chart(importance),
            "interpretation/attention.png": attention_chart(att),
            "calibration/tft_reliability.png": calibration_chart(pit_values(forecasts[TFT]), forecasts[TFT]),
        }
        first = forecasts[TFT][forecasts[TFT]["forecast_origin"] == forecasts[TFT]["forecast_origin"].min()]
        for group, series in pick_series(first, seed=int(cfg.seed)).items():
            figs[f"forecasts/fan_{group}.png"] = fan_chart(panel, first, series, title=f"TFT test forecasts: {group} series")
        pdp = None
        if cfg.evaluation.price_factors and getattr(spec, "price", None):
            price_settings(spec)
            h0 = min(horizon, split.test_end - origins[0])
            pdp = price_response(bundle, panel, origins[0], h0, list(cfg.evaluation.price_factors))
            log_table(pdp, "interpretation/price_response.csv")
            figs["interpretation/price_response.png"] = _price_figure(pdp)
        for path, fig in figs.items():
            mlflow.log_figure(fig, path)
            plt.close(fig)

        decision = _champion_gate(cfg, version, forecasts[TFT], panel, origins, horizon, split, scale)
        result = EvalResult(
            run_id=parent.info.run_id,
            model_version=version.version,
            summary=summary,
            forecasts=forecasts,
            champion=decision,
            child_runs=children,
            importance=importance,
            price_response=pdp,
        )
    return result


def _champion_gate(cfg, version, tft_table, panel, origins, horizon, split, scale) -> dict[str, object]:
    """Move the alias only on strict improvement of the primary metric, same window."""
    gate = cfg.champion
    metric = f"test_{gate.metric}"
    better = (lambda a, b: a > b) if gate.greater_is_better else (lambda a, b: a < b)
    challenger = forecast_metrics(tft_table, prefix="test", scale=scale)[metric]
    champ = current_champion(cfg.model_name, gate.alias)
    decision: dict[str, object] = {"metric": metric, "challenger_version": version.version, "challenger_score": challenger}
    if champ is None:
        decision.update(promoted=True, reason="no champion yet", champion_version=None, champion_score=None)
    elif champ.version == version.version:
        decision.update(promoted=False, reason="already the champion", champion_version=champ.version, champion_score=challenger)
    else:
        champ_table, common = _champion_forecast(load_bundle(champ), panel, origins, horizon, split, tft_table)
        if champ_table is None:
            decision.update(
                promoted=False,
                reason="champion cannot forecast any of the evaluated rows (other series, "
                "dataset or horizon): not comparable, alias kept",
                champion_version=champ.version,
                champion_score=None,
            )
        else:
            challenger = forecast_metrics(common, prefix="test", scale=scale)[metric]
            champ_score = forecast_metrics(champ_table, prefix="test", scale=scale)[metric]
            wins = better(challenger, champ_score)
            decision.update(
                promoted=wins,
                reason=f"challenger {'beats' if wins else 'does not beat'} champion on {metric} "
                f"({len(common)} common forecast rows)",
                challenger_score=challenger,
                champion_version=champ.version,
                champion_score=champ_score,
            )
    if decision["promoted"] and gate.promote:
        mlflow.MlflowClient().set_registered_model_alias(cfg.model_name, gate.alias, version.version)
    elif decision["promoted"]:
        decision.update(promoted=False, reason=decision["reason"] + " (promotion disabled)")
    mlflow.log_metrics({f"challenger_{metric}": float(decision["challenger_score"]), **({f"champion_{metric}": float(decision["champion_score"])} if decision["champion_score"] is not None else {})})
    mlflow.set_tags({"champion.decision": "promoted" if decision["promoted"] else "kept", "champion.reason": str(decision["reason"]), "champion.previous_version": str(decision["champion_version"])})
    mlflow.log_dict({k: (v if not isinstance(v, np.floating) else float(v)) for k, v in decision.items()}, "champion_decision.json")
    return decision


def _champion_forecast(bundle, panel, origins, horizon, split, tft_table):
    """The champion's forecasts of the rows both models can forecast, and the challenger's
    rows restricted to the same keys (same window, same origins)."""
    if bundle.series is not None:
        panel = panel.merge(pd.DataFrame(bundle.series, columns=GROUP_IDS), on=GROUP_IDS)
    panel = panel[panel["item_id"].isin(bundle.known_items) & panel["location_id"].isin(bundle.known_locations)]
    h = min(horizon, int(bundle.dataset_parameters["max_prediction_length"]))
    if panel.empty:
        return None, None
    champ = attach_actuals(tft_forecast(bundle, panel, origins, h, split.test_end)[0], panel)
    keys = [*GROUP_IDS, "period", "forecast_origin"]
    common = tft_table.merge(champ[keys], on=keys)
    champ = champ.merge(common[keys], on=keys)
    if common.empty:
        return None, None
    return champ, common


def _log_comparison_figure(summary: pd.DataFrame) -> None:
    cols = [c for c in ("mae", "pinball", "coverage_80") if c in summary]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.5 * len(cols), 3.2))
    for ax, c in zip(np.atleast_1d(axes), cols, strict=True):
        d = summary.sort_values(c)
        ax.barh(d["model"], d[c], color=["tab:red" if m == TFT else "tab:gray" for m in d["model"]])
        ax.set_title(c)
        if c == "coverage_80":
            ax.axvline(0.8, color="black", ls="--", lw=1)
    fig.tight_layout()
    mlflow.log_figure(fig, "summary/comparison.png")
    plt.close(fig)


def _price_figure(pdp: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    x = pdp["price_factor"]
    for lo, hi in ((0.1, 0.9), (0.25, 0.75)):
        a, b = quantile_column(lo), quantile_column(hi)
        if a in pdp and b in pdp:
            ax.fill_between(x, pdp[a], pdp[b], alpha=0.2, color="tab:blue")
    ax.plot(x, pdp[quantile_column(0.5)], "o-", color="tab:blue")
    ax.set_xlabel("price / list price")
    ax.set_ylabel("mean forecast demand per series-period")
    ax.set_title("TFT demand response to price (partial dependence)")
    fig.tight_layout()
    return fig
