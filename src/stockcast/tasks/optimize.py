"""The optimize task: registered model -> quantile forecasts -> network decisions -> MLflow.

``run(cfg)``:

1. loads the model and its panel (:func:`stockcast.tracking.context.load_context`: ``model``
   null = the champion, else the latest version) or reads a forecast table file
   (``forecast_path``);
2. forecasts the decision horizon from the planning origin at list price, and again at
   each candidate markdown (price is a known-future covariate of the TFT)
   (:mod:`stockcast.optimization.forecasts`);
3. takes the supply tables from :func:`stockcast.data.supply.supply_for` (a folder, the
   dataset generator's tables, or derived from the history); with a forecast file, from
   ``supply.path`` or derived from the forecast;
4. plans the whole network (:func:`stockcast.optimization.plan.plan_with_disruptions`) and
   writes the decisions table (parquet + CSV) with reasons, solver statistics and
   disruption re-plans, all logged to one MLflow run with the inputs' fingerprints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stockcast.data.supply import SupplyTables, derive_supply, supply_for
from stockcast.optimization.forecasts import forecasts_for_plan, planning_origin
from stockcast.optimization.plan import PlanConfig, PlanResult, plan_with_disruptions
from stockcast.schema import GROUP_IDS, TIME_IDX, table_sha256
from stockcast.tracking.context import load_context, resolve
from stockcast.tracking.mlflow_utils import log_config, setup_tracking, tracked_run


@dataclass
class OptimizeResult:
    """What an optimization run produced.

    Attributes:
        run_id: The MLflow run.
        plan: The plan (decisions, per-node report, stats, disruption re-plans).
        forecast: The forecast table planned from (list price).
        supply: The supply tables planned with.
        origin: Date of the last observed period (the decision date).
        files: ``decisions_parquet``, ``decisions_csv`` -> paths.
    """

    run_id: str
    plan: PlanResult
    forecast: pd.DataFrame
    supply: SupplyTables
    origin: pd.Timestamp
    files: dict[str, str]


def _read_forecast(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, parse_dates=["period", "forecast_origin"])


def run(cfg: DictConfig) -> OptimizeResult:
    """Plan the network's decisions from the model's forecasts; log everything.

    Raises:
        FileNotFoundError: ``forecast_path`` does not exist.
        ValueError: Bad config values (named by key).
        DataValidationError: Bad forecast or supply tables.
        InfeasibleProblemError: No feasible plan (the MLflow run is marked FAILED).
    """
    setup_tracking()
    plan_cfg: PlanConfig = instantiate(cfg.optimizer)
    version = None
    if cfg.get("forecast_path"):
        if not Path(cfg.forecast_path).exists():
            raise FileNotFoundError(f"forecast_path={cfg.forecast_path}: no such file")
    else:
        version = resolve(cfg)
    supply_cfg = OmegaConf.to_container(cfg.supply, resolve=True)
    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"optimize-v{version.version}" if version else "optimize-file",
        tags={"stockcast.task": "optimize",
              "stockcast.model_version": version.version if version else "file"},
    ) as active:
        log_config(cfg)
        if version is None:
            forecast = _read_forecast(Path(cfg.forecast_path))
            price_forecasts = None
            if supply_cfg.get("path"):
                supply = SupplyTables.read(Path(supply_cfg["path"]))
            else:
                supply = derive_supply(forecast, supply_cfg.get("derive"), demand_column=None)
            origin_ts = pd.Timestamp(forecast["forecast_origin"].max())
        else:
            ctx = load_context(cfg)
            spec, panel = ctx.spec, ctx.panel
            horizon = int(cfg.planning.horizon or spec.window["max_prediction_length"])
            origin = planning_origin(panel, cfg.planning.get("origin"), horizon)
            history = panel[panel[TIME_IDX] <= origin]
            supply = supply_for(spec, history, **supply_cfg)
            list_price = None
            if spec.price and cfg.planning.reprice:
                list_price = supply.economics.set_index(GROUP_IDS)["price"]
            forecast, price_forecasts = forecasts_for_plan(
                ctx.bundle, spec, panel, origin, horizon, list(plan_cfg.markdowns), list_price)
            origin_ts = pd.Timestamp(history["period"].max())
            mlflow.log_params({"model_uri": ctx.uri, "origin": str(origin_ts.date()),
                               "horizon": horizon, "dataset": spec.name})
        fingerprints = {"forecast_sha256": table_sha256(forecast)}
        for name, df in supply.as_dict().items():
            fingerprints[f"{name}_sha256"] = table_sha256(df)
        mlflow.log_params(fingerprints)

        result = plan_with_disruptions(forecast, supply, plan_cfg, price_forecasts)
        files = _log_plan(result, forecast, supply, Path(cfg.paths.output_dir))
        return OptimizeResult(active.info.run_id, result, forecast, supply, origin_ts, files)


def _log_plan(result: PlanResult, forecast: pd.DataFrame, supply: SupplyTables,
              out: Path) -> dict[str, str]:
    """Write the decisions files and log tables, metrics and disruption re-plans."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"decisions_parquet": str(out / "decisions.parquet"),
             "decisions_csv": str(out / "decisions.csv")}
    result.decisions.to_parquet(files["decisions_parquet"], index=False)
    result.decisions.to_csv(files["decisions_csv"], index=False)
    for f in files.values():
        mlflow.log_artifact(f, "decisions")
    mlflow.log_text(result.nodes.to_csv(index=False), "decisions/nodes.csv")
    mlflow.log_text(forecast.to_csv(index=False), "inputs/forecast.csv")
    for name, df in supply.as_dict().items():
        mlflow.log_text(df.to_csv(index=False), f"inputs/{name}.csv")
    numeric = {k: float(v) for k, v in {**result.stats, **result.summary}.items()
               if isinstance(v, int | float) and not isinstance(v, bool) and pd.notna(v)}
    mlflow.log_metrics({_metric_name(k): v for k, v in numeric.items()})
    mlflow.log_dict(json.loads(json.dumps({"stats": result.stats, "summary": result.summary},
                                          default=str)), "decisions/solver_and_summary.json")
    if result.disruptions:
        rows = [{"disruption": d.label, "cost": d.cost, "objective_base": d.objective_base,
                 "objective": d.objective, "changed_lines": len(d.changed_sourcing), "note": d.note}
                for d in result.disruptions]
        mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "disruptions/summary.csv")
        for i, d in enumerate(result.disruptions):
            mlflow.log_text(d.changed_sourcing.to_csv(index=False),
                            f"disruptions/{i}_changed_sourcing.csv")
            mlflow.log_metric(f"disruption_cost_{i}", float(d.cost))
    return files


