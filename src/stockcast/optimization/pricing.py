"""Joint price and quantity: pick the candidate price with the best newsvendor profit.

For every item-location and every candidate price ``p_j`` (list price and markdowns), the
demand distribution at that price gives the newsvendor order-up-to level
``y_j = max(on_hand + in_transit, Q_j(CR_j))`` and its expected profit

``p_j E min(D_j, y_j) + (s - h) E(y_j - D_j)+ - g E(D_j - y_j)+ - c (y_j - stock)+``

(``c`` the node's landed replenishment cost, stock already held is sunk). The price with
the highest expected profit wins; ties go to the higher price. Stock above the
``excess_quantile`` of demand over the whole forecast horizon is flagged as *excess*: the
markdown that sells it off best is then the recommendation.

Demand per candidate price comes from either

* price forecast tables (the TFT re-forecast with price as a known covariate): one table
  with a ``price`` column, or several such tables; or
* a constant-elasticity response ``D(p) = D(p0) (p / p0) ** elasticity`` applied to the
  list-price forecast (a documented fallback for tests and datasets without price
  forecasts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.data.validation import raise_if
from stockcast.errors import Issue
from stockcast.optimization.distribution import NODE_KEYS, EmpiricalDemand, forecast_array
from stockcast.optimization.newsvendor import closed_form


@dataclass
class PriceGrid:
    """Candidate prices per node and how to get their demand.

    Attributes:
        price: ``(N, J)`` candidate prices, column 0 = list price; NaN = no candidate.
        steps: ``(J, N, H, K)`` per-step quantiles per candidate (table mode) or ``None``.
        levels: Quantile levels of ``steps``.
        scale: ``(N, J)`` demand multipliers (elasticity mode) or ``None``.
    """

    price: np.ndarray
    steps: np.ndarray | None = None
    levels: np.ndarray | None = None
    scale: np.ndarray | None = None

    @property
    def n_candidates(self) -> int:
        return self.price.shape[1]


def elasticity_grid(list_price: np.ndarray, markdowns: Sequence[float],
                    elasticity: float) -> PriceGrid:
    """Candidates ``list x (1 - m)`` with demand scaled by ``(p / list) ** elasticity``.

    Args:
        list_price: List price per node.
        markdowns: Fractions off the list price (e.g. ``(0.1, 0.2, 0.3)``).
        elasticity: Constant price elasticity (negative: demand rises as price falls).

    Raises:
        ValueError: For markdowns outside [0, 1).
    """
    fractions = np.array([0.0, *markdowns], dtype=float)
    if np.any(fractions < 0) or np.any(fractions >= 1):
        raise ValueError(f"markdowns must lie in [0, 1), got {list(markdowns)}")
    price = np.asarray(list_price, dtype=float)[:, None] * (1.0 - fractions)[None, :]
    return PriceGrid(price=price, scale=(1.0 - fractions)[None, :].repeat(len(price), 0)
                     ** elasticity)


def table_grid(price_forecasts: pd.DataFrame | Sequence[pd.DataFrame], keys: pd.DataFrame,
               list_price: np.ndarray, base_steps: np.ndarray, base_levels: np.ndarray,
               *, table: str = "price_forecasts") -> PriceGrid:
    """Candidates from price forecast tables aligned to the demand nodes ``keys``.

    The base forecast is the list-price candidate (column 0) unless a table already has
    the list price for that node (then that table's demand is used). Nodes without price
    rows keep the list price only.

    Raises:
        DataValidationError: Bad tables, or quantile levels that differ from the forecast's.
    """
    tables = [price_forecasts] if isinstance(price_forecasts, pd.DataFrame) else list(
        price_forecasts)
    if not tables:
        raise ValueError("price_forecasts is empty")
    df = pd.concat(tables, ignore_index=True)
    fa = forecast_array(df, table=table, extra_keys=("price",))
    if not np.array_equal(fa.levels, base_levels):
        raise_if([Issue(table, None, "same_quantile_levels",
                        f"price forecasts have levels {fa.levels.tolist()}, the forecast has "
                        f"{np.asarray(base_levels).tolist()}")])
    bad_price = ~(fa.price > 0)
    if bad_price.any():
        raise_if([Issue(table, "price", "positive", "candidate prices must be > 0")])
    node_of = pd.Series(np.arange(len(keys)),
                        index=pd.MultiIndex.from_frame(keys[NODE_KEYS].astype(str)))
    node = node_of.reindex(pd.MultiIndex.from_frame(fa.keys)).to_numpy()
    unknown = np.isnan(node)
    if unknown.any():
        pairs = ", ".join(f"{i}@{loc}" for i, loc in fa.keys[unknown].head(5).itertuples(
            index=False))
        raise_if([Issue(table, "location_id", "known_item_location",
                        f"price forecasts for item-locations not in the forecast, e.g. {pairs}")])
    node = node.astype(int)
    lp = np.asarray(list_price, dtype=float)
    is_list = np.isclose(fa.price, lp[node], rtol=1e-9, atol=0)
    order = pd.DataFrame({"node": node, "price": fa.price, "row": np.arange(len(node))})
    listed, others = order[is_list], order[~is_list]
    others = others.sort_values(["node", "price"], ascending=[True, False], kind="stable")
    slot = others.groupby("node").cumcount().to_numpy() + 1
    j_max = int(slot.max()) + 1 if len(slot) else 1
    horizon = max(base_steps.shape[1], fa.values.shape[1])
    n, k = len(keys), len(base_levels)
    price = np.full((n, j_max), np.nan)
    price[:, 0] = lp
    steps = np.empty((j_max, n, horizon, k))
    steps[:] = _pad(base_steps, horizon)[None]
    values = _pad(fa.values, horizon)
    steps[0, listed["node"].to_numpy()] = values[listed["row"].to_numpy()]
    steps[slot, others["node"].to_numpy()] = values[others["row"].to_numpy()]
    price[others["node"].to_numpy(), slot] = others["price"].to_numpy()
    return PriceGrid(price=price, steps=steps, levels=np.asarray(base_levels))


def _pad(values: np.ndarray, horizon: int) -> np.ndarray:
    if values.shape[1] >= horizon:
        return values
    extra = np.repeat(values[:, -1:, :], horizon - values.shape[1], axis=1)
    return np.concatenate([values, extra], axis=1)


@dataclass
class PricingResult:
    """Chosen price per node and the evidence.

    Attributes:
        choice: Index of the chosen candidate per node (0 = list price).
        price: Chosen price per node.
        profit: ``(N, J)`` expected profit per candidate (``-inf`` where none).
        position: ``(N, J)`` newsvendor position per candidate.
        demand: Protection-period demand at the chosen price.
        excess: Stock above the ``excess_quantile`` of horizon demand (at list price).
        horizon_quantile: That quantile per node.
    """

    choice: np.ndarray
    price: np.ndarray
    profit: np.ndarray
    position: np.ndarray
    demand: EmpiricalDemand
    excess: np.ndarray
    horizon_quantile: np.ndarray


def choose_prices(
    candidates: Sequence[EmpiricalDemand] | None,
    grid: PriceGrid,
    *,
    unit_cost: np.ndarray,
    holding: np.ndarray,
    shortage: np.ndarray,
    salvage: np.ndarray,
    stock: np.ndarray,
    base_demand: EmpiricalDemand,
    horizon_quantile: np.ndarray,
    scope: str = "all",
) -> PricingResult:
    """Best price per node by expected newsvendor profit (vectorized over nodes).

    Args:
        candidates: Protection demand per candidate (table mode), or ``None`` when
            ``grid.scale`` rescales ``base_demand`` (elasticity mode).
        grid: Candidate prices.
        unit_cost: Landed replenishment cost per node.
        holding, shortage, salvage: Economics per node.
        stock: On-hand + in-transit per node.
        base_demand: Protection demand at the list price.
        horizon_quantile: High quantile of horizon demand at the list price (excess test).
        scope: ``all`` (every node may change price) or ``excess`` (only nodes with excess
            stock may go below the list price).

    Raises:
        ValueError: Unknown scope.
    """
    if scope not in ("all", "excess"):
        raise ValueError(f"pricing scope must be 'all' or 'excess', got {scope!r}")
    n, j_count = grid.price.shape
    profit = np.full((n, j_count), -np.inf)
    position = np.full((n, j_count), np.nan)
    best = np.zeros(n, int)
    best_samples = base_demand.samples.copy()
    excess = stock > horizon_quantile
    for j in range(j_count):
        p = grid.price[:, j]
        ok = np.isfinite(p)
        if scope == "excess" and j > 0:
            ok &= excess | (p >= grid.price[:, 0])
        if not ok.any():
            continue
        if candidates is not None:
            d = candidates[j]
        elif grid.scale is not None:
            d = EmpiricalDemand(base_demand.samples * grid.scale[:, j:j + 1])
        else:
            d = base_demand
        rows = np.flatnonzero(ok)
        sub = d.subset(rows)
        out = closed_form(sub, price=p[rows], unit_cost=unit_cost[rows], holding=holding[rows],
                          shortage=shortage[rows], salvage=salvage[rows], on_hand=stock[rows])
        profit[rows, j] = out.expected_profit
        position[rows, j] = out.position
        if j == 0:
            continue
        current = profit[rows, best[rows]]
        better = out.expected_profit > current + 1e-9 * np.maximum(1.0, np.abs(current))
        win = rows[better]
        best[win] = j
        best_samples[win] = sub.samples[better]
    price = grid.price[np.arange(n), best]
    return PricingResult(best, price, profit, position, EmpiricalDemand(best_samples), excess,
                         horizon_quantile)
