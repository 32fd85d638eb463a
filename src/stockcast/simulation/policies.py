"""Replenishment policies for :func:`stockcast.simulation.engine.simulate`.

Every policy is a callable ``SimView -> Decision``; only :class:`OraclePolicy` is handed the
future (on purpose). Protection period ``P = L + R`` with ``L`` the planned lead time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from stockcast.data.spec import GROUP_IDS
from stockcast.data.supply import SupplyTables
from stockcast.optimization.plan import PlanConfig, plan
from stockcast.simulation.engine import Decision, SimView


def order_up_to(mean: np.ndarray, sigma: np.ndarray, lead: np.ndarray, review: float,
                z: float) -> np.ndarray:
    """Classic order-up-to level ``mean·(L+R) + z·σ·sqrt(L+R)`` (per-period mean and σ)."""
    p = np.asarray(lead, dtype=float) + float(review)
    return np.asarray(mean) * p + float(z) * np.asarray(sigma) * np.sqrt(p)


def _history(pre: np.ndarray, view: SimView) -> np.ndarray:
    return np.concatenate([pre, view.history], axis=1) if pre.size else view.history


@dataclass
class ClassicPolicy:
    """Moving-average forecast + ``z·σ`` safety stock over lead time + review.

    Args:
        pre: Demand before the window ``[n, t_pre]`` (the policy's history).
        lead: Planned lead time per series (periods).
        review: Review period R.
        z: Safety factor (normal quantile of the target cycle service level).
        window: Periods in the moving average and the σ estimate.
    """

    pre: np.ndarray
    lead: np.ndarray
    review: int
    z: float
    window: int = 6

    def target(self, view: SimView) -> np.ndarray:
        """Order-up-to level from the last ``window`` observed periods."""
        hist = _history(self.pre, view)[:, -self.window:]
        mean = np.nanmean(hist, axis=1)
        sigma = np.nanstd(hist, axis=1, ddof=1) if hist.shape[1] > 1 else np.zeros(len(hist))
        return order_up_to(np.nan_to_num(mean), np.nan_to_num(sigma), self.lead, self.review,
                           self.z)

    def __call__(self, view: SimView) -> Decision:
        return Decision(np.maximum(self.target(view) - view.position, 0.0))


@dataclass
class SeasonalNaiveSSPolicy:
    """Seasonal-naive forecast (same period one season ago) + ``z·σ`` of its errors.

    Args:
        pre: Demand before the window ``[n, t_pre]``.
        lead: Planned lead time per series.
        review: Review period R.
        z: Safety factor.
        season: Season length (periods).
        window: Recent seasonal-naive errors used for σ.
    """

    pre: np.ndarray
    lead: np.ndarray
    review: int
    z: float
    season: int = 12
    window: int = 12

    def __call__(self, view: SimView) -> Decision:
        hist = np.nan_to_num(_history(self.pre, view))
        n, t_len = hist.shape
        m = min(self.season, max(t_len, 1))
        p = np.ceil(np.asarray(self.lead, dtype=float) + self.review).astype(int)
        fc = np.zeros(n)
        for k in range(int(p.max(initial=0))):
            idx = t_len - m + k
            while idx >= t_len:
                idx -= m
            fc += np.where(k < p, hist[:, idx] if idx >= 0 else 0.0, 0.0)
        err = (hist[:, m:] - hist[:, :-m])[:, -self.window:] if t_len > m else np.zeros((n, 1))
        sigma = err.std(axis=1, ddof=1) if err.shape[1] > 1 else np.zeros(n)
        target = fc + self.z * sigma * np.sqrt(p)
        return Decision(np.maximum(target - view.position, 0.0))


@dataclass
class OraclePolicy:
    """Perfect foresight: order exactly the demand of the protection period.

    Args:
        future: Actual demand of the window ``[n, T]`` (the one policy allowed to see it).
        lead: Lead time per series and order period ``[n, T]`` (realised, also foreseen).
        review: Review period R.
    """

    future: np.ndarray
    lead: np.ndarray
    review: int

    def __call__(self, view: SimView) -> Decision:
        t = view.t
        cum = np.concatenate([np.zeros((len(self.future), 1)),
                              np.cumsum(self.future, axis=1)], axis=1)
        end = np.minimum(t + self.lead[:, t] + self.review, self.future.shape[1])
        need = cum[np.arange(len(cum)), end] - cum[:, t]
        return Decision(np.maximum(need - view.position, 0.0))


Forecaster = Callable[[int, int], pd.DataFrame]


@dataclass
class OptimizerPolicy:
    """Quantile forecasts + :func:`stockcast.optimization.plan` at every review.

    At review ``t`` the forecaster is asked for ``horizon`` steps from origin
    ``t0 + t - 1`` (the last observed period); the network plan is solved with the
    simulated stock (on hand - backlog, in transit) of the store item-locations; each
    store orders up to the plan's ``target`` (order-up-to level at the critical ratio)
    from its supplier, lateral store-to-store transfers of the plan are executed, and a
    markdown price holds until the next review (demand × ``(price/list)^elasticity``, the
    same rule the plan priced with). DC-sourced transfers/DC orders are not simulated: the
    store replenishes through its supplier path (DC as pass-through).

    Args:
        forecaster: ``(origin_time_idx, horizon) -> forecast table``.
        keys: Series order of the simulation (``item_id``, ``location_id``).
        supply: Supply tables (full network).
        plan_config: Optimizer settings.
        t0: ``time_idx`` of the first simulated period.
        horizon: Forecast steps requested per review.
        shortage_multiplier: Scales every shortage cost (the service knob for tuning).
        elasticity: Price elasticity of demand for markdowns; ``None`` = no markdowns.
    """

    forecaster: Forecaster
    keys: pd.DataFrame
    supply: SupplyTables
    plan_config: PlanConfig
    t0: int
    horizon: int
    shortage_multiplier: float = 1.0
    elasticity: float | None = None
    plans: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.keys = self.keys[GROUP_IDS].reset_index(drop=True).astype(str)
        self._index = {tuple(r): i for i, r in enumerate(self.keys.itertuples(index=False))}
        self.plan_config = replace(
            self.plan_config, disruptions=(),
            price_elasticity=self.elasticity if self.elasticity is not None else None,
            markdowns=self.plan_config.markdowns if self.elasticity is not None else ())
        lanes = self.supply.lanes
        self._lanes = {(str(a), str(b)): (float(c), float(lt)) for a, b, c, lt in zip(
            lanes["from_id"], lanes["to_id"], lanes["transfer_cost"], lanes["lead_time"],
            strict=True)}

    def __call__(self, view: SimView) -> Decision:
        forecast = self.forecaster(self.t0 + view.t - 1, self.horizon)
        econ = self.supply.economics.copy()
        econ["item_id"] = econ["item_id"].astype(str)
        econ["location_id"] = econ["location_id"].astype(str)
        pos = econ.set_index(GROUP_IDS).index.map(self._index.get)
        hit = np.asarray([p is not None and p == p for p in pos])
        idx = np.asarray([int(p) for p in pos[hit]], dtype=int)
        econ.loc[hit, "on_hand"] = np.maximum(view.on_hand[idx] - view.backlog[idx], 0.0)
        econ.loc[hit, "in_transit"] = view.pipeline[idx]
        econ["shortage_cost"] = econ["shortage_cost"] * float(self.shortage_multiplier)
        supply = replace(self.supply, economics=econ)
        result = plan(forecast, supply, self.plan_config)
        self.plans.append(result.summary)
        n = len(self.keys)
        nodes = result.nodes
        nodes = nodes[nodes.get("demand", True).astype(bool)] if "demand" in nodes else nodes
        target = np.full(n, np.nan)
        factor = np.ones(n)
        for item, loc, tgt, price, lp in zip(nodes["item_id"].astype(str),
                                             nodes["location_id"].astype(str), nodes["target"],
                                             nodes["price"], nodes["list_price"], strict=True):
            i = self._index.get((item, loc))
            if i is not None:
                target[i] = tgt
                factor[i] = float(price) / float(lp) if lp > 0 else 1.0
        lateral = np.zeros(n)
        rows = []
        dec = result.decisions
        for item, loc, src, qty in dec.loc[dec["action"] == "transfer",
                                           ["item_id", "location_id", "source", "quantity"]
                                           ].itertuples(index=False):
            s, d = self._index.get((str(item), str(src))), self._index.get((str(item), str(loc)))
            if s is None or d is None or qty <= 1e-6:
                continue
            cost, lead = self._lanes.get((str(src), str(loc)), (0.0, 0.0))
            rows.append((s, d, float(qty), int(round(lead)), cost))
            lateral[d] += qty
            lateral[s] -= qty
        position = view.position + lateral
        order = np.maximum(np.nan_to_num(target - position), 0.0)
        demand_factor = factor ** self.elasticity if self.elasticity is not None else None
        return Decision(order, price_factor=factor, demand_factor=demand_factor,
                        transfers=np.asarray(rows) if rows else None)
