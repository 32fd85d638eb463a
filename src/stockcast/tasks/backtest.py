"""The backtest task: replay replenishment policies against the actual demand of the test window.

``run(cfg)`` simulates every policy in ``backtest.policies`` (names of ``backtest.catalog``
entries, each a policy spec: :mod:`stockcast.simulation.policies`) period by period over
the test window (last ``data.split.test_periods`` periods) in one world
(:mod:`stockcast.simulation.world`: same starting stock, economics, demand and realised
lead times for every policy), then reports KPIs overall, per location and per echelon,
*inventory at matched service* (every tunable policy tuned to the same fill rate:
:mod:`stockcast.simulation.matching`), forecast diagnostics, figures and an HTML report,
all logged to MLflow (experiment ``stockcast-backtest``). ``summary(result)`` is what the
console shows.

Policies of the default catalog: ``stockcast`` (the registered model's quantiles +
:func:`~stockcast.optimization.plan`), ``lightgbm_opt`` (LightGBM quantiles + the same
optimizer), ``true_distribution`` (synthetic only: the generator's true quantiles + the
optimizer: the best a forecaster can do), ``classic`` (moving average +
``z·σ·sqrt(L+R)``), ``seasonal_naive_ss`` and ``oracle`` (perfect foresight of demand and
lead times). The registered model is loaded (:func:`~stockcast.tracking.context.
load_context`) only when a selected policy's forecaster asks for it (``model: ???``); the
data are then the model's, else ``cfg.data``. Each forecaster forecasts all review origins
once, before any simulation (:mod:`stockcast.simulation.forecasts`). A policy whose
forecaster cannot exist on the dataset (``LookupError``: e.g. no generator truth) is skipped
with a note.

Settings every policy shares: storage capacities are not simulated, so the optimizer plans
with them relaxed (``backtest.storage_factor``, default 10x); MOQs are off
(``optimizer.values.moq``) because the safety-stock policies cannot honour them; the
optimizer prices markdowns with ``backtest.price_elasticity`` (on synthetic data the world
answers with the generator's true elasticity, so the assumption can be wrong) and plans
with carry-over salvage (``backtest.carry_over``). The comparison at matched service covers
the periods after a warm-up (``backtest.warmup``, default the longest planned store lead
time); the KPI tables cover the whole window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stockcast.cpus import n_jobs
from stockcast.data.panel import load_panel, select_series
from stockcast.data.supply import supply_for
from stockcast.forecast.cache import CachedForecaster
from stockcast.forecast.dataset import TimeSplit
from stockcast.schema import TIME_IDX, season_length_for
from stockcast.simulation.engine import UNMET_MODES, SimTrace, kpis, per_series, trace_frame
from stockcast.simulation.forecasts import (
    by_origin,
    forecast_diagnostics,
    review_forecasts,
    validation_forecasts,
)
from stockcast.simulation.matching import (
    BOUNDS,
    answer_lines,
    bootstrap_intervals,
    matched_view,
    warmup_note,
    warmup_periods,
)
from stockcast.simulation.policies import OptimizerSpec, PolicySpec
from stockcast.simulation.replay import Replay, kpi_tables
from stockcast.simulation.report import figures, html_report
from stockcast.simulation.world import Window, build_world
from stockcast.tracking.context import load_context
from stockcast.tracking.headline import forecast_line, next_steps, plan_line
from stockcast.tracking.mlflow_utils import log_config, log_table, setup_tracking, tracked_run

#: KPIs printed and shown first.
SHOWN_KPIS = ["total_cost", "controllable_cost", "fill_rate", "cycle_service_level",
              "stockout_frequency", "avg_inventory", "avg_inventory_value",
              "inventory_turnover", "working_capital", "lost_sales"]
#: Keys of a forecaster config the backtest fills in when they are left ``???``.
RUNTIME_INPUTS = ("spec", "model")


def metric_name(*parts: str) -> str:
    """The one naming scheme of backtest metrics: ``{scope}_{kpi}`` (parts joined by ``_``)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in "_".join(parts))


