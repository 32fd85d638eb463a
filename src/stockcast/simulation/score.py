"""Decision-aware model scoring: a forecaster judged by the decisions it leads to.

:func:`decision_scores` replays each forecaster's quantiles through the network optimizer
over a window (the backtest's machinery: :mod:`~stockcast.simulation.world`,
:class:`~stockcast.simulation.policies.OptimizerSpec`, :class:`~stockcast.simulation.replay.
Replay`, :func:`~stockcast.simulation.matching.matched_service`), tunes every one to the
same fill rate and reports its controllable cost there: the cost a planner pays with that
model at a service level fixed in advance. A model that is better on pinball loss but
worse where it matters for stock (the right tail, the spread of the protection-period sum)
loses on this score. The champion gate of the evaluate task decides on it with
``champion.metric: backtest_controllable_cost``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.data.supply import SupplyTables
from stockcast.forecast.protocol import Forecaster
from stockcast.optimization.plan import PlanConfig
from stockcast.simulation.engine import kpis
from stockcast.simulation.forecasts import by_origin, review_forecasts, validation_forecasts
from stockcast.simulation.matching import warmup_periods
from stockcast.simulation.policies import OptimizerSpec
from stockcast.simulation.replay import Replay
from stockcast.simulation.world import Window, build_world

#: What :func:`decision_scores` reports per forecaster.
SCORE_COLUMNS = ("model", "target_fill_rate", "reached", "controllable_cost",
                 "avg_inventory", "total_cost", "best_fill")


def decision_scores(forecasters: Sequence[Forecaster], panel: pd.DataFrame, spec: DatasetSpec,
                    supply: SupplyTables, t0: int, t1: int, *, fill: float = 0.95,
                    plan: PlanConfig | dict | None = None, review: int = 1,
                    unmet: str = "lost", seed: int = 0,
                    grid: Sequence[float] = (0.8, 0.95, 0.99), warmup: int | str = "auto",
                    expand: int = 6, refine: int = 2, tolerance: float = 0.002,
                    price_elasticity: float | None = None,
                    lead_time_demand: str | None = None, validation_periods: int | None = None,
                    world: Window | None = None, n_jobs: int = 1) -> pd.DataFrame:
    """Controllable cost of each forecaster's plans at a matched fill rate.

    Every forecaster forecasts each weekly review origin of ``t0..t1`` once; its quantiles
    plan the network at every review (optimizer settings ``plan``, MOQs off, no
    disruptions); its planning service level is tuned to the network fill rate ``fill``
    over the periods after the warm-up. When some forecaster cannot reach ``fill``, all
    are compared at the highest fill every one reaches (``target_fill_rate`` says which).

    Args:
        forecasters: The models (distinct ``name``s).
        panel: Canonical panel (history before ``t0`` and the window's actuals).
        spec: The dataset spec (frequency, generator truth for lead times).
        supply: Supply tables.
        t0: ``time_idx`` of the first simulated period.
        t1: ``time_idx`` of the last.
        fill: Fill rate the plans are tuned to.
        plan: Optimizer settings (:class:`PlanConfig` or its fields).
        review: Review period.
        unmet: ``lost`` or ``backorder``.
        seed: Seed of drawn lead times and scenarios.
        grid: Planning service levels simulated first.
        warmup: Periods left out (``auto`` = the longest planned store lead time).
        expand: Extension runs while ``fill`` lies outside the grid.
        refine: Interpolation runs.
        tolerance: Fill-rate distance that ends the search.
        price_elasticity: Elasticity the plans price markdowns with (``None``: no
            markdowns, the default: a model is scored on its stocking decisions).
        lead_time_demand: Protection-period construction (``None``: the plan's;
            ``copula`` / ``direct`` are fitted on each forecaster's own forecasts at the
            validation origins before ``t0``, as the backtest does).
        validation_periods: Periods before ``t0`` those fits use (``None``: the dataset's
            ``split.val_periods``).
        world: A window built beforehand (``None``: :func:`build_world`).
        n_jobs: Worker processes of the tuning runs (:meth:`Replay.matched`; the result
            is the same).

    Returns:
        One row per forecaster (:data:`SCORE_COLUMNS`); lower ``controllable_cost`` is
        better.

    Raises:
        ValueError: Duplicate forecaster names; a fitted ``lead_time_demand`` without
            ``validation_periods`` or a spec to take them from.
    """
    names = [f.name for f in forecasters]
    if len(set(names)) != len(names):
        raise ValueError(f"decision_scores: forecaster names must differ, got {names}")
    cfg = PlanConfig.from_dict(plan)
    cfg = replace(cfg, moq=False, disruptions=(), seed=int(seed))
    if world is None:
        world = build_world(panel, spec, supply, int(t0), int(t1), review=int(review),
                            unmet=unmet, seed=int(seed), cost_model=cfg.cost_model(),
                            price_elasticity=price_elasticity)
    specs = {f.name: OptimizerSpec(forecaster=f, plan=cfg, grid=tuple(grid),
                                   price_elasticity=price_elasticity,
                                   lead_time_demand=lead_time_demand) for f in forecasters}
    for s in specs.values():
        if s.needs_fit:
            if validation_periods is None:
                if spec is None:
                    raise ValueError(f"decision_scores: lead_time_demand={s.lead_time_method}"
                                     " is fitted on validation forecasts: give "
                                     "validation_periods")
                validation_periods = int(spec.split["val_periods"])
            s.fit_lead_time(validation_forecasts(s.forecaster, panel, world,
                                                 int(validation_periods)), world)
    forecasts = {n: by_origin(review_forecasts(s.forecaster, panel, world), panel)
                 for n, s in specs.items()}
    replay = Replay(world, specs, forecasts)
    warm = warmup_periods(warmup, world)
    evaluated = pd.DataFrame([{"policy": n, **kpis(replay.trace(n, None), start=warm)}
                              for n in specs])
    grids = {n: sorted(set(s.grid)) for n, s in specs.items()}

    def search(targets):
        return replay.matched(evaluated, grids, targets, start=warm, n_jobs=n_jobs,
                              expand=expand, refine=refine, tolerance=tolerance)

    found = search([float(fill)])
    if not found.matched["reached"].astype(bool).all():
        found = search(["common"])
    m = found.matched.rename(columns={"policy": "model"})
    out = m[[c for c in SCORE_COLUMNS if c in m]].reset_index(drop=True)
    out["reached"] = out["reached"].astype(bool)
    out["controllable_cost"] = np.where(out["reached"], out["controllable_cost"], np.nan)
    return out