def _metric_name(key: str) -> str:
    return "plan_" + "".join(c if c.isalnum() or c in "_-." else "_" for c in key)


def summary(result: OptimizeResult) -> str:
    """A short decision summary for the terminal."""
    p = result.plan
    s, st = p.summary, p.stats
    d = p.decisions
    lines = [
        f"plan as of {result.origin.date()} for {s.get('n_item_locations')} item-locations: "
        f"{s.get('n_orders')} orders, {s.get('n_transfers')} transfers, "
        f"{s.get('n_markdowns')} markdowns",
        f"solver {st.get('solver')} {st.get('status')} in {float(st.get('solve_time_s', 0)):.2f}s "
        f"(setup {float(st.get('setup_time_s', 0)):.2f}s), {st.get('n_variables')} variables, "
        f"{st.get('n_constraints')} constraints",
    ]
    for key in ("expected_cost", "expected_profit", "expected_fill_rate", "purchase_spend",
                "transfer_spend"):
        if key in s:
            lines.append(f"  {key}: {s[key]:,.3f}")
    for dis in p.disruptions:
        line = (f"  disruption '{dis.label}': costs {dis.cost:,.2f} more; "
                f"{len(dis.changed_sourcing)} lines re-sourced")
        lines.append(line)
        if dis.note:
            lines.append(f"    ({dis.note})")
    cols = [c for c in ("item_id", "location_id", "action", "source", "quantity", "price",
                        "alternative") if c in d]
    top = d[d["action"] != "none"].sort_values("quantity", ascending=False).head(8)[cols]
    lines.append(top.to_string(index=False))
    lines.append(f"decisions: {result.files['decisions_csv']}")
    return "\n".join(lines)
