"""Service-target stocking: order-up-to levels for a fill rate, not for shortage costs.

Planners often set a service target ("95% fill") rather than a shortage cost. With periodic
review ``R``, lead time ``L`` and order-up-to level ``S``, the demand of one review cycle that
goes unserved is the shortage at the end of the cycle minus the shortage already there
when the cycle's order arrived, so the expected fill rate is (Sobel's correction of the
"shortage over L + R" formula, exact under backorders; a close, slightly pessimistic
approximation under lost sales)::

    fill(S) = 1 - [E(D_{L+R} - S)+ - E(D_L - S)+] / E D_R

with ``D_{L+R}`` the protection-period demand (:func:`~stockcast.optimization.
distribution.protection_samples`), ``D_L`` the demand over the lead time alone and
``E D_R = E D_{L+R} - E D_L``. :func:`sobel_fill_rate` evaluates it, and
:func:`fill_rate_levels` finds the levels for a target:

* ``allocation="item"``: per item-location the least ``S`` with ``fill(S) >= target``;
* ``allocation="network"``: the levels of least expected inventory whose demand-weighted
  expected fill over the network reaches the target (a Lagrangian sweep: every node takes
  the level that maximises ``lambda x expected units served - expected on-hand stock``;
  ``lambda`` is bisected until the network target is met, then a greedy trim,
  :func:`lagrangian_choice`). Items whose extra unit of stock
  serves little (slow or capped) then get less, fast movers more: the same fill at less
  inventory than equal targets.
"""

from __future__ import annotations

import numpy as np

from stockcast.optimization.distribution import EmpiricalDemand

ALLOCATIONS = ("item", "network")


def _as_demand(d: EmpiricalDemand | np.ndarray) -> EmpiricalDemand:
    return d if isinstance(d, EmpiricalDemand) else EmpiricalDemand(np.sort(np.asarray(d), 1))