@dataclass
class BacktestResult:
    """What a backtest run produced.

    Attributes:
        run_id: The MLflow run.
        table: KPIs per policy over the whole window (main runs).
        by_location: KPIs per policy and location.
        by_echelon: KPIs per policy and echelon.
        matched: The matched-service search, one row per target and policy.
        curves: Every tuning run: policy, knob and KPIs after the warm-up.
        diagnostics: Accuracy of the forecasts each optimizer policy planned with.
        traces: Main run of each policy.
        files: Files written (CSV, markdown, HTML report).
        notes: Notes of the report (the first four describe the setting).
        forecasts: Cross-validation table of each optimizer policy's forecaster.
        headline: One sentence per matched target about the headline policy
            (:func:`~stockcast.simulation.matching.answer_lines`).
    """

    run_id: str | None
    table: pd.DataFrame
    by_location: pd.DataFrame
    by_echelon: pd.DataFrame
    matched: pd.DataFrame
    curves: pd.DataFrame
    diagnostics: pd.DataFrame
    traces: dict[str, SimTrace] = field(repr=False)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    forecasts: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    model_name: str | None = None
    model_version: str | None = None
    headline: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ config -> objects
def _instantiate(entry: Any, where: str, **given: Any) -> Any:
    """Instantiate a ``_target_`` entry, passing the objects ``given`` for its keys (they are
    left ``???`` or absent in the config: runtime objects never go through OmegaConf)."""
    node = OmegaConf.to_container(entry, resolve=True) if isinstance(entry, DictConfig) else dict(entry)
    for k in given:
        node.pop(k, None)
    left = [k for k, v in node.items() if v == "???"]
    if left:
        raise ValueError(f"{where}: {left} left ??? (the backtest fills in only "
                         f"{list(RUNTIME_INPUTS)} of a forecaster)")
    if not given:
        return instantiate(node, _convert_="all")
    return instantiate(node, _partial_=True, _convert_="all")(**given)


def _missing_inputs(entry: Any) -> list[str]:
    """The runtime inputs a forecaster config asks for (keys left ``???``)."""
    if not isinstance(entry, DictConfig):
        return []
    return [k for k in RUNTIME_INPUTS if k in entry.keys() and OmegaConf.is_missing(entry, k)]


def _needs_model(cfg: DictConfig, names: list[str]) -> bool:
    catalog = cfg.backtest.catalog
    return any("model" in _missing_inputs(catalog[n].get("forecaster")) for n in names)


def _policy_specs(cfg: DictConfig, names: list[str], inputs: dict[str, Any],
                  notes: list[str]) -> dict[str, PolicySpec]:
    """Build the selected policy specs (forecasters first); skip those whose forecaster
    cannot exist on this dataset (``LookupError``), with a note."""
    catalog = cfg.backtest.catalog
    out = {}
    for name in names:
        entry = catalog[name]
        where = f"backtest.catalog.{name}"
        fc_entry = entry.get("forecaster")
        if fc_entry is None:
            spec = _instantiate(entry, where)
        else:
            wanted = {k: inputs[k] for k in _missing_inputs(fc_entry)}
            try:
                forecaster = _instantiate(fc_entry, f"{where}.forecaster", **wanted)
            except LookupError as err:
                notes.append(f"{name} skipped: {err.args[0] if err.args else err}")
                continue
            if forecaster is not inputs.get("model") and cfg.backtest.get("cache_dir"):
                forecaster = _cached(forecaster, str(cfg.backtest.cache_dir))
            spec = _instantiate(entry, where, forecaster=forecaster)
        if not isinstance(spec, PolicySpec):
            raise ValueError(f"{where}: {entry.get('_target_')} is not a PolicySpec "
                             "(stockcast.simulation.policies)")
        out[name] = spec
    return out


def _cached(forecaster: Any, cache_dir: str) -> Any:
    """A baseline forecaster whose tables are cached on disk by data fingerprint and
    configuration (:class:`~stockcast.forecast.cache.CachedForecaster`); one without a
    configuration to key on is left as it is."""
    try:
        return CachedForecaster(forecaster, cache_dir)
    except ValueError:
        return forecaster


