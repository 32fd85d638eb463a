"""The optimize task end to end on the smoke model: explained decisions, MLflow record, errors."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import compose_config

DECISION_COLUMNS = [
    "item_id", "location_id", "action", "source", "quantity", "price", "expected_profit",
    "expected_fill_rate", "critical_ratio", "quantiles_used", "binding_constraints", "alternative",
]


@pytest.fixture(scope="module")
def optimized(smoke_train, tmp_path_factory):
    from stockcast.tasks.optimize import run

    result, _ = smoke_train
    out = tmp_path_factory.mktemp("optimize")
    return run(compose_config("optimize", ["experiment=smoke", f"model={result.model_version}"], out)), out


def test_decisions_table_is_written_and_explained(optimized):
    res, out = optimized
    d = pd.read_parquet(out / "decisions.parquet")
    assert list(d.columns[: len(DECISION_COLUMNS)]) == DECISION_COLUMNS
    assert (out / "decisions.csv").exists()
    assert set(d.action) <= {"order", "transfer", "markdown", "none"}
    assert d[["item_id", "location_id"]].drop_duplicates().shape[0] == 12
    acted = d[d.action != "none"]
    assert not acted.empty
    assert acted["alternative"].astype(str).str.len().gt(0).all()
    assert acted["quantiles_used"].astype(str).str.contains("q0.5").all()
    assert d["critical_ratio"].between(0, 1).all()
    assert (d["quantity"] >= 0).all()
    # planned at the start of the smoke test window, on list prices from the data
    assert res.origin == pd.Timestamp("2017-09-01")
    assert (res.forecast["period"] > res.origin).all()
    assert (res.supply.economics["price"] > 100).all()


def test_optimize_run_is_logged(optimized):
    from stockcast.tasks.optimize import summary

    res, _ = optimized
    run = mlflow.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    p, m = run.data.params, run.data.metrics
    for key in ("forecast_sha256", "economics_sha256", "suppliers_sha256", "lanes_sha256", "locations_sha256"):
        assert len(p[key]) == 64
    assert m["plan_solve_time_s"] >= 0 and m["plan_n_variables"] > 0
    arts = {a.path for d in ("decisions", "inputs", "disruptions") for a in mlflow.MlflowClient().list_artifacts(res.run_id, d)}
    assert {"decisions/decisions.parquet", "decisions/decisions.csv", "inputs/forecast.csv", "disruptions/summary.csv"} <= arts
    # the disruption re-plans hit the supplier the base plan uses most, and cost something
    assert len(res.plan.disruptions) == 2
    assert all(dis.cost >= -1e-6 for dis in res.plan.disruptions)
    text = summary(res)
    for dis in res.plan.disruptions:
        assert f"disruption '{dis.label}'" in text
        assert not dis.note or dis.note in text
    assert res.files["decisions_csv"] in text


def test_markdowns_come_from_reforecast_demand(optimized):
    res, _ = optimized
    pr = res.plan.pricing
    n_nodes = len(pr.price)
    # candidates: list price and the 20% markdown (experiment=smoke), both priced by profit
    assert pr.profit.shape[1] == 2
    finite = pr.profit[:, 1][np.isfinite(pr.profit[:, 1])]
    # markdowns are only offered where stock is excess (pricing_scope: excess)
    assert len(finite) <= int((pr.excess > 0).sum())
    assert ((pr.choice == 0) | (pr.choice == 1)).all() and len(pr.choice) == n_nodes
    chosen = pr.profit[np.arange(n_nodes), pr.choice]
    assert (chosen >= np.nanmax(np.where(np.isfinite(pr.profit), pr.profit, -np.inf), axis=1) - 1e-6).all()


def test_forecast_file_input(optimized, tmp_path):
    from stockcast.tasks.optimize import run

    res, _ = optimized
    path = tmp_path / "forecast.parquet"
    res.forecast.to_parquet(path)
    again = run(compose_config("optimize", ["experiment=smoke", f"forecast_path={path}"], tmp_path / "o"))
    assert (Path(again.files["decisions_csv"])).exists()
    assert mlflow.get_run(again.run_id).data.params["forecast_sha256"] == mlflow.get_run(res.run_id).data.params["forecast_sha256"]


def test_infeasible_budget_fails_the_run(smoke_train, tmp_path):
    from stockcast.errors import InfeasibleProblemError
    from stockcast.tasks.optimize import run

    result, _ = smoke_train
    cfg = compose_config(
        "optimize",
        ["experiment=smoke", f"model={result.model_version}", "optimizer.values.budget=0", "optimizer.values.min_service_level=0.99"],
        tmp_path,
    )
    with pytest.raises(InfeasibleProblemError, match="budget"):
        run(cfg)
    last = mlflow.search_runs(experiment_names=["stockcast-optimize"], order_by=["start_time DESC"], max_results=1)
    assert last.iloc[0]["status"] == "FAILED"
