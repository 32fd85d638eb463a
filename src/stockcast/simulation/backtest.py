"""``backtest.py``: replay replenishment policies against the actual demand of the test window.

``run(cfg)`` simulates every policy in ``backtest.policies`` period by period over the test
window (last ``data.split.test_periods`` periods) with the same starting stock, economics,
demand and realised lead times (common random numbers), then reports KPIs overall and per
location, *inventory at matched service* from a small tuning grid, figures and an HTML
report, all logged to MLflow (experiment ``stockcast-backtest``).

Policies: ``stockcast`` (TFT quantiles + :func:`~stockcast.optimization.plan`),
``lightgbm_opt`` (LightGBM quantiles + the same optimizer), ``true_distribution``
(synthetic only: the generator's true quantiles + the optimizer), ``classic``
(moving average + ``z·σ·sqrt(L+R)``), ``seasonal_naive_ss`` and ``oracle`` (perfect
foresight of demand and lead times).

Simplifications (stated, deliberate):

* single echelon: each store item-location is simulated supplier -> store; the optimizer
  still solves the whole network, its store targets and store-to-store transfers are
  executed, DCs act as pass-through (their stock is not simulated);
* realised lead time of an order placed at ``t``: synthetic = the generator's
  ``truth_lead_times`` of the item's cheapest supplier at ``t`` (rounded, incl. delays and
  disruptions); otherwise ``round(lead_time_mean) + round(|N(0,1)|·lead_time_std)``
  (seeded); planned lead time = ``round(lead_time_mean)``;
* markdown rule: demand at a marked-down price = actual demand × ``(price/list)^elasticity``
  (``backtest.price_elasticity``; the optimizer prices with the same elasticity);
* forecasters are called once per review with horizon ``max(L) + R``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from scipy import special

from stockcast.data.panel import load_panel
from stockcast.data.spec import GROUP_IDS, TIME_IDX
from stockcast.data.supply import SupplyTables
from stockcast.forecast.dataset import TimeSplit
from stockcast.optimization.plan import PlanConfig
from stockcast.simulation.engine import Economics, SimTrace, kpis, simulate, trace_frame
from stockcast.simulation.policies import (
    ClassicPolicy,
    OptimizerPolicy,
    OraclePolicy,
    SeasonalNaiveSSPolicy,
)
from stockcast.simulation.report import figures, html_report
from stockcast.tracking.mlflow_utils import log_config, log_table, setup_tracking, tracked_run

OPTIMIZER_POLICIES = ("stockcast", "lightgbm_opt", "true_distribution")
SS_POLICIES = ("classic", "seasonal_naive_ss")
ALL_POLICIES = (*OPTIMIZER_POLICIES, *SS_POLICIES, "oracle")


def metric_name(scope: str, kpi: str) -> str:
    """The one naming scheme of backtest metrics: ``{scope}_{kpi}``."""
    clean = "".join(c if c.isalnum() or c in "_-." else "_" for c in f"{scope}_{kpi}")
    return clean


@dataclass
class Window:
    """Everything the simulation needs, aligned on ``keys`` (series) × periods."""

    keys: pd.DataFrame
    periods: list
    t0: int
    demand: np.ndarray
    pre: np.ndarray
    econ: Economics
    on_hand0: np.ndarray
    lead_planned: np.ndarray
    lead_real: np.ndarray
    supply: SupplyTables | None = None


@dataclass
class BacktestResult:
    """What a backtest run produced."""

    run_id: str | None
    table: pd.DataFrame
    by_location: pd.DataFrame
    matched: pd.DataFrame
    curves: pd.DataFrame
    traces: dict[str, SimTrace] = field(repr=False)
    files: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ data -> window
def primary_suppliers(supply: SupplyTables) -> pd.DataFrame:
    """Cheapest supplier per item (``item_id``, ``supplier_id``, lead mean/std)."""
    sup = supply.suppliers.copy()
    sup["item_id"] = sup["item_id"].astype(str)
    sup = sup.sort_values(["item_id", "unit_cost", "supplier_id"])
    return sup.drop_duplicates("item_id")[["item_id", "supplier_id", "lead_time_mean",
                                           "lead_time_std"]]


def realised_lead_times(keys: pd.DataFrame, periods: list, supply: SupplyTables,
                        truth: pd.DataFrame | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(planned ``[n]``, realised ``[n, T]``) lead times in whole periods (rules: module doc)."""
    prim = keys[["item_id"]].astype(str).merge(primary_suppliers(supply), on="item_id",
                                               how="left")
    if prim["supplier_id"].isna().any():
        missing = prim.loc[prim["supplier_id"].isna(), "item_id"].unique()[:5].tolist()
        raise ValueError(f"suppliers table: no supplier for item(s) {missing}")
    planned = np.round(prim["lead_time_mean"].to_numpy(float)).astype(int)
    n, t_len = len(keys), len(periods)
    if truth is not None:
        wide = truth.assign(period=pd.to_datetime(truth["period"])).pivot_table(
            index="supplier_id", columns="period", values="lead_time")
        wide = wide.reindex(columns=pd.to_datetime(pd.Index(periods))).ffill(axis=1)
        lt = wide.reindex(prim["supplier_id"].to_numpy()).to_numpy(float)
        lt = np.where(np.isfinite(lt), lt, planned[:, None])
        return planned, np.maximum(np.round(lt), 0).astype(int)
    rng = np.random.default_rng(seed)
    delay = np.round(np.abs(rng.standard_normal((n, t_len)))
                     * prim["lead_time_std"].to_numpy(float)[:, None])
    return planned, (planned[:, None] + delay).astype(int)


