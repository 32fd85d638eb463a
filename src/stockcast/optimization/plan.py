"""Planning entry points: :func:`plan`, :class:`Planner`, :func:`plan_with_disruptions`.

Disruptions with ``supplier_id: auto`` are aimed at the supplier the base plan orders
most from. A :class:`Planner` holds one configuration and the compiled problems it has built
(:class:`~stockcast.optimization.problem.ProblemCache`): planning again with the same
network structure (a new forecast, stock, prices, a disruption) only refreshes parameters.
:func:`plan` is a one-shot planner. Large plans (``PlanConfig.decompose``) are decomposed
by item and coordinated by prices on Dask (:mod:`~stockcast.optimization.decompose`);
smaller ones are one CVXPY problem (:mod:`~stockcast.optimization.planning`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from stockcast.data.supply import SupplyTables
from stockcast.optimization.decompose import plan_decomposed, should_decompose
from stockcast.optimization.network import NetworkCache
from stockcast.optimization.planning import (
    DisruptionResult,
    PlanConfig,
    PlanResult,
    prepare,
    resolve_auto,
)
from stockcast.optimization.problem import ProblemCache

__all__ = ["DisruptionResult", "PlanConfig", "PlanResult", "Planner", "plan",
           "plan_with_disruptions"]


def plan(
    forecast: pd.DataFrame,
    supply: SupplyTables | Mapping[str, pd.DataFrame],
    config: PlanConfig | Mapping[str, Any] | None = None,
    price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
) -> PlanResult:
    """Stock, transfer, sourcing and price decisions for a network from quantile forecasts.

    A one-shot :class:`Planner` (compiled problems are not kept after the call; plan
    repeatedly through one ``Planner`` to reuse them).

    Args:
        forecast: Forecast table (``item_id``, ``location_id``, ``horizon``,
            ``forecast_origin``, ``q<level>`` columns) at the list price.
        supply: The four supply tables (:class:`~stockcast.data.supply.SupplyTables` or a
            mapping ``{"locations": ..., "economics": ..., "suppliers": ..., "lanes": ...}``).
        config: :class:`PlanConfig` or a plain dict of its fields.
        price_forecasts: Demand at candidate prices: one forecast table with a ``price``
            column (several prices per item-location) or a list of such tables. ``None``:
            use ``config.price_elasticity`` if set, else keep list prices.

    Returns:
        :class:`PlanResult` with the decisions table, per-node report, solver statistics,
        KPIs and disruption re-plans.

    Raises:
        DataValidationError: Bad forecast or supply tables (names table, column, rows).
        InfeasibleProblemError: No feasible plan (names the constraint and items).
        SolverFailedError: The solver failed or returned an inaccurate answer.
    """
    return Planner(config).plan(forecast, supply, price_forecasts)


class Planner:
    """Plans with one :class:`PlanConfig`, keeping the compiled problems it builds.

    Args:
        config: :class:`PlanConfig` or a plain dict of its fields.
        cache_size: Compiled problems kept (one per network structure), and planning
            graphs (one per set of tables apart from the stock: a re-plan of the same
            network at another stock, as a backtest's reviews, reuses its graph).
        client: A ``distributed.Client`` for decomposed plans (``None``: a
            ``LocalCluster`` of ``config.workers`` processes per decomposed plan).
    """

    def __init__(self, config: PlanConfig | Mapping[str, Any] | None = None, *,
                 cache_size: int = 4, client: Any = None) -> None:
        self.config = PlanConfig.from_dict(config)
        self.problems = ProblemCache(cache_size)
        self.networks = NetworkCache(cache_size)
        self.client = client

    def plan(
        self,
        forecast: pd.DataFrame,
        supply: SupplyTables | Mapping[str, pd.DataFrame],
        price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
        *,
        config: PlanConfig | None = None,
        validated: bool = False,
    ) -> PlanResult:
        """See :func:`plan`; ``config`` overrides the planner's for this call only;
        ``validated``: ``supply`` is :func:`~stockcast.data.supply.validate_supply`'s output
        (a caller re-planning tables it validated once, e.g. a backtest policy changing only
        the stock), so a single-problem plan does not validate it again.

        Decomposed (:func:`~stockcast.optimization.decompose.plan_decomposed`) when
        ``decompose`` is ``true``, or ``auto`` with at least
        ``decompose_min_item_locations`` item-locations; else one problem.
        """
        cfg = self.config if config is None else PlanConfig.from_dict(config)
        keys = forecast[["item_id", "location_id"]].drop_duplicates()
        if should_decompose(cfg, len(keys), keys["item_id"].nunique()):
            return plan_decomposed(forecast, supply, cfg, price_forecasts, client=self.client)
        return _plan(forecast, supply, cfg, price_forecasts, self.problems, validated,
                     self.networks)


def _plan(
    forecast: pd.DataFrame,
    supply: SupplyTables | Mapping[str, pd.DataFrame],
    cfg: PlanConfig,
    price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None,
    problems: ProblemCache,
    validated: bool = False,
    networks: NetworkCache | None = None,
) -> PlanResult:
    prep = prepare(forecast, supply, cfg, price_forecasts, validated=validated,
                   networks=networks)
    lam = prep.budget_price(cfg.budget) if prep.flags.budget else None
    solved = prep.solve(problems, prep.levels(lam), cfg.budget)
    result = prep.result(solved)
    specs = resolve_auto(cfg.disruptions, result, prep.net.groups)
    result.disruptions = prep.replans(solved, specs, result)
    result.stats["total_time_s"] = time.perf_counter() - prep.t_start
    return result


def plan_with_disruptions(
    forecast: pd.DataFrame,
    supply: SupplyTables | Mapping[str, pd.DataFrame],
    config: PlanConfig | Mapping[str, Any] | None = None,
    price_forecasts: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    *,
    planner: Planner | None = None,
) -> PlanResult:
    """:func:`plan` through ``planner`` (default a new one for ``config``), with
    ``supplier_id: auto`` disruptions aimed at the supplier that the undisrupted plan
    orders the most units from (the disruption that matters;
    :func:`~stockcast.optimization.planning.resolve_auto`): the re-plans reuse the base
    plan's compiled problem.
    """
    cfg = PlanConfig.from_dict(config)
    return (planner or Planner(cfg)).plan(forecast, supply, price_forecasts, config=cfg)