def sobel_fill_rate(protection: EmpiricalDemand, lead: EmpiricalDemand,
                    level: np.ndarray) -> np.ndarray:
    """Expected fill rate per node at order-up-to ``level`` (module formula; 1 where a node
    expects no demand in a review period).

    Args:
        protection: Demand over ``L + R`` per node (equally likely values).
        lead: Demand over ``L`` per node.
        level: Order-up-to level per node.
    """
    protection, lead = _as_demand(protection), _as_demand(lead)
    level = np.broadcast_to(np.asarray(level, dtype=float), (len(protection),))
    review = np.maximum(protection.mean - lead.mean, 0.0)
    short = protection.expected_shortage(level) - lead.expected_shortage(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        fill = np.where(review > 1e-12, 1.0 - short / np.where(review > 1e-12, review, 1.0),
                        1.0)
    return np.clip(fill, 0.0, 1.0)


def expected_on_hand(protection: EmpiricalDemand, lead: EmpiricalDemand,
                     level: np.ndarray) -> np.ndarray:
    """Average stock on hand over a review cycle at order-up-to ``level``: the mean of the
    expected stock when the order arrives, ``E(S - D_L)+``, and at the end of the cycle,
    ``E(S - D_{L+R})+``."""
    protection, lead = _as_demand(protection), _as_demand(lead)
    level = np.broadcast_to(np.asarray(level, dtype=float), (len(protection),))
    return 0.5 * (lead.expected_leftover(level) + protection.expected_leftover(level))


def _item_levels(protection: EmpiricalDemand, lead: EmpiricalDemand, target: float,
                 iterations: int = 60) -> np.ndarray:
    """Least ``S`` per node with ``fill(S) >= target`` (bisection: the fill rate is
    non-decreasing in ``S``)."""
    lo = np.zeros(len(protection))
    hi = np.maximum(protection.samples[:, -1], 0.0) + 1e-9
    ok0 = sobel_fill_rate(protection, lead, lo) >= target
    for _ in range(iterations):
        mid = (lo + hi) / 2
        up = sobel_fill_rate(protection, lead, mid) >= target
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    return np.where(ok0, 0.0, hi)


def lagrangian_choice(served: np.ndarray, stock: np.ndarray, need: float,
                      iterations: int = 80, max_swap_cells: int = 6000) -> np.ndarray:
    """Per node the option (column) to take so that total ``served`` reaches ``need`` at
    the least total ``stock`` (options ordered by level).

    A Lagrangian sweep (each node maximises ``lambda x served - stock``; ``lambda``
    bisected to the least value that meets ``need``) followed by a local search that closes
    most of the Lagrangian's duality gap on discrete options: while some node can drop to a
    lower option with the total still meeting ``need``, the drop saving the most stock is
    made; else (networks of at most ``max_swap_cells`` node-options) the best pair of one
    node's drop and another's raise that saves stock and keeps the target. Where even the
    top options fall short, every node takes its top option.

    Args:
        served: ``(N, K)`` units served per node and option.
        stock: ``(N, K)`` stock held per node and option.
        need: Units the network must serve.

    Returns:
        ``(N,)`` option indices.
    """
    served, stock = np.asarray(served, float), np.asarray(stock, float)
    n = len(served)
    rows = np.arange(n)
    if served.max(axis=1).sum() < need:
        return np.argmax(served, axis=1)

    def pick(lam: float) -> np.ndarray:
        return np.argmax(lam * served - stock, axis=1)

    lo, hi = 0.0, 1.0
    while served[rows, pick(hi)].sum() < need and hi < 1e15:
        hi *= 4.0
    for _ in range(iterations):
        mid = np.sqrt(lo * hi) if lo > 0 else hi / 4.0
        if served[rows, pick(mid)].sum() >= need:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * hi:
            break
    k = pick(hi)
    cols = np.arange(served.shape[1])
    swaps = served.size <= max_swap_cells
    for _ in range(4 * n * served.shape[1]):
        total = served[rows, k].sum()
        gain = served - served[rows, k][:, None]      # served change if node i took option j
        save = stock[rows, k][:, None] - stock        # stock saved if it did
        lower = cols[None, :] < k[:, None]
        ok = lower & (total + gain >= need - 1e-9) & (save > 1e-12)
        if ok.any():                                  # a drop that keeps the target
            i, j = np.unravel_index(np.argmax(np.where(ok, save, -np.inf)), ok.shape)
            k[i] = j
            continue
        if not swaps:
            break
        # a drop of one node paid for by a raise of another
        di, dj = np.nonzero(lower)
        ui, uj = np.nonzero(cols[None, :] > k[:, None])
        if not len(di) or not len(ui):
            break
        deficit = need - 1e-9 - (total + gain[di, dj])
        net = save[di, dj][:, None] + save[ui, uj][None, :]   # raise: save < 0
        feasible = (gain[ui, uj][None, :] >= deficit[:, None]) & (di[:, None] != ui[None, :])
        net = np.where(feasible, net, -np.inf)
        best = np.unravel_index(np.argmax(net), net.shape)
        if not net[best] > 1e-12:
            break
        k[di[best[0]]], k[ui[best[1]]] = dj[best[0]], uj[best[1]]
    return k


def _network_levels(protection: EmpiricalDemand, lead: EmpiricalDemand, target: float,
                    n_levels: int = 96) -> np.ndarray:
    """Lagrangian allocation of levels for a demand-weighted network fill target."""
    n = len(protection)
    u = 1.0 - np.logspace(np.log10(0.7), -4, n_levels)        # 0.3 ... 0.9999
    cand = np.concatenate([np.zeros((n, 1)), np.stack(
        [protection.interpolated(float(v)) for v in u], axis=1)], axis=1)
    cand = np.maximum.accumulate(cand, axis=1)
    review = np.maximum(protection.mean - lead.mean, 0.0)
    served = np.stack([review * sobel_fill_rate(protection, lead, cand[:, k])
                       for k in range(cand.shape[1])], axis=1)
    stock = np.stack([expected_on_hand(protection, lead, cand[:, k])
                      for k in range(cand.shape[1])], axis=1)
    k = lagrangian_choice(served, stock, target * review.sum())
    return cand[np.arange(n), k]


def fill_rate_levels(protection: EmpiricalDemand | np.ndarray,
                     lead: EmpiricalDemand | np.ndarray, target: float, *,
                     allocation: str = "item") -> np.ndarray:
    """Order-up-to levels for a fill-rate ``target`` (module docstring).

    Args:
        protection: Demand over ``L + R`` per node (``EmpiricalDemand`` or ``(N, n)``).
        lead: Demand over ``L`` per node.
        target: Fill rate in (0, 1).
        allocation: ``item`` (each node its target) or ``network`` (least expected
            inventory for the demand-weighted network target).

    Raises:
        ValueError: Target outside (0, 1) or unknown allocation.
    """
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"fill-rate target must lie in (0, 1), got {target}")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {list(ALLOCATIONS)}, got {allocation!r}")
    protection, lead = _as_demand(protection), _as_demand(lead)
    if allocation == "item":
        return _item_levels(protection, lead, float(target))
    return _network_levels(protection, lead, float(target))
