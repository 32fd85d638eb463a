"""Demand distributions from quantile forecasts: quantile function, scenarios, protection period.

Everything here is vectorized over item-locations ("nodes"): arrays have the node on the
first axis.

**Quantile function.** A forecast row gives values ``v_1 <= ... <= v_K`` at levels
``tau_1 < ... < tau_K``. :class:`QuantileFunction` interpolates linearly between them
(so it is monotone whenever the forecast does not cross) and, beyond the outer levels,
uses *exponential tails* whose density matches the outer segment:

* upper: ``Q(u) = v_K + b_hi * ln((1 - tau_K) / (1 - u))`` for ``u > tau_K`` with
  ``b_hi = slope_K * (1 - tau_K)`` (``slope_K`` = slope of the last segment), which is
  unbounded like real demand and adds ``b_hi`` to the mean excess above ``v_K``;
* lower: ``Q(u) = v_1 - b_lo * ln(tau_1 / u)`` for ``u < tau_1`` with
  ``b_lo = slope_1 * tau_1``, floored at ``lower_bound`` (0: demand is not negative).

A single level gives a point mass.

**Scenarios.** :func:`stratified_uniforms` draws Latin-hypercube uniforms: each stream is
a seeded random permutation of the ``n`` stratum midpoints ``(j + 0.5) / n``. The same
uniforms are used for every node (*common random numbers*), so two plans made with the
same seed (e.g. before/after a supplier disruption) differ only because of the change.

**Protection period.** An order placed now must cover demand until the *next* order
arrives: lead time ``L`` plus review period ``R``. :func:`protection_samples` returns, per
node, ``n`` equally likely values of

``D_P = sum_h w_h(L + R) * D_h``,  ``w_h(P) = clip(P - (h - 1), 0, 1)``,

where ``D_h`` is demand in horizon step ``h`` (drawn from that step's quantile function;
independent across steps unless a ``dependence`` is given: comonotone, or a Gaussian copula
across steps, :mod:`stockcast.optimization.leadtime`; steps past the forecast horizon reuse
the last step's quantiles) and ``L ~ max(0, Normal(lead_time_mean, lead_time_std))`` is drawn per
scenario, so lead-time uncertainty is mixed in. Fractional ``L + R`` counts the last step
partially. The samples are sorted; :class:`EmpiricalDemand` treats them as ``n`` atoms of
probability ``1 / n`` (the "exact" distribution the optimizer and the closed form share).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from stockcast.data.validation import raise_if, rows_where
from stockcast.errors import Issue
from stockcast.schema import quantile_column, quantile_levels

NODE_KEYS = ["item_id", "location_id"]


class QuantileFunction:
    """Piecewise-linear quantile function with exponential tails, one per row.

    Args:
        levels: Quantile levels, strictly increasing in (0, 1), shape ``(K,)``.
        values: Quantile values, shape ``(N, K)``, non-decreasing along the last axis.
        lower_bound: Floor of the lower tail (``None``: no floor).

    Raises:
        ValueError: On bad levels or shapes.
    """

    def __init__(
        self, levels: np.ndarray, values: np.ndarray, *, lower_bound: float | None = 0.0
    ) -> None:
        self.levels = np.asarray(levels, dtype=float)
        self.values = np.atleast_2d(np.asarray(values, dtype=float))
        k = len(self.levels)
        if k == 0 or self.values.shape[-1] != k:
            raise ValueError(f"values have {self.values.shape[-1]} columns for {k} levels")
        if np.any(self.levels <= 0) or np.any(self.levels >= 1) or np.any(np.diff(self.levels) <= 0):
            raise ValueError(f"levels must be strictly increasing in (0, 1), got {self.levels}")
        self.lower_bound = lower_bound
        if k > 1:
            t, v = self.levels, self.values
            self._b_lo = (v[:, 1] - v[:, 0]) / (t[1] - t[0]) * t[0]
            self._b_hi = (v[:, -1] - v[:, -2]) / (t[-1] - t[-2]) * (1.0 - t[-1])

    def __len__(self) -> int:
        return self.values.shape[0]

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantiles at levels ``u`` (shape ``(M,)``, shared by all rows) -> ``(N, M)``."""
        u = np.asarray(u, dtype=float)
        t, v = self.levels, self.values
        if len(t) == 1:
            out = np.repeat(v, len(u), axis=1)
        else:
            idx = np.clip(np.searchsorted(t, u, side="right") - 1, 0, len(t) - 2)
            w = np.clip((u - t[idx]) / (t[idx + 1] - t[idx]), 0.0, 1.0)
            out = v[:, idx] * (1.0 - w) + v[:, idx + 1] * w
            lo = u < t[0]
            if lo.any():
                out[:, lo] = v[:, :1] - self._b_lo[:, None] * np.log(t[0] / u[lo])
            hi = u > t[-1]
            if hi.any():
                out[:, hi] = v[:, -1:] + self._b_hi[:, None] * np.log((1 - t[-1]) / (1 - u[hi]))
        if self.lower_bound is not None:
            np.maximum(out, self.lower_bound, out=out)
        return out

    def cdf_rows(self, y: np.ndarray, rng: np.random.Generator | None = None,
                 grid: int = 2048) -> np.ndarray:
        """Probability integral transform: row ``i``'s ``F(y[i])`` (shape ``(N,)``).

        Where ``y[i]`` sits on a flat stretch of the quantile function (a point mass: tied
        quantiles of a count forecast, or the floor at ``lower_bound``) every level in
        ``[F(y-), F(y)]`` maps to it: the PIT is drawn uniformly from that range with
        ``rng`` (the randomised PIT, uniform for a calibrated forecast of discrete
        demand), or its midpoint without one. Levels are resolved on ``grid`` stratum
        midpoints plus logit-spaced tail levels down to ``1e-6`` (so a value beyond the
        outer quantiles gets a tail level, not 0 or 1).
        """
        y = np.broadcast_to(np.asarray(y, dtype=float), (len(self),))
        mid = (np.arange(grid) + 0.5) / grid
        tail = np.logspace(-6, np.log10(0.5 / grid), 24)
        u = np.unique(np.concatenate([tail, mid, 1.0 - tail]))
        lo, hi = np.empty(len(self)), np.empty(len(self))
        block = max(1, 4_000_000 // len(u))
        for start in range(0, len(self), block):
            sl = slice(start, min(len(self), start + block))
            sub = QuantileFunction(self.levels, self.values[sl], lower_bound=self.lower_bound)
            q = sub.ppf(u)
            tol = 1e-9 * np.maximum(1.0, np.abs(y[sl]))[:, None]
            below = (q < y[sl, None] - tol).sum(axis=1)   # grid levels with Q(u) < y
            upto = (q <= y[sl, None] + tol).sum(axis=1)   # grid levels with Q(u) <= y
            edges = np.concatenate([[0.0], u, [1.0]])
            # F(y-) ~ the first level with Q >= y, F(y) ~ the last level with Q <= y
            lo[sl] = np.where(below > 0, (edges[below] + edges[below + 1]) / 2, 0.0)
            hi[sl] = np.where(upto < len(u), (edges[upto] + edges[upto + 1]) / 2, 1.0)
        hi = np.maximum(hi, lo)
        if rng is None:
            return (lo + hi) / 2
        return lo + (hi - lo) * rng.uniform(size=len(lo))

    def ppf_rows(self, u: np.ndarray) -> np.ndarray:
        """Quantile of row ``i`` at its own level ``u[i]`` (shape ``(N,)``) -> ``(N,)``."""
        u = np.broadcast_to(np.asarray(u, dtype=float), (len(self),))
        t, v = self.levels, self.values
        rows = np.arange(len(self))
        if len(t) == 1:
            out = v[:, 0].copy()
        else:
            idx = np.clip(np.searchsorted(t, u, side="right") - 1, 0, len(t) - 2)
            w = np.clip((u - t[idx]) / (t[idx + 1] - t[idx]), 0.0, 1.0)
            out = v[rows, idx] * (1.0 - w) + v[rows, idx + 1] * w
            lo = u < t[0]
            out[lo] = v[lo, 0] - self._b_lo[lo] * np.log(t[0] / u[lo])
            hi = u > t[-1]
            out[hi] = v[hi, -1] + self._b_hi[hi] * np.log((1 - t[-1]) / (1 - u[hi]))
        if self.lower_bound is not None:
            np.maximum(out, self.lower_bound, out=out)
        return out


def stratified_uniforms(n: int, n_streams: int, seed: int | np.random.Generator) -> np.ndarray:
    """Latin-hypercube uniforms: ``n_streams`` independent permutations of ``(j + 0.5) / n``.

    Args:
        n: Number of strata (scenarios).
        n_streams: Number of independent streams (one per random input).
        seed: Seed or generator.

    Returns:
        Array ``(n_streams, n)``.
    """
    rng = np.random.default_rng(seed)
    mid = (np.arange(n) + 0.5) / n
    return np.stack([mid[rng.permutation(n)] for _ in range(n_streams)]) if n_streams else (
        np.empty((0, n))
    )


def protection_samples(
    steps: np.ndarray,
    levels: np.ndarray,
    *,
    review_period: float | np.ndarray,
    lead_mean: np.ndarray | float = 0.0,
    lead_std: np.ndarray | float = 0.0,
    n_samples: int = 256,
    seed: int = 0,
    scale: np.ndarray | None = None,
    max_block: int = 4_000_000,
    dependence: str | np.ndarray | None = None,
) -> np.ndarray:
    """Sorted samples of demand over the protection period ``L + R`` (see module docstring).

    Args:
        steps: Per-step quantile values ``(N, H, K)`` (horizon steps 1..H).
        levels: Quantile levels ``(K,)``.
        review_period: ``R`` in periods (scalar or per node).
        lead_mean: Mean lead time per node (periods).
        lead_std: Lead-time standard deviation per node.
        n_samples: Number of equally likely samples ``n`` per node.
        seed: Seed of the stratified uniforms (common to all nodes).
        scale: Optional per-node multiplier of demand (e.g. a price response).
        max_block: Work-array size bound; nodes are processed in blocks of this many
            node x sample x step cells.
        dependence: How the steps' demands depend on each other within a scenario:
            ``None`` / ``"independent"`` (each step its own uniform), ``"comonotone"``
            (one uniform for every step: the protection-period quantile is the sum of the
            steps' quantiles), or a correlation matrix ``(M, M)`` of a Gaussian copula
            across steps 1..M (:func:`copula_uniforms`; steps beyond ``M`` repeat the last
            step's correlations).

    Returns:
        ``(N, n)`` samples, sorted ascending per node.
    """
    steps = np.asarray(steps, dtype=float)
    n_nodes, horizon, _ = steps.shape
    lead_mean = np.broadcast_to(np.asarray(lead_mean, dtype=float), (n_nodes,))
    lead_std = np.broadcast_to(np.asarray(lead_std, dtype=float), (n_nodes,))
    review = np.broadcast_to(np.asarray(review_period, dtype=float), (n_nodes,))
    if np.any(review < 0) or np.any(lead_mean < 0) or np.any(lead_std < 0):
        raise ValueError("review period and lead times must be >= 0")
    z_lead = special.ndtri(stratified_uniforms(n_samples, 1, seed)[0])
    # P per node and scenario; the number of steps needed is the largest P.
    max_p = float(np.max(review + np.maximum(0.0, lead_mean + lead_std * z_lead.max()), initial=0))
    n_steps = max(1, int(np.ceil(max_p - 1e-9)))
    u = stratified_uniforms(n_samples, n_steps, np.random.default_rng([seed, 1]))
    if isinstance(dependence, str) and dependence == "comonotone":
        u = np.repeat(u[:1], n_steps, axis=0)
    elif dependence is not None and not isinstance(dependence, str):
        u = copula_uniforms(u, np.asarray(dependence, dtype=float))
    elif dependence not in (None, "independent"):
        raise ValueError(f"dependence must be independent, comonotone or a correlation "
                         f"matrix, got {dependence!r}")
    out = np.empty((n_nodes, n_samples))
    block = max(1, max_block // max(1, n_samples * n_steps))
    for start in range(0, n_nodes, block):
        sl = slice(start, min(n_nodes, start + block))
        p = review[sl, None] + np.maximum(0.0, lead_mean[sl, None] + lead_std[sl, None] * z_lead)
        total = np.zeros((p.shape[0], n_samples))
        for h in range(n_steps):
            w = np.clip(p - h, 0.0, 1.0)
            if not w.any():
                break
            q = QuantileFunction(levels, steps[sl, min(h, horizon - 1), :])
            total += w * q.ppf(u[h])
        if scale is not None:
            total *= np.asarray(scale, dtype=float)[sl, None]
        total.sort(axis=1)
        out[sl] = total
    return out


def extend_correlation(corr: np.ndarray, size: int) -> np.ndarray:
    """A correlation matrix over ``size`` steps from one over ``M`` steps: steps beyond
    ``M`` take the last step's correlations (with each other: the last off-diagonal
    value), then the nearest positive semi-definite correlation matrix (eigenvalues
    clipped at 0, diagonal rescaled to 1)."""
    corr = np.atleast_2d(np.asarray(corr, dtype=float))
    m = corr.shape[0]
    idx = np.minimum(np.arange(size), m - 1)
    out = corr[np.ix_(idx, idx)].copy()
    if size > m and m > 1:
        last = corr[m - 1, m - 2]
        tail = np.arange(size) >= m - 1
        out[np.ix_(tail, tail)] = last
    np.fill_diagonal(out, 1.0)
    return nearest_correlation(out)


def nearest_correlation(corr: np.ndarray) -> np.ndarray:
    """Eigenvalues clipped at 0 and the diagonal rescaled to 1 (a valid correlation
    matrix close to ``corr``)."""
    corr = (np.asarray(corr, dtype=float) + np.asarray(corr, dtype=float).T) / 2
    w, v = np.linalg.eigh(corr)
    fixed = (v * np.maximum(w, 0.0)) @ v.T
    d = np.sqrt(np.maximum(np.diag(fixed), 1e-12))
    out = fixed / d[:, None] / d[None, :]
    np.fill_diagonal(out, 1.0)
    return out


def copula_uniforms(u: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Gaussian-copula uniforms: independent stratified streams ``u`` ``(S, n)`` turned
    into streams whose normal scores have correlation ``corr`` (extended to ``S`` steps by
    :func:`extend_correlation`). Each stream stays uniform; the identity keeps ``u``."""
    n_steps = u.shape[0]
    c = extend_correlation(corr, n_steps)
    if np.allclose(c, np.eye(n_steps)):
        return u
    w, v = np.linalg.eigh(c)
    root = (v * np.sqrt(np.maximum(w, 0.0))) @ v.T  # symmetric square root
    z = root @ special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
    return np.clip(special.ndtr(z), 1e-9, 1 - 1e-9)


@dataclass
class EmpiricalDemand:
    """``n`` equally likely demand values per node (sorted), with newsvendor helpers.

    Attributes:
        samples: ``(N, n)`` sorted ascending per row.
    """

    samples: np.ndarray

    def __post_init__(self) -> None:
        self.samples = np.atleast_2d(np.asarray(self.samples, dtype=float))
        self._cum = None

    @property
    def n(self) -> int:
        """Number of atoms per node."""
        return self.samples.shape[1]

    def __len__(self) -> int:
        return self.samples.shape[0]

    def subset(self, rows: np.ndarray) -> EmpiricalDemand:
        """The distributions of some nodes."""
        return EmpiricalDemand(self.samples[rows])

    @property
    def mean(self) -> np.ndarray:
        """Mean demand per node."""
        return self.samples.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation per node."""
        return self.samples.std(axis=1)

    def atom_index(self, level: np.ndarray | float) -> np.ndarray:
        """0-based index of the smallest atom with ``F >= level``: ``ceil(level * n) - 1``."""
        level = np.asarray(level, dtype=float)
        return np.clip(np.ceil(level * self.n - 1e-9).astype(int) - 1, 0, self.n - 1)

    def quantile(self, level: np.ndarray | float) -> np.ndarray:
        """Smallest ``y`` with ``P(D <= y) >= level`` per node (``level`` scalar or ``(N,)``)."""
        idx = np.broadcast_to(self.atom_index(level), (len(self),))
        return self.samples[np.arange(len(self)), idx]

    def interpolated(self, level: float) -> np.ndarray:
        """Quantile at ``level`` interpolated between atom midpoints (for reporting)."""
        pos = np.clip(level * self.n - 0.5, 0, self.n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, self.n - 1)
        w = pos - lo
        return self.samples[:, lo] * (1 - w) + self.samples[:, hi] * w

    def partial_expectation(self, levels: np.ndarray) -> np.ndarray:
        """``C(u) = int_0^u Q(v) dv`` at per-node levels ``(N, W)`` -> ``(N, W)``.

        ``C`` is the intercept of the tangent of ``phi(y) = E(y - D)+`` at ``y = Q(u)``:
        ``phi(y) >= u * y - C(u)`` for all ``y``, with equality at ``Q(u)``.
        """
        cum = self._cumulative()
        levels = np.clip(np.asarray(levels, dtype=float), 0.0, 1.0)
        pos = levels * self.n
        j = np.clip(np.floor(pos + 1e-12).astype(int), 0, self.n)
        frac = np.clip(pos - j, 0.0, None)
        atom = np.take_along_axis(self.samples, np.clip(j, 0, self.n - 1), axis=1)
        return np.take_along_axis(cum, j, axis=1) + frac / self.n * atom

    def _cumulative(self) -> np.ndarray:
        if self._cum is None:
            self._cum = np.concatenate(
                [np.zeros((len(self), 1)), np.cumsum(self.samples, axis=1) / self.n], axis=1
            )
        return self._cum

    def expected_shortage(self, y: np.ndarray) -> np.ndarray:
        """``E(D - y)+`` per node for positions ``y`` ``(N,)``."""
        y = np.asarray(y, dtype=float)
        k = (self.samples <= y[:, None]).sum(axis=1)
        cum = self._cumulative()
        above = cum[:, -1] - cum[np.arange(len(self)), k]
        return np.maximum(above - y * (self.n - k) / self.n, 0.0)

    def expected_leftover(self, y: np.ndarray) -> np.ndarray:
        """``E(y - D)+`` per node."""
        y = np.asarray(y, dtype=float)
        return y - self.mean + self.expected_shortage(y)

    def fill_rate(self, y: np.ndarray) -> np.ndarray:
        """Expected fill rate ``E min(D, y) / E D`` (1 where expected demand is 0)."""
        mean = self.mean
        short = self.expected_shortage(y)
        return np.where(mean > 0, 1.0 - short / np.where(mean > 0, mean, 1.0), 1.0)

    def cdf(self, y: np.ndarray) -> np.ndarray:
        """``P(D <= y)`` per node."""
        y = np.asarray(y, dtype=float)
        return (self.samples <= y[:, None] + 1e-9 * np.maximum(1.0, np.abs(y[:, None]))).mean(axis=1)


@dataclass
class ForecastArray:
    """A forecast table pivoted to arrays.

    Attributes:
        keys: ``item_id``, ``location_id`` per node (row order of the arrays).
        levels: Quantile levels ``(K,)``.
        values: Quantiles ``(N, H, K)`` for horizon steps ``1..H``.
        origin: Forecast origin per node.
        price: Candidate price per node (price tables only), else ``None``.
    """

    keys: pd.DataFrame
    levels: np.ndarray
    values: np.ndarray
    origin: pd.Series
    price: np.ndarray | None = None

    @property
    def horizon(self) -> int:
        """Number of horizon steps."""
        return self.values.shape[1]


def forecast_array(
    forecast: pd.DataFrame,
    *,
    table: str = "forecast",
    extra_keys: tuple[str, ...] = (),
) -> ForecastArray:
    """Validate a forecast table and pivot it to ``(N, H, K)``.

    Rules: columns ``item_id``, ``location_id``, ``horizon`` and at least one ``q<level>``;
    quantiles finite, >= 0 and non-decreasing in the level; horizons ``1..H`` complete and
    unique per node. When several ``forecast_origin`` values exist for a node, the latest
    is used.

    Args:
        forecast: The forecast table.
        table: Table name for error messages.
        extra_keys: Further key columns (``price`` for price tables).

    Raises:
        DataValidationError: Naming the table, column, rule and rows.
    """
    issues: list[Issue] = []
    required = [*NODE_KEYS, "horizon", *extra_keys]
    missing = [c for c in required if c not in forecast.columns]
    issues += [Issue(table, c, "missing_column", "required column is absent") for c in missing]
    levels = quantile_levels(forecast)
    if not levels:
        issues.append(Issue(table, None, "quantile_columns", "no q<level> columns"))
    raise_if(issues)
    bad_levels = [q for q in levels if not 0 < q < 1]
    if bad_levels:
        raise_if([Issue(table, quantile_column(bad_levels[0]), "level_in_0_1",
                        f"quantile levels must lie in (0, 1), got {bad_levels}")])
    df = forecast.reset_index(drop=True)
    df = df.assign(item_id=df["item_id"].astype(str), location_id=df["location_id"].astype(str))
    if "forecast_origin" in df and df["forecast_origin"].notna().any():
        latest = df.groupby(NODE_KEYS + list(extra_keys))["forecast_origin"].transform("max")
        df = df[df["forecast_origin"] == latest]
    cols = [quantile_column(q) for q in levels]
    values = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        issues.append(Issue(table, ",".join(cols), "finite", "quantiles missing or not numbers",
                            rows_where(pd.Series(bad, index=df.index))))
    neg = (values < 0).any(axis=1)
    if neg.any():
        issues.append(Issue(table, cols[0], "non_negative", "demand quantiles must be >= 0",
                            rows_where(pd.Series(neg, index=df.index))))
    crossing = (np.diff(values, axis=1) < -1e-9 * np.maximum(1, np.abs(values[:, 1:]))).any(axis=1)
    if crossing.any():
        issues.append(Issue(table, ",".join(cols), "quantiles_monotone",
                            "quantiles cross (decrease with the level)",
                            rows_where(pd.Series(crossing, index=df.index))))
    horizon = pd.to_numeric(df["horizon"], errors="coerce")
    bad_h = horizon.isna() | (horizon < 1) | (horizon != horizon.round())
    if bad_h.any():
        issues.append(Issue(table, "horizon", "positive_integer", "horizon must be 1, 2, ...",
                            rows_where(bad_h)))
    raise_if(issues)
    group = NODE_KEYS + list(extra_keys)
    df = df.assign(horizon=horizon.astype(int))
    dup = df.duplicated(group + ["horizon"], keep=False)
    if dup.any():
        issues.append(Issue(table, "horizon", "unique_key",
                            f"one row per {' x '.join(group)} x horizon", rows_where(dup)))
    raise_if(issues)
    df = df.sort_values(group + ["horizon"], kind="stable")
    node_idx = df.groupby(group, sort=False).ngroup().to_numpy()
    counts = df.groupby(node_idx)["horizon"].agg(["count", "max"])
    gappy = (counts["count"] != counts["max"]).to_numpy()
    if gappy.any():
        issues.append(Issue(table, "horizon", "complete_horizons",
                            "horizons must run 1..H without gaps for every series",
                            sorted(int(i) for i in df.index[gappy[node_idx]])))
    raise_if(issues)
    keep = group + (["forecast_origin"] if "forecast_origin" in df else [])
    nodes = df.drop_duplicates(group)[keep].reset_index(drop=True)
    h_max = int(df["horizon"].max())
    arr = np.full((len(nodes), h_max, len(levels)), np.nan)
    arr[node_idx, df["horizon"].to_numpy() - 1, :] = df[cols].to_numpy(float)
    last = counts["max"].to_numpy()
    for i in np.where(last < h_max)[0]:  # series shorter than H: repeat their last step
        arr[i, last[i]:, :] = arr[i, last[i] - 1, :]
    origin = nodes["forecast_origin"] if "forecast_origin" in nodes else pd.Series(
        pd.NaT, index=nodes.index)
    price = nodes["price"].to_numpy(float) if "price" in extra_keys else None
    return ForecastArray(nodes[NODE_KEYS].copy(), np.asarray(levels), arr, origin, price)
