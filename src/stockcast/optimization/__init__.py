"""Inventory optimization: quantile forecasts + supply tables -> stock, transfer, price decisions.

Entry point: :func:`plan` (see :mod:`stockcast.optimization.plan`; the stages of one plan in
:mod:`~stockcast.optimization.planning`, large plans decomposed by item on Dask in
:mod:`~stockcast.optimization.decompose`). Building blocks:
:mod:`~stockcast.optimization.distribution` (quantile functions, scenarios, protection
period), :mod:`~stockcast.optimization.newsvendor` (closed form + scenario LP),
:mod:`~stockcast.optimization.network` (graph, landed costs, disruptions),
:mod:`~stockcast.optimization.cuts` (where the LP's shortage tangents sit),
:mod:`~stockcast.optimization.problem` (the compiled CVXPY network problem),
:mod:`~stockcast.optimization.pricing` (price x quantity), and
:mod:`~stockcast.optimization.decisions` (the decisions table).
"""

from stockcast.optimization.decisions import DECISION_COLUMNS
from stockcast.optimization.distribution import (
    EmpiricalDemand,
    QuantileFunction,
    forecast_array,
    protection_samples,
)
from stockcast.optimization.network import CostModel, DisruptionSpec
from stockcast.optimization.newsvendor import (
    ScenarioNewsvendor,
    closed_form,
    critical_ratio,
    newsvendor_quantity,
)
from stockcast.optimization.plan import DisruptionResult, PlanConfig, Planner, PlanResult, plan
from stockcast.optimization.solving import NotDPPError, SolverFailedError

__all__ = [
    "DECISION_COLUMNS",
    "CostModel",
    "DisruptionResult",
    "DisruptionSpec",
    "EmpiricalDemand",
    "NotDPPError",
    "PlanConfig",
    "PlanResult",
    "Planner",
    "QuantileFunction",
    "ScenarioNewsvendor",
    "SolverFailedError",
    "closed_form",
    "critical_ratio",
    "forecast_array",
    "newsvendor_quantity",
    "plan",
    "protection_samples",
]