def build_window(panel: pd.DataFrame, t0: int, t1: int, supply: SupplyTables,
                 truth_lead: pd.DataFrame | None, fixed_order_cost: float,
                 seed: int) -> Window:
    """Align demand, history, economics and lead times of the window ``t0..t1``."""
    keys = panel[GROUP_IDS].drop_duplicates().astype(str).sort_values(GROUP_IDS)
    keys = keys.reset_index(drop=True)
    p = panel.assign(item_id=panel["item_id"].astype(str),
                     location_id=panel["location_id"].astype(str))
    wide = p.pivot_table(index=GROUP_IDS, columns=TIME_IDX, values="demand", aggfunc="sum")
    wide = wide.reindex(pd.MultiIndex.from_frame(keys))
    cols = [c for c in wide.columns if c <= t1]
    wide = wide[cols]
    demand = np.nan_to_num(wide[[c for c in cols if c >= t0]].to_numpy(float))
    pre = wide[[c for c in cols if c < t0]].to_numpy(float)
    periods = (p[(p[TIME_IDX] >= t0) & (p[TIME_IDX] <= t1)].drop_duplicates(TIME_IDX)
               .sort_values(TIME_IDX)["period"].tolist())
    econ = keys.merge(supply.economics.astype({"item_id": str, "location_id": str}),
                      on=GROUP_IDS, how="left")
    if econ["unit_cost"].isna().any():
        bad = econ.loc[econ["unit_cost"].isna(), GROUP_IDS].head(5).to_dict("records")
        raise ValueError(f"economics table: no row for item-location(s) {bad}")
    ec = Economics(econ["unit_cost"].to_numpy(float), econ["price"].to_numpy(float),
                   econ["holding_cost"].to_numpy(float), econ["shortage_cost"].to_numpy(float),
                   float(fixed_order_cost))
    planned, real = realised_lead_times(keys, periods, supply, truth_lead, seed)
    on_hand0 = (econ["on_hand"] + econ["in_transit"]).to_numpy(float)
    return Window(keys, periods, t0, demand, pre, ec, on_hand0, planned, real, supply)