# ------------------------------------------------------------------ run
def run(cfg: DictConfig) -> BacktestResult:
    """Backtest the configured policies on the test window; log to MLflow (module doc)."""
    setup_tracking()
    bt = cfg.backtest
    names = list(bt.policies)
    unknown = [p for p in names if p not in bt.catalog]
    if unknown:
        raise ValueError(f"backtest.policies: unknown {unknown}; choose from "
                         f"{list(bt.catalog)} (backtest.catalog)")
    if str(bt.unmet) not in UNMET_MODES:
        raise ValueError(f"backtest.unmet={bt.unmet}: choose from {list(UNMET_MODES)}")
    jobs = n_jobs(bt.tuning.get("n_jobs", 1), "backtest.tuning")  # a bad setting fails now
    version, model = None, None
    if _needs_model(cfg, names):
        ctx = load_context(cfg)
        version, model, spec, panel = ctx.version, ctx.bundle, ctx.spec, ctx.panel
    else:
        spec = instantiate(cfg.data)
        panel = select_series(load_panel(spec), None, cfg.get("max_series"))
    split = TimeSplit.from_panel(panel, spec)
    t0, t1 = int(split.test_start), int(split.test_end)
    history = panel[panel[TIME_IDX] < t0]
    supply = supply_for(spec, history, **OmegaConf.to_container(cfg.supply, resolve=True))
    notes: list[str] = []
    plan_cfg = instantiate(cfg.optimizer)
    world = build_world(panel, spec, supply, t0, t1, review=int(bt.review_period),
                        unmet=str(bt.unmet), fixed_order_cost=float(bt.fixed_order_cost),
                        seed=int(cfg.seed), cost_model=plan_cfg.cost_model(),
                        price_elasticity=bt.get("price_elasticity"),
                        season=season_length_for(spec.freq))
    specs = _policy_specs(cfg, names, {"spec": spec, "model": model}, notes)
    cvs = _review_forecasts(cfg, specs, panel, world, model, version, spec, notes)
    _fit_lead_times(specs, panel, world, int(bt.get("validation_periods")
                                               or spec.split["val_periods"]), notes)
    cvs = {n: cv for n, cv in cvs.items() if n in specs}  # bounds dropped by the fit
    replay = Replay(world, specs, {n: by_origin(cv, panel) for n, cv in cvs.items()})
    main = replay.main()
    table, by_loc, by_ech = kpi_tables(main, world)

    # ---- inventory at matched service (periods after the warm-up)
    warm = warmup_periods(bt.get("warmup", "auto"), world)
    if (note := warmup_note(bt.get("warmup", "auto"), world)) is not None:
        notes.append(note)
    evald = pd.DataFrame([{"policy": n, **kpis(tr, start=warm)} for n, tr in main.items()])
    grids = {n: sorted(set(s.grid) | ({s.service} if s.service is not None else set()))
             for n, s in specs.items() if s.tunable}
    tun = bt.tuning
    found = replay.matched(evald, grids, list(bt.matched.targets), start=warm,
                           n_jobs=jobs,
                           untuned={n: s.label for n, s in specs.items()},
                           expand=int(tun.expand), refine=int(tun.refine),
                           tolerance=float(tun.tolerance))
    boot = bt.get("bootstrap") or {}
    found.matched = bootstrap_intervals(
        found.matched,
        lambda n, k: per_series(replay.trace(n, specs[n].service if k is None else k), warm),
        n_boot=int(boot.get("n", 1000)), level=float(boot.get("level", 0.95)),
        seed=int(boot.get("seed", cfg.seed)))
    diagnostics = forecast_diagnostics(cvs, world)
    optimizers = [s for s in specs.values() if isinstance(s, OptimizerSpec)]
    if optimizers:
        first = optimizers[0]
        ratio = first.planning_ratio(world)
        notes.append(f"optimizer policies plan with "
                     f"{'carry-over' if first.carry_over else 'sell-off'}"
                     f" salvage: median store critical ratio {ratio:.3f}")
        if len(diagnostics):
            diagnostics["planning_critical_ratio"] = ratio
    per_period = {n: trace_frame(tr, world.periods, world.echelon) for n, tr in main.items()}
    notes.insert(0, f"matched service over the {len(world.periods) - warm} periods from "
                 f"{pd.Timestamp(world.periods[warm]).date()} (warm-up {warm}: "
                 "backtest.warmup); the KPI tables cover the whole window")
    headline = answer_lines(found.matched, str(bt.get("headline", "stockcast")))
    result = _log(cfg, version, spec, world, table, by_loc, by_ech, found.matched, found.curves,
                  diagnostics, per_period, main, found.targets, notes, evald, headline)
    result.forecasts = cvs
    result.headline = headline
    result.model_name, result.model_version = cfg.model_name, (version.version if version else None)
    return result


