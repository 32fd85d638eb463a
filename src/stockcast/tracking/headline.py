"""The answer in a few lines: how the model did against the baselines, what the plan says,
what the backtest proved, and where to look next (printed at the end of ``make run``).

Each line is read from the latest FINISHED run of its task for the model version in
MLflow, so it reflects what was actually logged, not what this process remembers.
"""

from __future__ import annotations

import mlflow

from stockcast.tracking.mlflow_utils import tracking_uri


def _latest_run(experiment: str, version: str | int | None):
    """The newest FINISHED parent run of ``experiment`` for model ``version`` (or None)."""
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return None
    filters = ["attributes.status = 'FINISHED'"]
    if version is not None:
        filters.append(f"tags.`stockcast.model_version` = '{version}'")
    runs = mlflow.MlflowClient().search_runs(
        [exp.experiment_id], " and ".join(filters), order_by=["attributes.start_time DESC"], max_results=20
    )
    runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return runs[0] if runs else None


def forecast_line(model_name: str, version: str | int) -> str | None:
    """``forecast: v3 against the best baseline (lightgbm): MAE 0.97x, pinball 0.98x ...``"""
    run = _latest_run("stockcast-evaluate", version)
    if run is None:
        return None
    m, best = run.data.metrics, run.data.tags.get("summary.best_baseline")
    if not best or "test_pinball_vs_best_baseline" not in m:
        return None
    ratios = ", ".join(f"{k} {m[f'test_{k}_vs_best_baseline']:.2f}x" for k in ("mae", "pinball", "rmse")
                       if f"test_{k}_vs_best_baseline" in m)
    verdict = "beats" if m["test_pinball_vs_best_baseline"] < 1 and m.get("test_mae_vs_best_baseline", 1) < 1 else "does not beat"
    champ = run.data.tags.get("champion.decision", "")
    return (f"forecast: {model_name} v{version} {verdict} the best baseline ({best}) on the held-out test "
            f"window: {ratios} (below 1 = better); champion gate: {champ or 'n/a'}")


def plan_line(version: str | int) -> str | None:
    """``plan: as of 2017-06-01, 350 item-locations: 40 orders, ... expected fill 0.964``"""
    run = _latest_run("stockcast-optimize", version)
    if run is None:
        return None
    m, p = run.data.metrics, run.data.params
    def n(key: str) -> str:
        v = m.get(f"plan_{key}")
        return "?" if v is None else f"{v:,.0f}"
    fill = m.get("plan_expected_fill_rate")
    return (f"plan: as of {p.get('origin', '?')} for {n('n_item_locations')} item-locations: "
            f"{n('n_orders')} orders, {n('n_transfers')} transfers, {n('n_markdowns')} markdowns"
            + (f"; expected fill rate {fill:.3f}" if fill is not None else ""))


def next_steps(report: str | None = None) -> str:
    """Where to look next: the MLflow UI and the backtest report."""
    uri = tracking_uri()
    ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"open {uri}"
    return f"next: {ui}" + (f"  |  report: {report}" if report else "")
