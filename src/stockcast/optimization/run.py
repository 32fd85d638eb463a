"""``optimize.py``: registered model -> quantile forecasts -> network decisions -> MLflow.

``run(cfg)``:

1. loads the model (``model_ref``, default the ``champion`` alias, else the latest
   version) or reads a forecast table file (``forecast_path``);
2. forecasts the decision horizon from the planning origin at list price, and again at
   each candidate markdown (price is a known-future covariate of the TFT);
3. takes the supply tables (economics, suppliers, network) from the dataset's generator
   output when it has one (synthetic), from ``supply.path`` when set, else derives them by
   :func:`stockcast.data.supply.derive_supply`'s documented rule;
4. solves one CVXPY problem for the whole network (:func:`stockcast.optimization.plan.plan`)
   and writes the decisions table (parquet + CSV) with reasons, solver statistics and
   disruption re-plans, all logged to one MLflow run with the inputs' fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stockcast.data.supply import SupplyTables, derive_supply, supply_for
from stockcast.forecast.bundle import ForecastBundle
from stockcast.forecast.scenarios import as_of, price_settings, with_price
from stockcast.optimization.plan import PlanConfig, PlanResult, plan
from stockcast.schema import GROUP_IDS, TIME_IDX
from stockcast.tracking.context import load_context, resolve
from stockcast.tracking.mlflow_utils import log_config, setup_tracking, tracked_run


@dataclass
class OptimizeResult:
    """What an optimization run produced."""

    run_id: str
    plan: PlanResult
    forecast: pd.DataFrame
    supply: SupplyTables
    origin: pd.Timestamp
    files: dict[str, str]


def table_fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a table (column names and values)."""
    cols = sorted(df.columns)
    h = pd.util.hash_pandas_object(df[cols], index=False).to_numpy().tobytes()
    return hashlib.sha256(h + ",".join(cols).encode()).hexdigest()


def _origin(panel: pd.DataFrame, value, horizon: int) -> int:
    """Planning origin as ``time_idx``: an int, a date, or null = the last origin that
    still has ``horizon`` periods of known covariates (and actuals, for checking)."""
    if value is None:
        return int(panel[TIME_IDX].max()) - horizon
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    match = panel.loc[panel["period"] == pd.Timestamp(value), TIME_IDX]
    if match.empty:
        raise ValueError(f"planning.origin={value}: no such period in the data")
    return int(match.iloc[0])