def _review_forecasts(cfg, specs, panel, world, model, version, spec, notes
                      ) -> dict[str, pd.DataFrame]:
    """Each forecasting policy's forecasts of every review origin: one cross-validation per
    forecaster (policies sharing one share its table); with ``backtest.retrain_every`` the
    registered model's origins come from the models retrained along the window."""
    every = int(cfg.backtest.get("retrain_every") or 0)
    done: dict[int, pd.DataFrame] = {}
    out = {}
    for n, s in specs.items():
        fc = getattr(s, "forecaster", None)
        if fc is None:
            continue
        key = id(fc)
        if key not in done:
            if every > 0 and model is not None and fc is model:
                done[key] = _retrained_forecasts(cfg, model, version, panel, world, spec,
                                                 every, notes)
            else:
                done[key] = review_forecasts(fc, panel, world)
        out[n] = done[key]
    return out


def _retrained_forecasts(cfg, model, version, panel, world, spec, every, notes) -> pd.DataFrame:
    """Forecasts of the review origins in blocks of ``every`` periods: the first block by
    the model under test, each later block by a model warm-started from the previous one on
    the data known at the block's first origin (the train task: ``init_from``,
    ``data.until``), registered under ``backtest.retrain.model_name``."""
    from stockcast.config import compose_task
    from stockcast.tasks import run_task
    from stockcast.tracking.registry import load_bundle, resolve_model

    rt = cfg.backtest.retrain
    name = str(rt.model_name)
    dates = (panel.drop_duplicates(TIME_IDX).set_index(TIME_IDX)["period"].sort_index())
    origins = world.review_origins()
    current, ref = model, f"models:/{version.name}/{version.version}"
    tables = []
    for start in range(0, len(origins), every):
        block = [o for o in origins if world.t0 + start - 1 <= o < world.t0 + start - 1 + every]
        if start > 0:
            until = str(pd.Timestamp(dates.loc[block[0]]).date())
            overrides = [f"data={rt.data or spec.name}", f"data.until={until}",
                         f"init_from={ref}", f"model_name={name}",
                         "prefetch_baselines.enabled=false",  # no evaluate.py follows
                         f"paths.output_dir={Path(cfg.paths.output_dir) / f'retrain_{until}'}",
                         *_experiment(), *[str(o) for o in rt.overrides or []]]
            trained = run_task("train", compose_task("train", overrides))
            mv = resolve_model(trained.model_version, name)
            current, ref = load_bundle(mv).renamed(model.name), f"models:/{name}/{mv.version}"
            notes.append(f"retrained on the data until {until} (warm start): {ref} forecasts "
                         f"{len(block)} review origins")
        tables.append(review_forecasts(current, panel, world, origins=block))
    return pd.concat(tables, ignore_index=True)


def _experiment() -> list[str]:
    """``experiment=<name>`` when the backtest itself was started with one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    choice = HydraConfig.get().runtime.choices.get("experiment")
    return [f"experiment={choice}"] if choice not in (None, "null", "None") else []


def _fit_lead_times(specs, panel, world, periods: int, notes: list[str]) -> None:
    """Fit every policy whose protection-period demand is fitted (``copula`` / ``direct``)
    on its forecaster's forecasts at the validation origins before the window (one
    cross-validation per forecaster). A bound (``BOUNDS``) whose validation window is too
    short is dropped from ``specs`` with a note; any other policy's error is raised."""
    done: dict[int, pd.DataFrame] = {}
    for n, s in list(specs.items()):
        if not getattr(s, "needs_fit", False):
            continue
        fc = s.forecaster
        if id(fc) not in done:
            try:
                done[id(fc)] = validation_forecasts(fc, panel, world, periods)
            except ValueError as err:
                if n not in BOUNDS:
                    raise
                # a bound is a reference, not the subject: the backtest goes on without it
                notes.append(f"{n} skipped: {err}")
                del specs[n]
                continue
        s.fit_lead_time(done[id(fc)], world)
        fitted = s.plan.lead_time_demand if isinstance(s, OptimizerSpec) else s.lead_time
        notes.append(f"{n}: protection-period demand {fitted.describe()}, fitted at "
                     f"{done[id(fc)]['forecast_origin'].nunique()} validation origins")