# ------------------------------------------------------------------ policies
def make_policy(name: str, knob: float, win: Window, review: int, season: int,
                forecasters: dict[str, Callable[[int, int], pd.DataFrame]],
                plan_cfg: PlanConfig | None, elasticity: float | None, window: int = 6):
    """Build policy ``name`` with its service knob (cycle service level for the safety-stock
    policies, shortage-cost multiplier for the optimizer policies; ignored by the oracle)."""
    if name == "classic":
        return ClassicPolicy(win.pre, win.lead_planned, review, float(special.ndtri(knob)),
                             window)
    if name == "seasonal_naive_ss":
        return SeasonalNaiveSSPolicy(win.pre, win.lead_planned, review,
                                     float(special.ndtri(knob)), season)
    if name == "oracle":
        return OraclePolicy(win.demand, win.lead_real, review)
    if name in OPTIMIZER_POLICIES:
        if name not in forecasters:
            raise ValueError(f"policy {name!r} has no forecaster (model/truth unavailable)")
        horizon = int(win.lead_planned.max(initial=0)) + review
        return OptimizerPolicy(forecasters[name], win.keys, win.supply, plan_cfg, win.t0,
                               horizon, shortage_multiplier=float(knob), elasticity=elasticity)
    raise ValueError(f"unknown policy {name!r}; choose from {ALL_POLICIES}")


def cached(fn: Callable[[int, int], pd.DataFrame]) -> Callable[[int, int], pd.DataFrame]:
    """Memoize a forecaster on (origin, horizon): forecasts don't depend on stock."""
    memo: dict[tuple[int, int], pd.DataFrame] = {}

    def call(origin: int, horizon: int) -> pd.DataFrame:
        if (origin, horizon) not in memo:
            memo[(origin, horizon)] = fn(origin, horizon)
        return memo[(origin, horizon)]

    return call


def truth_forecaster(truth: pd.DataFrame, panel: pd.DataFrame) -> Callable[[int, int], pd.DataFrame]:
    """Forecast table from the generator's true quantiles (``truth_demand``)."""
    tmap = panel.drop_duplicates(TIME_IDX).set_index("period")[TIME_IDX]
    t = truth.assign(period=pd.to_datetime(truth["period"]),
                     item_id=truth["item_id"].astype(str),
                     location_id=truth["location_id"].astype(str))
    t[TIME_IDX] = t["period"].map(tmap)
    t = t.dropna(subset=[TIME_IDX])
    qcols = [c for c in t.columns if c.startswith("q")]
    keys = panel[GROUP_IDS].astype(str).drop_duplicates()
    t = t.merge(keys, on=GROUP_IDS)
    origin_date = dict(zip(tmap.to_numpy(), tmap.index, strict=True))

    def forecast(origin: int, horizon: int) -> pd.DataFrame:
        rows = t[(t[TIME_IDX] > origin) & (t[TIME_IDX] <= origin + horizon)].copy()
        rows["horizon"] = (rows[TIME_IDX] - origin).astype(int)
        rows["forecast_origin"] = origin_date.get(origin)
        return rows[[*GROUP_IDS, "period", "forecast_origin", "horizon", *qcols]]

    return forecast


# ------------------------------------------------------------------ simulate + KPIs
def simulate_all(win: Window, specs: list[tuple[str, float]], make: Callable, unmet: str,
                 review: int) -> dict[tuple[str, float], SimTrace]:
    """Simulate each ``(policy, knob)`` with the same window."""
    return {(name, knob): simulate(win.demand, make(name, knob), win.lead_real, win.econ,
                                   win.on_hand0, unmet, review) for name, knob in specs}


