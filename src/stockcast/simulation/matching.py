"""Inventory at matched service: every tunable policy tuned to the same fill rate.

Each tunable policy has a service knob (the cycle service level of the safety-stock
policies, the planning service level of the optimizer policies: see
:mod:`stockcast.simulation.policies`), simulated on a grid. For each target fill rate
(:func:`resolve_target`: a number; a policy name = that policy's fill rate in the main run;
``common`` = the highest fill rate every tunable policy reaches on its grid)
:func:`match_target` extends the grid while the target lies outside it and re-simulates at
the knob interpolated (in probit scale) between the two runs that bracket it, then reads
average inventory, costs and working capital off the line between the bracketing runs. A
target no knob reaches is reported as such, with the fill rates that were reached. Policies
that are not tuned (the oracle: perfect foresight, the most any policy could serve) are
reported at their main run. The comparison covers the periods after a warm-up
(:func:`warmup_periods`: before it no decision reaches a shelf); :func:`matched_service`
runs the whole search, :func:`matched_table` adds the comparisons with classic and the
gaps to the bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from stockcast.errors import InfeasibleProblemError
from stockcast.simulation.world import Window

#: The policies whose gaps every policy is reported against (when they run).
BOUNDS = ("oracle", "true_distribution", "attainable_distribution", "frontier")
#: KPIs read off the line between the two runs that bracket a target.
MATCHED_VALUES = ("avg_inventory", "avg_inventory_value", "total_cost", "controllable_cost",
                  "working_capital")


#: Most extreme knob an extension tries (probit +-7: a cycle service level of 1 - 1e-12).
KNOB_CAP = float(special.ndtr(7.0))


def _probit(k: float) -> float:
    return float(special.ndtri(min(max(k, 1e-15), 1 - 1e-15)))


def _bracket(points: dict[float, dict], target: float) -> tuple[float, float] | None:
    """The first adjacent pair of knobs (ascending) whose fill rates straddle ``target``."""
    ks = sorted(points)
    for a, b in zip(ks, ks[1:], strict=False):
        fa, fb = points[a]["fill_rate"], points[b]["fill_rate"]
        if min(fa, fb) - 1e-12 <= target <= max(fa, fb) + 1e-12:
            return a, b
    for k in ks:
        if abs(points[k]["fill_rate"] - target) <= 1e-12:
            return k, k
    return None


def _best(points: dict[float, dict]) -> dict:
    """The run with the highest fill rate: ``best_fill``, ``best_knob``, ``best_inventory``."""
    k = max(points, key=lambda q: points[q]["fill_rate"])
    return {"best_fill": float(points[k]["fill_rate"]), "best_knob": float(k),
            "best_inventory": float(points[k].get("avg_inventory", np.nan))}


def match_target(points: dict[float, dict], target: float,
                 run_knob: Callable[[float], dict] | None = None, *, expand: int = 3,
                 refine: int = 2, tolerance: float = 0.002, step: float = 0.75,
                 values: tuple[str, ...] = MATCHED_VALUES) -> dict:
    """A policy's KPIs at fill rate ``target``, read off its service-vs-knob curve.

    Args:
        points: Knob -> KPI dict (with ``fill_rate``) of the runs so far; runs added here
            are stored in it too.
        target: Fill rate to match.
        run_knob: Simulates the policy at a knob in (0, 1) and returns its KPIs (``None``:
            no new runs, interpolate on ``points`` only).
        expand: Runs allowed beyond the grid (``step`` probit units past its end) while
            every fill rate lies below (or above) the target.
        refine: Runs allowed at the knob interpolated (probit scale) between the bracketing
            runs, until one lies within ``tolerance`` of the target.
        tolerance: Fill-rate distance that ends refinement.
        step: Probit distance of one expansion step.
        values: KPIs interpolated (linearly in fill rate) between the bracketing runs.

    Returns:
        ``reached`` (bool), ``status`` (one sentence), ``knob`` (interpolated),
        ``knob_a``/``knob_b``/``weight`` (the bracketing runs' knobs and the weight of
        ``knob_b`` in the interpolation), ``fill_lo``/``fill_hi`` (bracketing runs),
        ``best_fill``/``best_knob``/``best_inventory`` (the run with the highest fill
        rate), ``n_runs`` (new runs), and each of ``values`` (NaN when not reached).
    """
    new_runs = 0

    def add(k: float) -> None:
        nonlocal new_runs
        if k not in points:
            points[k] = run_knob(k)
            new_runs += 1

    n_expand, n_refine = expand, refine
    saturated = False
    failed = ""  # why an extension run could not be planned (the knob's last usable value)
    while True:
        br = _bracket(points, target)
        fills = {k: points[k]["fill_rate"] for k in points}
        if br is None:
            lo_k, hi_k = min(points), max(points)
            up = all(f < target for f in fills.values())
            if run_knob is None or n_expand <= 0:
                edge = max(fills, key=fills.get) if up else min(fills, key=fills.get)
                best, where = fills[edge], ("highest" if up else "lowest")
                why = ("" if run_knob is None else failed if failed else
                       " after extending the knob until the fill rate stopped moving"
                       if n_expand <= 0 and saturated else
                       f" ({expand} extension runs; raise backtest.tuning.expand)")
                return {"reached": False, "n_runs": new_runs, "knob": np.nan,
                        "knob_a": np.nan, "knob_b": np.nan, "weight": np.nan,
                        "fill_lo": min(fills.values()), "fill_hi": max(fills.values()),
                        **_best(points),
                        "status": (f"unreachable: {where} fill rate reached {best:.4f} "
                                   f"(knob {edge:.6g}) {'<' if up else '>'} target "
                                   f"{target:.4f}{why}"),
                        **{v: np.nan for v in values}}
            edge = hi_k if up else lo_k
            k = float(special.ndtr(_probit(edge) + (step if up else -step)))
            k = min(max(k, 1.0 - KNOB_CAP), KNOB_CAP)
            if k in points:  # the knob saturated at its cap
                n_expand, saturated = 0, True
                continue
            try:
                add(k)
            except InfeasibleProblemError as err:
                # an extreme knob (e.g. a forecast shifted far into its tail) the plan cannot
                # be solved at: the extension stops at the last knob that planned
                n_expand, saturated = 0, True
                failed = f"; beyond knob {edge:.6g} the plan could not be solved ({err})"
                continue
            n_expand -= 1
            if abs(points[k]["fill_rate"] - points[edge]["fill_rate"]) < tolerance / 4:
                n_expand, saturated = 0, True  # the fill rate no longer moves with the knob
            continue
        a, b = br
        fa, fb = fills[a], fills[b]
        close = min(abs(fa - target), abs(fb - target)) <= tolerance
        if close or run_knob is None or n_refine <= 0 or a == b:
            break
        w = (target - fa) / (fb - fa)
        k = float(special.ndtr(_probit(a) + w * (_probit(b) - _probit(a))))
        if k in points or not (min(a, b) < k < max(a, b)):
            break
        add(k)
        n_refine -= 1
    w = 0.0 if fb == fa else (target - fa) / (fb - fa)
    knob = float(special.ndtr(_probit(a) + w * (_probit(b) - _probit(a)))) if a != b else a
    out = {"reached": True, "n_runs": new_runs, "knob": knob, "knob_a": a, "knob_b": b,
           "weight": float(w), "fill_lo": min(fa, fb), "fill_hi": max(fa, fb),
           **_best(points),
           "status": (f"matched: interpolated between knob {a:.6g} (fill {fa:.4f}) and "
                      f"{b:.6g} (fill {fb:.4f})" if a != b else f"matched at knob {a:.6g}")}
    for v in values:
        va, vb = points[a].get(v, np.nan), points[b].get(v, np.nan)
        out[v] = float(va + w * (vb - va))
    return out


def _pct_less(value: float, ref: float) -> float:
    """How much lower ``value`` is than ``ref``, in % of ``|ref|`` (positive = lower)."""
    return float(100.0 * (ref - value) / abs(ref)) if ref and np.isfinite(ref) else np.nan


def _pct_above(value: float, ref: float) -> float:
    """How much higher ``value`` is than ``ref``, in % of ``|ref|`` (the gap to a bound)."""
    return float(100.0 * (value - ref) / abs(ref)) if ref and np.isfinite(ref) else np.nan


def matched_table(rows: list[dict]) -> pd.DataFrame:
    """Add the comparisons to classic and the gaps to the oracle and true-distribution
    policies (same target) to per-(policy, target) rows from :func:`match_target`.

    Columns added: ``{kpi}_reduction_vs_classic_pct`` (% less than classic, for average
    inventory, total and controllable cost), ``avg_inventory_gap_to_{bound}_pct`` (% above
    the bound) and ``controllable_cost_gap_to_{bound}`` (cost above the bound, in money: a
    bound's controllable cost can be near 0, so a % would say little).
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    above = lambda v, ref: float(v - ref)  # noqa: E731
    specs = [("classic", col, f"{col}_reduction_vs_classic_pct", _pct_less)
             for col in ("avg_inventory", "total_cost", "controllable_cost")]
    for ref in BOUNDS:
        specs += [(ref, "avg_inventory", f"avg_inventory_gap_to_{ref}_pct", _pct_above),
                  (ref, "controllable_cost", f"controllable_cost_gap_to_{ref}", above)]
    for ref, col, name, how in specs:
        vals = []
        for r in df.to_dict("records"):
            match = df[(df["policy"] == ref) & (df["target"] == r["target"])]
            refv = float(match[col].iloc[0]) if len(match) else np.nan
            vals.append(how(r[col], refv) if r["reached"] and np.isfinite(refv) else np.nan)
        if any(np.isfinite(vals)):
            df[name] = vals
    return df


def warmup_periods(value, win: Window) -> int:
    """Periods left out of the matched-service comparison: an int, or ``auto`` = the longest
    planned replenishment lead time of a store (before it, no decision can reach a shelf),
    capped at half the window so a window shorter than twice the lead time still compares
    its second half (:func:`warmup_note` says so)."""
    t_len = len(win.periods)
    if value in (None, "auto"):
        stores = ~win.routes.is_dc
        return min(int(win.routes.lead[stores].max(initial=0)), t_len // 2)
    w = int(value)
    if not 0 <= w < t_len:
        raise ValueError(f"backtest.warmup={value}: must leave at least one of the "
                         f"{t_len} periods (0 <= warmup < {t_len})")
    return w


def warmup_note(value, win: Window) -> str | None:
    """A warning when ``warmup=auto`` had to be capped below the longest lead time."""
    if value not in (None, "auto"):
        return None
    lead = int(win.routes.lead[~win.routes.is_dc].max(initial=0))
    if lead <= len(win.periods) // 2:
        return None
    return (f"the window ({len(win.periods)} periods) is shorter than twice the longest store "
            f"lead time ({lead}): warm-up capped at {len(win.periods) // 2}, so the matched "
            "comparison still includes periods no decision could reach; use a longer window "
            "(data.split.test_periods) for decision claims")


def resolve_target(t, main_table: pd.DataFrame, points: Mapping[str, float]
                   ) -> tuple[str, float]:
    """(label, fill rate) of one ``backtest.matched.targets`` entry (``points``: each
    tunable policy's highest fill rate on its grid)."""
    fills = main_table.set_index("policy")["fill_rate"]
    if t == "common":
        if not points:
            raise ValueError("backtest.matched.targets: 'common' needs a tunable policy")
        return "common", float(min(points.values()))
    if isinstance(t, str) and not t.replace(".", "", 1).isdigit():
        if t not in fills.index:
            raise ValueError(f"backtest.matched.targets: {t!r} is not a simulated policy "
                             f"({list(fills.index)}) nor 'common'")
        return t, float(fills[t])
    v = float(t)
    if not 0 < v < 1:
        raise ValueError(f"backtest.matched.targets: fill rate {v} not in (0, 1)")
    return f"{v:g}", v


def _with_interval(matched: pd.DataFrame, col: str) -> pd.Series:
    """``12.3 [8.1, 15.0]`` per row (the bootstrap interval when there is one)."""
    lo, hi = matched.get(f"{col}_lo"), matched.get(f"{col}_hi")
    out = []
    for i, v in enumerate(matched[col].to_numpy(float)):
        if not np.isfinite(v):
            out.append("")
        elif lo is not None and np.isfinite(lo.iloc[i]) and np.isfinite(hi.iloc[i]):
            out.append(f"{v:.1f} [{lo.iloc[i]:.1f}, {hi.iloc[i]:.1f}]")
        else:
            out.append(f"{v:.1f}")
    return pd.Series(out, index=matched.index)


def matched_view(matched: pd.DataFrame) -> pd.DataFrame:
    """The matched-service table a planner reads: one row per target and policy; costs and
    inventory at the target, % less than classic (positive = better), % above the oracle,
    the true-distribution policy and the frontier (the gaps to the bounds), each % with its
    bootstrap interval when there is one; an unreached target shows the highest fill the
    policy reached (``best_fill``)."""
    if matched.empty:
        return matched
    names = {"target": "target", "target_fill_rate": "fill", "policy": "policy",
             "reached": "reached", "best_fill": "best_fill", "avg_inventory": "inventory",
             "total_cost": "total_cost", "controllable_cost": "ctrl_cost",
             "avg_inventory_reduction_vs_classic_pct": "inv_vs_classic_%",
             "total_cost_reduction_vs_classic_pct": "total_vs_classic_%",
             "controllable_cost_reduction_vs_classic_pct": "ctrl_vs_classic_%",
             "avg_inventory_gap_to_oracle_pct": "inv_gap_oracle_%",
             "controllable_cost_gap_to_oracle": "ctrl_gap_oracle",
             "avg_inventory_gap_to_true_distribution_pct": "inv_gap_truth_%",
             "controllable_cost_gap_to_true_distribution": "ctrl_gap_truth",
             "avg_inventory_gap_to_attainable_distribution_pct": "inv_gap_attainable_%",
             "controllable_cost_gap_to_attainable_distribution": "ctrl_gap_attainable",
             "avg_inventory_gap_to_frontier_pct": "inv_gap_frontier_%",
             "controllable_cost_gap_to_frontier": "ctrl_gap_frontier"}
    view = matched[[c for c in names if c in matched]].rename(columns=names)
    for col, short in names.items():
        if short.endswith("%") and col in matched:
            view[short] = _with_interval(matched, col)
    view["fill"] = view["fill"].round(4)
    if "best_fill" in view:
        view["best_fill"] = view["best_fill"].round(4)
    return view


def _target_label(label: str, fill: float) -> str:
    if str(label).replace(".", "", 1).isdigit():
        return f"{100 * fill:g}% fill"
    if label == "common":
        return f"the highest fill rate every policy reaches ({fill:.3f})"
    return f"{label}'s fill rate ({fill:.3f})"


def answer_lines(matched: pd.DataFrame, policy: str = "stockcast",
                 reference: str = "classic") -> list[str]:
    """One sentence per target about ``policy``: its inventory against ``reference`` with
    the bootstrap interval, its controllable cost, its ratios to the true-distribution and
    the attainable-distribution policies; what it is when the reference cannot reach the target (with the highest fill
    the reference reached), or that ``policy`` cannot; and the gap between the
    true-distribution policy and the frontier where both ran."""
    if matched.empty or policy not in set(matched["policy"]):
        return []
    lines = []
    for label, part in matched.groupby("target", sort=False):
        rows = part.set_index("policy")
        fill = float(part["target_fill_rate"].iloc[0])
        where = _target_label(str(label), fill)
        me = rows.loc[policy]
        ref = rows.loc[reference] if reference in rows.index else None
        truth = rows.loc["true_distribution"] if "true_distribution" in rows.index else None
        attain = (rows.loc["attainable_distribution"]
                  if "attainable_distribution" in rows.index else None)
        if not bool(me["reached"]):
            line = f"at {where}: {policy} {_unreached(me, fill)}"
        else:
            inv = float(me["avg_inventory"])
            col = f"avg_inventory_reduction_vs_{reference}_pct"
            if ref is not None and bool(ref["reached"]) and np.isfinite(me.get(col, np.nan)):
                v = float(me[col])
                ci = _ci(me, col)
                line = (f"at {where} {policy} holds {abs(v):.1f}%{ci} "
                        f"{'less' if v >= 0 else 'more'} inventory than {reference}")
                ccol = f"controllable_cost_reduction_vs_{reference}_pct"
                if np.isfinite(me.get(ccol, np.nan)):
                    c = float(me[ccol])
                    line += (f" at {abs(c):.1f}%{_ci(me, ccol)} "
                             f"{'lower' if c >= 0 else 'higher'} controllable cost")
            else:
                line = f"at {where} {policy} holds {inv:,.0f} units"
                if ref is not None and _below(ref, fill):
                    line += (f"; {reference} cannot reach it (highest fill "
                             f"{float(ref['best_fill']):.3f}, holding "
                             f"{float(ref['best_inventory']):,.0f} units there)")
                elif ref is not None:
                    line += f"; {reference} {_unreached(ref, fill)}"
            if truth is not None and bool(truth["reached"]) and policy != "true_distribution":
                line += (f"; {inv / float(truth['avg_inventory']):.2f}x the inventory of the "
                         "true-distribution policy")
            if (attain is not None and bool(attain["reached"])
                    and policy != "attainable_distribution"):
                line += (f"; {inv / float(attain['avg_inventory']):.2f}x the attainable-"
                         "distribution policy's")
        lines.append(line)
        front = rows.loc["frontier"] if "frontier" in rows.index else None
        if (front is not None and truth is not None and bool(front["reached"])
                and bool(truth["reached"])):
            g = float(truth.get("avg_inventory_gap_to_frontier_pct", np.nan))
            if np.isfinite(g):
                lines.append(f"  at {where} the true-distribution policy holds {abs(g):.1f}%"
                             f"{_ci(truth, 'avg_inventory_gap_to_frontier_pct')} "
                             f"{'more' if g >= 0 else 'less'} than the frontier")
    return lines


def _below(row, fill: float) -> bool:
    """An unreached target above every fill rate the policy reached (not one its
    lowest knob already overshoots)."""
    lowest = row.get("fill_lo", np.nan)
    return not (np.isfinite(lowest) and float(lowest) > fill)


def _unreached(row, fill: float) -> str:
    """Why a policy has no point at ``fill``: too low a fill rate even at its highest
    knob, or (a target below its curve) too high a one even at its lowest."""
    if _below(row, fill):
        return f"cannot reach it (highest fill {float(row['best_fill']):.3f})"
    return (f"serves more even at its lowest knob (lowest fill "
            f"{float(row['fill_lo']):.3f}): no point at this target")


def _ci(row, col: str) -> str:
    """`` [lo, hi]`` of a % column, in the sense the sentence states it (the interval of
    ``|value|``: negated when the value is negative)."""
    lo, hi = row.get(f"{col}_lo", np.nan), row.get(f"{col}_hi", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    if float(row.get(col, 0.0)) < 0:
        lo, hi = -hi, -lo
    return f" [{lo:.1f}, {hi:.1f}]"


@dataclass
class MatchedService:
    """What :func:`matched_service` found.

    Attributes:
        matched: One row per target and policy (:func:`match_target`'s columns, then
            :func:`matched_table`'s comparisons).
        curves: Every run of the tunable policies: ``policy``, ``knob`` and its KPIs.
        targets: ``(label, fill rate)`` of each target, in order.
    """

    matched: pd.DataFrame
    curves: pd.DataFrame
    targets: list[tuple[str, float]]


def matched_service(kpis_at: Callable[[str, float], dict], evaluated: pd.DataFrame,
                    grids: Mapping[str, Sequence[float]], targets: Sequence, *,
                    untuned: Mapping[str, str] | None = None, expand: int = 3,
                    refine: int = 2, tolerance: float = 0.002,
                    only: Sequence[str] | None = None) -> MatchedService:
    """Tune every policy of ``grids`` to each target fill rate (module docstring).

    Args:
        kpis_at: ``(policy, knob) -> KPIs`` over the compared periods (simulates).
        evaluated: The main runs' KPIs over the compared periods, one row per policy
            (``policy``, ``fill_rate``, ...), in report order.
        grids: Knobs each tunable policy is simulated at first (its main-run knob
            included); policies of ``evaluated`` not in it are not tuned.
        targets: ``backtest.matched.targets`` entries (:func:`resolve_target`).
        untuned: What each untuned policy is, for its status line (default "fixed rule").
        expand: Runs allowed beyond a grid (:func:`match_target`).
        refine: Runs allowed at interpolated knobs.
        tolerance: Fill-rate distance that ends refinement.
        only: Search these tunable policies only (the others' grids still resolve the
            ``common`` target): what one worker of a parallel search runs.
    """
    untuned = dict(untuned or {})
    points = {n: {float(k): kpis_at(n, float(k)) for k in sorted(set(grid))}
              for n, grid in grids.items()}
    reach = {n: max(kp["fill_rate"] for kp in pts.values()) for n, pts in points.items()}
    main = evaluated.set_index("policy")
    rows, resolved = [], []
    for entry in targets:
        label, target = resolve_target(entry, evaluated, reach)
        resolved.append((label, target))
        for n in main.index:
            if n not in points:
                k = main.loc[n]
                ok = bool(k["fill_rate"] >= target - 1e-9)
                rows.append({"policy": n, "target": label, "target_fill_rate": target,
                             "reached": ok, "knob": np.nan, "knob_a": np.nan,
                             "knob_b": np.nan, "weight": np.nan, "fill_lo": k["fill_rate"],
                             "fill_hi": k["fill_rate"], "best_fill": float(k["fill_rate"]),
                             "best_knob": np.nan,
                             "best_inventory": float(k["avg_inventory"]), "n_runs": 0,
                             "status": (f"{untuned.get(n, 'fixed rule')}, not tuned: fill "
                                        f"{k['fill_rate']:.4f}" + ("" if ok else " < target")),
                             **{v: float(k[v]) for v in MATCHED_VALUES}})
                continue
            if only is not None and n not in only:
                continue
            res = match_target(points[n], target, lambda k, n=n: kpis_at(n, k),
                               expand=int(expand), refine=int(refine),
                               tolerance=float(tolerance))
            rows.append({"policy": n, "target": label, "target_fill_rate": target, **res})
    curves = pd.DataFrame([{"policy": n, "knob": k, **kp} for n, pts in points.items()
                           for k, kp in sorted(pts.items())])
    return MatchedService(matched_table(rows), curves, resolved)


#: (reference, KPI, column stem, how): the comparisons :func:`bootstrap_intervals` bounds.
COMPARISONS = (
    ("classic", "avg_inventory", "avg_inventory_reduction_vs_classic_pct", "less"),
    ("classic", "controllable_cost", "controllable_cost_reduction_vs_classic_pct", "less"),
    ("true_distribution", "avg_inventory", "avg_inventory_gap_to_true_distribution_pct",
     "above"),
    ("attainable_distribution", "avg_inventory",
     "avg_inventory_gap_to_attainable_distribution_pct", "above"),
    ("frontier", "avg_inventory", "avg_inventory_gap_to_frontier_pct", "above"),
)


def _pct(how: str, value: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "less":
            return 100.0 * (ref - value) / np.abs(ref)
        return 100.0 * (value - ref) / np.abs(ref)


def _series_vector(series_at: Callable[[str, float | None], dict], row: dict,
                   kpi: str) -> np.ndarray | None:
    """Per-series ``kpi`` of a matched row: the bracketing runs' vectors interpolated with
    the row's weight (the main run for an untuned policy)."""
    if not bool(row["reached"]):
        return None
    a, b, w = row.get("knob_a"), row.get("knob_b"), row.get("weight")
    if a is None or not np.isfinite(a):
        return np.asarray(series_at(row["policy"], None)[kpi], dtype=float)
    va = np.asarray(series_at(row["policy"], float(a))[kpi], dtype=float)
    if b is None or not np.isfinite(b) or float(b) == float(a):
        return va
    vb = np.asarray(series_at(row["policy"], float(b))[kpi], dtype=float)
    return va + float(w) * (vb - va)


def bootstrap_intervals(matched: pd.DataFrame,
                        series_at: Callable[[str, float | None], dict], *,
                        n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                        comparisons=COMPARISONS) -> pd.DataFrame:
    """Percentile bootstrap intervals over item-locations for the matched comparisons.

    The unit is a series of the simulation (a store item-location or a DC item-node):
    each replicate draws ``n`` series with replacement (the same draw for every policy and
    target), sums each policy's per-series values at its matched point (the bracketing
    runs interpolated with the matched weight: the knobs stay those that matched the
    network fill rate) and recomputes the % difference of the sums. Adds ``<column>_lo``
    and ``<column>_hi`` for every comparison column of ``matched``
    (:data:`COMPARISONS`).

    Args:
        matched: :func:`matched_table` rows (with ``knob_a``, ``knob_b``, ``weight``).
        series_at: ``(policy, knob) -> per-series values`` (``knob`` ``None`` = the main
            run; :func:`stockcast.simulation.engine.per_series` keys).
        n_boot: Replicates.
        level: Coverage of the interval.
        seed: Seed of the draws.
    """
    out = matched.copy()
    if out.empty:
        return out
    first = None
    for r in out.to_dict("records"):
        first = _series_vector(series_at, r, "avg_inventory")
        if first is not None:
            break
    if first is None:
        return out
    n = len(first)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=int(n_boot))
    tail = 100.0 * (1.0 - float(level)) / 2.0
    rows = out.to_dict("records")
    for ref, kpi, col, how in comparisons:
        if col not in out:
            continue
        lo, hi = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        for i, r in enumerate(rows):
            if not np.isfinite(r.get(col, np.nan)):
                continue
            match = [q for q in rows if q["policy"] == ref and q["target"] == r["target"]]
            if not match:
                continue
            v = _series_vector(series_at, r, kpi)
            vr = _series_vector(series_at, match[0], kpi)
            if v is None or vr is None:
                continue
            pct = _pct(how, counts @ v, counts @ vr)
            pct = pct[np.isfinite(pct)]
            if len(pct):
                lo[i], hi[i] = np.percentile(pct, [tail, 100.0 - tail])
        out[f"{col}_lo"], out[f"{col}_hi"] = lo, hi
    return out