def _log(cfg, version, spec, win: Window, table, by_loc, by_ech, matched, curves, diagnostics,
         per_period, traces, targets, notes, evaluated=None, headline=()) -> BacktestResult:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bt = cfg.backtest
    with tracked_run(cfg.logger.experiment_name,
                     run_name=f"backtest-v{version.version}" if version else "backtest",
                     tags={"stockcast.task": "backtest",
                           "stockcast.model_version": version.version if version else "none"}
                     ) as active:
        log_config(cfg)
        n_dc = int((win.keys["echelon"] == "dc").sum())
        mlflow.log_params({"dataset": spec.name, "n_series": len(win.keys) - n_dc,
                           "n_dc_nodes": n_dc,
                           "window_start": str(pd.Timestamp(win.periods[0]).date()),
                           "n_periods": len(win.periods)})
        metrics = {metric_name(r["policy"], k): float(v) for r in table.to_dict("records")
                   for k, v in r.items() if k != "policy" and pd.notna(v)}
        metrics.update({metric_name(r["policy"], r["echelon"], k): float(r[k])
                        for r in by_ech.to_dict("records") for k in SHOWN_KPIS
                        if pd.notna(r.get(k))})
        for r in matched.to_dict("records"):
            tag = "matched" if r["target"] == targets[0][0] else f"matched_{r['target']}"
            for k in ("avg_inventory", "total_cost", "controllable_cost",
                      "avg_inventory_reduction_vs_classic_pct",
                      "total_cost_reduction_vs_classic_pct",
                      "controllable_cost_reduction_vs_classic_pct",
                      "avg_inventory_gap_to_oracle_pct", "controllable_cost_gap_to_oracle",
                      "avg_inventory_gap_to_true_distribution_pct",
                      "controllable_cost_gap_to_true_distribution",
                      "avg_inventory_gap_to_attainable_distribution_pct",
                      "controllable_cost_gap_to_attainable_distribution",
                      "avg_inventory_gap_to_frontier_pct", "best_fill"):
                for suffix in ("", "_lo", "_hi"):
                    if pd.notna(r.get(k + suffix, np.nan)):
                        metrics[metric_name(r["policy"], tag, k + suffix)] = float(r[k + suffix])
        metrics.update({metric_name(r["policy"], "forecast", k): float(v)
                        for r in diagnostics.to_dict("records") for k, v in r.items()
                        if k not in ("policy",) and isinstance(v, int | float) and pd.notna(v)})
        mlflow.log_metrics(metrics)
        files = {}
        for name, df in {"kpis": table, "kpis_by_location": by_loc, "kpis_by_echelon": by_ech,
                         "matched_service": matched, "tuning_curves": curves,
                         "forecast_diagnostics": diagnostics}.items():
            df.to_csv(out / f"{name}.csv", index=False)
            files[f"{name}_csv"] = str(out / f"{name}.csv")
            log_table(df, f"backtest/{name}.csv")
        md = out / "kpis.md"
        md.write_text(table.to_markdown(index=False, floatfmt=",.3f") + "\n\n"
                      + matched_view(matched).to_markdown(index=False, floatfmt=",.3f"),
                      encoding="utf-8")
        files["kpis_md"] = str(md)
        mlflow.log_artifact(str(md), "backtest")
        figs = figures(per_period, table, curves, matched, evaluated)
        for name, fig in figs.items():
            mlflow.log_figure(fig, f"figures/{name}")
        tlabels = ", ".join(f"{lbl} = {v:.4f}" for lbl, v in targets)
        notes = [f"dataset {spec.name}: {len(win.keys) - n_dc} store item-locations + {n_dc} "
                 f"DC item-nodes, {len(win.periods)} periods from "
                 f"{pd.Timestamp(win.periods[0]).date()}",
                 f"unmet demand: {bt.unmet}; review period {bt.review_period}; "
                 f"classic/seasonal cycle service level {bt.service_target} in the main run",
                 f"matched service: fill-rate targets {tlabels}; each tunable policy's knob is "
                 "searched (grid, extension, probit interpolation) and its KPIs are read off "
                 "the line between the two runs that bracket the target",
                 "total cost = holding + shortage (goodwill + lost revenue when lost) + "
                 "ordering + transfer + net markdown cost + starting stock - end stock (both at "
                 "unit cost) = list-price value of the demand - profit; controllable cost = "
                 "total cost - unit cost x demand (0 for a perfect policy); differences between "
                 "policies are profit differences. Per location and echelon, costs fall where "
                 "they occur (purchases where goods arrive, transfers at the receiver): only "
                 "the network totals compare policies", *notes]
        view = matched_view(matched)
        lead_cols = [c for c in ("target", "fill", "policy", "reached", "best_fill",
                                 "inventory", "ctrl_cost", "inv_vs_classic_%",
                                 "ctrl_vs_classic_%", "inv_gap_truth_%", "inv_gap_frontier_%")
                     if c in view]
        report = html_report(
            out / "backtest_report.html", "stockcast backtest", notes,
            {"Inventory at matched service (% vs classic: less than classic, [95% bootstrap "
             "interval over item-locations])": view[lead_cols] if len(view) else view,
             "KPIs (all item-locations, each policy at its own operating point)": table},
            figs, headline=list(headline), lead_figure="service_inventory_tradeoff.png",
            details={"KPIs per echelon": by_ech, "KPIs per location": by_loc,
                     "Forecasts the planning policies used": diagnostics,
                     "Matched-service search (every column)": matched})
        files["report_html"] = str(report)
        mlflow.log_artifact(str(report), "backtest")
        mlflow.log_dict(json.loads(json.dumps({lbl: v for lbl, v in targets})),
                        "backtest/matched_targets.json")
        import matplotlib.pyplot as plt

        for fig in figs.values():
            plt.close(fig)
        (out / "answer.txt").write_text("\n".join(headline) + "\n", encoding="utf-8")
        files["answer_txt"] = str(out / "answer.txt")
        mlflow.log_artifact(str(out / "answer.txt"), "backtest")
        return BacktestResult(active.info.run_id, table, by_loc, by_ech, matched, curves,
                              diagnostics, traces, files, notes)