def matched_service(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """Average inventory of each policy interpolated at fill rate ``target`` on its curve
    (``NaN`` + ``reached=False`` when the grid does not bracket the target)."""
    rows = []
    for name, c in curves.groupby("policy", sort=False):
        c = c.sort_values("fill_rate")
        f, inv = c["fill_rate"].to_numpy(), c["avg_inventory"].to_numpy()
        val = c["avg_inventory_value"].to_numpy()
        ok = bool(f.min() - 1e-9 <= target <= f.max() + 1e-9)
        rows.append({"policy": name, "target_fill_rate": target, "reached": ok,
                     "avg_inventory_at_target": float(np.interp(target, f, inv)) if ok else np.nan,
                     "avg_inventory_value_at_target": float(np.interp(target, f, val))
                     if ok else np.nan,
                     "grid_fill_min": float(f.min()), "grid_fill_max": float(f.max())})
    return pd.DataFrame(rows)


def _forecasters(cfg: DictConfig, policies: list[str], panel: pd.DataFrame, spec, bundle,
                 truth: pd.DataFrame | None, end: int) -> dict:
    out = {}
    if "stockcast" in policies and bundle is not None:
        from stockcast.evaluation.evaluate import tft_forecast

        max_h = int(spec.window["max_prediction_length"])
        out["stockcast"] = cached(lambda o, h: tft_forecast(bundle, panel, [o], min(h, max_h),
                                                            end)[0])
    if "lightgbm_opt" in policies:
        from stockcast.evaluation.baselines import make_baselines

        lgb = make_baselines(OmegaConf.to_container(cfg.backtest.lightgbm, resolve=True)
                             if cfg.backtest.get("lightgbm") else ["lightgbm"])[0]
        out["lightgbm_opt"] = cached(lambda o, h: lgb.forecast(panel, o, h, None, spec))
    if "true_distribution" in policies and truth is not None:
        out["true_distribution"] = cached(truth_forecaster(truth, panel))
    return out


def run(cfg: DictConfig) -> BacktestResult:
    """Backtest the configured policies on the test window; log to MLflow (see module doc)."""
    from stockcast.evaluation.evaluate import load_bundle
    from stockcast.optimization.run import _model, supply_tables
    from stockcast.train import select_series

    setup_tracking()
    bt = cfg.backtest
    review = int(bt.review_period)
    policies = list(bt.policies)
    bundle, version = None, None
    if "stockcast" in policies:
        version = _model(cfg)
        bundle = load_bundle(version)
        spec = bundle.spec
    else:
        spec = instantiate(cfg.data)
    panel = load_panel(spec)
    if bundle is not None and bundle.series is not None:
        panel = panel.merge(pd.DataFrame(bundle.series, columns=GROUP_IDS), on=GROUP_IDS)
    panel = select_series(panel, cfg.get("max_series"))
    split = TimeSplit.from_panel(panel, spec)
    t0, t1 = int(split.test_start), int(split.test_end)
    history = panel[panel[TIME_IDX] < t0]
    supply = supply_tables(cfg, spec, history)
    truth_lead = truth_demand = None
    if spec.generator is not None:
        from stockcast.data.sources import generated_dir, materialize

        materialize(spec)
        gdir = generated_dir(spec)
        truth_lead = pd.read_parquet(gdir / "truth_lead_times.parquet")
        truth_demand = pd.read_parquet(gdir / "truth_demand.parquet")
    else:
        policies = [p for p in policies if p != "true_distribution"]
    win = build_window(panel, t0, t1, supply, truth_lead, float(bt.fixed_order_cost),
                       int(cfg.seed))
    plan_cfg = instantiate(cfg.optimizer)
    fcs = _forecasters(cfg, policies, panel, spec, bundle, truth_demand,
                       int(panel[TIME_IDX].max()))
    elasticity = bt.get("price_elasticity")
    season = int(bt.get("season_length") or {"MS": 12, "M": 12, "W-MON": 52, "W": 52,
                                             "D": 7}.get(str(spec.freq), 12))

    def make(name: str, knob: float):
        return make_policy(name, knob, win, review, season, fcs, plan_cfg, elasticity,
                           int(bt.ma_window))

    def main_knob(name: str) -> float:
        return float(bt.service_target) if name in SS_POLICIES else 1.0

    grid = {n: (list(bt.tuning.service_levels) if n in SS_POLICIES
                else list(bt.tuning.shortage_multipliers)) for n in policies if n != "oracle"}
    specs = list(dict.fromkeys([(n, main_knob(n)) for n in policies]
                               + [(n, float(k)) for n, ks in grid.items() for k in ks]))
    traces = simulate_all(win, specs, make, str(bt.unmet), review)

    main = {n: traces[(n, main_knob(n))] for n in policies}
    table = pd.DataFrame([{"policy": n, **kpis(tr)} for n, tr in main.items()])
    locs = win.keys["location_id"].to_numpy()
    by_loc = pd.DataFrame([{"policy": n, "location_id": loc, **kpis(tr, locs == loc)}
                           for n, tr in main.items() for loc in np.unique(locs)])
    curves = pd.DataFrame([{"policy": n, "knob": k, **kpis(tr)} for (n, k), tr in traces.items()
                           if n != "oracle"])
    ref = "classic" if "classic" in main else None
    target_fill = float(table.set_index("policy").loc[ref, "fill_rate"]) if ref else float(
        bt.service_target)
    matched = matched_service(curves, target_fill) if len(curves) else pd.DataFrame()
    per_period = {n: trace_frame(tr, win.periods) for n, tr in main.items()}
    return _log(cfg, version, spec, win, table, by_loc, matched, curves, per_period, main,
                target_fill)


def _log(cfg, version, spec, win, table, by_loc, matched, curves, per_period, traces,
         target_fill) -> BacktestResult:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tracked_run(cfg.logger.experiment_name,
                     run_name=f"backtest-v{version.version}" if version else "backtest",
                     tags={"stockcast.task": "backtest",
                           "stockcast.model_version": version.version if version else "none"}
                     ) as active:
        log_config(cfg)
        mlflow.log_params({"dataset": spec.name, "n_series": len(win.keys),
                           "window_start": str(pd.Timestamp(win.periods[0]).date()),
                           "n_periods": len(win.periods)})
        metrics = {metric_name(r["policy"], k): float(v) for r in table.to_dict("records")
                   for k, v in r.items() if k != "policy" and pd.notna(v)}
        metrics.update({metric_name(r["policy"], "avg_inventory_at_matched_service"):
                        float(r["avg_inventory_at_target"])
                        for r in matched.to_dict("records") if pd.notna(r["avg_inventory_at_target"])})
        mlflow.log_metrics(metrics)
        files = {}
        for name, df in {"kpis": table, "kpis_by_location": by_loc, "matched_service": matched,
                         "tuning_curves": curves}.items():
            df.to_csv(out / f"{name}.csv", index=False)
            files[f"{name}_csv"] = str(out / f"{name}.csv")
            log_table(df, f"backtest/{name}.csv")
        md = out / "kpis.md"
        md.write_text(table.to_markdown(index=False, floatfmt=",.3f"), encoding="utf-8")
        files["kpis_md"] = str(md)
        mlflow.log_artifact(str(md), "backtest")
        figs = figures(per_period, table, curves, target_fill)
        for name, fig in figs.items():
            mlflow.log_figure(fig, f"figures/{name}")
        notes = [f"dataset {spec.name}, {len(win.keys)} item-locations, "
                 f"{len(win.periods)} periods from {pd.Timestamp(win.periods[0]).date()}",
                 f"unmet demand: {cfg.backtest.unmet}; review period {cfg.backtest.review_period}",
                 f"matched service: every policy's average inventory at the classic policy's "
                 f"fill rate {target_fill:.3f} (interpolated on its tuning grid)",
                 "total cost = holding + shortage (+lost margin when lost) + ordering + "
                 "transfer + markdown - end stock credited at unit cost"]
        report = html_report(out / "backtest_report.html", "stockcast backtest", notes,
                             {"KPIs (all item-locations)": table,
                              "Inventory at matched service": matched,
                              "KPIs per location": by_loc}, figs)
        files["report_html"] = str(report)
        mlflow.log_artifact(str(report), "backtest")
        mlflow.log_dict(json.loads(json.dumps({"target_fill_rate": target_fill})),
                        "backtest/matched_target.json")
        import matplotlib.pyplot as plt

        for fig in figs.values():
            plt.close(fig)
        return BacktestResult(active.info.run_id, table, by_loc, matched, curves, traces, files)


def summary_text(result: BacktestResult) -> str:
    """KPI table for the terminal."""
    cols = ["policy", "total_cost", "fill_rate", "cycle_service_level", "stockout_frequency",
            "avg_inventory", "inventory_turnover", "working_capital", "lost_sales"]
    lines = [result.table[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}")]
    if len(result.matched):
        lines.append(result.matched.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    lines.append(f"report: {result.files.get('report_html')}")
    return "\n".join(lines)