def forecasts_for_plan(
    bundle: ForecastBundle,
    panel: pd.DataFrame,
    origin: int,
    horizon: int,
    markdowns: list[float],
    list_price: pd.Series | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Forecast at list price and at each markdown (``None`` without a price column)."""
    spec = bundle.spec
    base = as_of(panel, spec, origin, horizon)
    if list_price is None or not spec.price:
        return bundle.forecast_last(base, horizon), None
    price_settings(spec)
    at_list = bundle.forecast_last(with_price(base, spec, origin, 1.0), horizon)
    tables = []
    for m in markdowns:
        t = bundle.forecast_last(with_price(base, spec, origin, 1.0 - float(m)), horizon)
        lp = t.set_index(GROUP_IDS).index.map(list_price.to_dict().get).to_numpy(dtype=float)
        tables.append(t.assign(price=lp * (1.0 - float(m))))
    return at_list, (pd.concat(tables, ignore_index=True) if tables else None)


def run(cfg: DictConfig) -> OptimizeResult:
    """Plan the network's decisions from the model's forecasts; log everything."""
    setup_tracking()
    plan_cfg = instantiate(cfg.optimizer)
    version = None
    if cfg.get("forecast_path"):
        if not Path(cfg.forecast_path).exists():
            raise FileNotFoundError(f"forecast_path={cfg.forecast_path}: no such file")
    else:
        version = resolve(cfg)
    with tracked_run(
        cfg.logger.experiment_name,
        run_name=f"optimize-v{version.version}" if version else "optimize-file",
        tags={"stockcast.task": "optimize", "stockcast.model_version": version.version if version else "file"},
    ) as active:
        log_config(cfg)
        if version is None:
            path = Path(cfg.forecast_path)
            forecast = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, parse_dates=["period", "forecast_origin"])
            price_forecasts = None
            supply = SupplyTables.read(Path(cfg.supply.path)) if cfg.supply.get("path") else derive_supply(forecast, OmegaConf.to_container(cfg.supply.derive, resolve=True), demand_column=None)
            origin_ts = pd.Timestamp(forecast["forecast_origin"].max())
        else:
            ctx = load_context(cfg)
            bundle, spec, panel = ctx.bundle, ctx.spec, ctx.panel
            horizon = int(cfg.planning.horizon or spec.window["max_prediction_length"])
            origin = _origin(panel, cfg.planning.get("origin"), horizon)
            history = panel[panel[TIME_IDX] <= origin]
            supply = supply_for(spec, history, **OmegaConf.to_container(cfg.supply, resolve=True))
            list_price = None
            if spec.price and cfg.planning.reprice:
                list_price = supply.economics.set_index(GROUP_IDS)["price"]
            forecast, price_forecasts = forecasts_for_plan(
                bundle, panel, origin, horizon, list(plan_cfg.markdowns), list_price
            )
            origin_ts = pd.Timestamp(history["period"].max())
            mlflow.log_params({"model_uri": f"models:/{version.name}/{version.version}", "origin": str(origin_ts.date()), "horizon": horizon, "dataset": spec.name})
        fingerprints = {"forecast_sha256": table_fingerprint(forecast)}
        for name, df in supply.as_dict().items():
            fingerprints[f"{name}_sha256"] = table_fingerprint(df)
        mlflow.log_params(fingerprints)

        result = plan_with_disruptions(forecast, supply, plan_cfg, price_forecasts)

        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {"decisions_parquet": str(out / "decisions.parquet"), "decisions_csv": str(out / "decisions.csv")}
        result.decisions.to_parquet(files["decisions_parquet"], index=False)
        result.decisions.to_csv(files["decisions_csv"], index=False)
        for f in files.values():
            mlflow.log_artifact(f, "decisions")
        mlflow.log_text(result.nodes.to_csv(index=False), "decisions/nodes.csv")
        mlflow.log_text(forecast.to_csv(index=False), "inputs/forecast.csv")
        for name, df in supply.as_dict().items():
            mlflow.log_text(df.to_csv(index=False), f"inputs/{name}.csv")
        numeric = {k: float(v) for k, v in {**result.stats, **result.summary}.items() if isinstance(v, int | float) and not isinstance(v, bool) and pd.notna(v)}
        mlflow.log_metrics({_metric_name(k): v for k, v in numeric.items()})
        mlflow.log_dict(json.loads(json.dumps({"stats": result.stats, "summary": result.summary}, default=str)), "decisions/solver_and_summary.json")
        if result.disruptions:
            rows = [{"disruption": d.label, "cost": d.cost, "objective_base": d.objective_base, "objective": d.objective, "changed_lines": len(d.changed_sourcing)} for d in result.disruptions]
            mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "disruptions/summary.csv")
            for i, d in enumerate(result.disruptions):
                mlflow.log_text(d.changed_sourcing.to_csv(index=False), f"disruptions/{i}_changed_sourcing.csv")
                mlflow.log_metric(f"disruption_cost_{i}", float(d.cost))
        return OptimizeResult(active.info.run_id, result, forecast, supply, origin_ts, files)


def plan_with_disruptions(
    forecast: pd.DataFrame,
    supply: SupplyTables,
    plan_cfg: PlanConfig,
    price_forecasts: pd.DataFrame | None,
) -> PlanResult:
    """:func:`plan`, with ``supplier_id: auto`` disruptions aimed at the supplier that the
    undisrupted plan orders the most units from (the disruption that matters)."""
    if not any(d.supplier_id == "auto" for d in plan_cfg.disruptions):
        return plan(forecast, supply, plan_cfg, price_forecasts=price_forecasts)
    base = plan(forecast, supply, replace(plan_cfg, disruptions=()), price_forecasts=price_forecasts)
    orders = base.decisions[base.decisions["action"] == "order"]
    if orders.empty:
        main = str(supply.suppliers.groupby("supplier_id")["capacity"].sum().idxmax())
    else:
        main = str(orders.groupby("source")["quantity"].sum().idxmax())
    specs = tuple(
        replace(d, supplier_id=main) if d.supplier_id == "auto" else d for d in plan_cfg.disruptions
    )
    return plan(forecast, supply, replace(plan_cfg, disruptions=specs), price_forecasts=price_forecasts)


def _metric_name(key: str) -> str:
    return "plan_" + "".join(c if c.isalnum() or c in "_-." else "_" for c in key)


def summary_text(result: OptimizeResult) -> str:
    """A short decision summary for the terminal."""
    p = result.plan
    s, st = p.summary, p.stats
    d = p.decisions
    lines = [
        f"plan as of {result.origin.date()} for {s.get('n_item_locations')} item-locations: "
        f"{s.get('n_orders')} orders, {s.get('n_transfers')} transfers, {s.get('n_markdowns')} markdowns",
        f"solver {st.get('solver')} {st.get('status')} in {float(st.get('solve_time_s', 0)):.2f}s "
        f"(setup {float(st.get('setup_time_s', 0)):.2f}s), {st.get('n_variables')} variables, "
        f"{st.get('n_constraints')} constraints",
    ]
    for key in ("expected_cost", "expected_profit", "expected_fill_rate", "purchase_spend", "transfer_spend"):
        if key in s:
            lines.append(f"  {key}: {s[key]:,.3f}")
    for dis in p.disruptions:
        lines.append(f"  disruption '{dis.label}': costs {dis.cost:,.2f} more; {len(dis.changed_sourcing)} lines re-sourced")
    cols = [c for c in ("item_id", "location_id", "action", "source", "quantity", "price", "alternative") if c in d]
    top = d[d["action"] != "none"].sort_values("quantity", ascending=False).head(8)[cols]
    lines.append(top.to_string(index=False))
    lines.append(f"decisions: {result.files['decisions_csv']}")
    return "\n".join(lines)