def summary(result: BacktestResult) -> str:
    """The KPIs and inventory at matched service in brief, then the answer: the model against
    the best baseline, the plan, one line per matched target (with bootstrap intervals) and
    where to look next. The full tables (per echelon, per location, forecast diagnostics, the
    search) are in the report and the MLflow run."""
    fmt = lambda v: f"{v:.4g}" if abs(v) < 100 else f"{v:,.0f}"  # noqa: E731
    kpi_cols = ["policy", "fill_rate", "avg_inventory", "controllable_cost", "total_cost",
                "stockout_frequency", "inventory_turnover"]
    parts = [result.notes[0] if result.notes else "backtest",
             "KPIs over the whole window (each policy at its own operating point)",
             result.table[[c for c in kpi_cols if c in result.table]].to_string(index=False, float_format=fmt)]
    if len(result.matched):
        view = matched_view(result.matched)
        cols = [c for c in ("target", "fill", "policy", "reached", "best_fill", "inventory",
                            "ctrl_cost", "inv_vs_classic_%", "ctrl_vs_classic_%",
                            "inv_gap_oracle_%", "inv_gap_truth_%", "inv_gap_frontier_%")
                if c in view]
        parts += ["", "Inventory and controllable cost at matched fill rate (vs classic: % less than "
                  "classic; gap: % above the bound; [95% bootstrap interval over item-locations])",
                  view[cols].to_string(index=False, float_format=fmt)]
        bad = result.matched[~result.matched["reached"].astype(bool)]
        for r in bad.to_dict("records"):
            parts.append(f"  {r['policy']} @ {r['target']}: {r['status']}")
    lines = [line for line in (
        forecast_line(result.model_name, result.model_version) if result.model_version else None,
        plan_line(result.model_version) if result.model_version else None,
        *backtest_lines(result.matched, result.headline),
        next_steps(result.files.get("report_html")),
    ) if line]
    parts += ["", "== the answer ==", *lines]
    return "\n".join(parts)


def backtest_lines(matched: pd.DataFrame, headline: list[str] | None = None) -> list[str]:
    """``backtest: at 95% fill stockcast holds 41.2% [35.0, 47.1] less inventory than
    classic ...``: one line per matched target (:func:`~stockcast.simulation.matching.
    answer_lines`)."""
    lines = headline if headline else answer_lines(matched)
    return [f"backtest: {line}" if not line.startswith("  ") else f"  {line.strip()}"
            for line in lines]


def backtest_line(matched: pd.DataFrame) -> str | None:
    """The first target's line of :func:`backtest_lines` (``None`` without a comparison)."""
    lines = backtest_lines(matched)
    return lines[0] if lines else None
