"""Running CVXPY solvers: one place that times the solve, reads the status and fails loudly."""

from __future__ import annotations

import time
from typing import Any

import cvxpy as cp

from stockcast.errors import StockcastError

#: Statuses accepted as a plan.
OK_STATUSES = (cp.OPTIMAL,)


class SolverFailedError(StockcastError, RuntimeError):
    """The solver stopped without a trustworthy answer (error, time limit, inaccurate)."""


class NotDPPError(StockcastError, TypeError):
    """A parametrized problem is not DPP: CVXPY would recompile it on every solve."""


def require_dpp(problem: cp.Problem, what: str = "problem") -> None:
    """Check that ``problem`` follows the DPP rules, so its compilation can be reused.

    A problem built with ``cp.Parameter`` objects is compiled once only when it is DPP (every
    parameter enters affinely, never multiplied by another parameter-dependent term);
    otherwise CVXPY silently re-canonicalizes it at each solve, which at network scale
    costs more than the solve itself.

    Raises:
        NotDPPError: Naming the problem and the rule it breaks (not DCP at all, or DCP but
            not DPP), with the parameters involved.
    """
    if problem.is_dcp(dpp=True):
        return
    names = ", ".join(sorted({p.name() for p in problem.parameters()})) or "none"
    if not problem.is_dcp(dpp=False):
        raise NotDPPError(f"{what}: the CVXPY problem is not DCP (not convex as written); "
                          f"parameters: {names}")
    raise NotDPPError(
        f"{what}: the CVXPY problem is DCP but not DPP, so every solve would recompile it: "
        "a parameter multiplies another parameter or enters a non-affine expression "
        f"(parameters: {names}); make those products constants or new parameters")


def problem_size(problem: cp.Problem) -> tuple[int, int]:
    """``(n_variables, n_constraints)`` as scalar counts."""
    m = problem.size_metrics
    n_cons = int(m.num_scalar_eq_constr + m.num_scalar_leq_constr)
    return int(m.num_scalar_variables), n_cons


def run_solver(
    problem: cp.Problem,
    solver: str,
    options: dict[str, Any] | None = None,
    *,
    what: str = "problem",
) -> dict[str, Any]:
    """Solve ``problem`` and return its statistics; the status is checked by the caller.

    Args:
        problem: A compiled-or-not CVXPY problem (DPP problems reuse their compilation).
        solver: CVXPY solver name (``CLARABEL``, ``HIGHS``...).
        options: Solver options passed to :meth:`cvxpy.Problem.solve`.
        what: Name used in error messages.

    Returns:
        ``solver``, ``status``, ``objective``, ``solve_time_s`` (solver's own time),
        ``setup_time_s`` (CVXPY compilation or parameter refresh), ``wall_time_s``,
        ``iterations``, ``n_variables``, ``n_constraints``.

    Raises:
        SolverFailedError: When the solver errors out, or stops with a status other than
            optimal, infeasible or unbounded (e.g. ``optimal_inaccurate``, time limit).
    """
    t0 = time.perf_counter()
    try:
        problem.solve(solver=solver, **(options or {}))
    except cp.error.SolverError as err:
        raise SolverFailedError(f"{what}: solver {solver} failed: {err}") from err
    wall = time.perf_counter() - t0
    status = problem.status
    stats = problem.solver_stats
    n_var, n_con = problem_size(problem)
    out = {
        "solver": solver,
        "status": status,
        "objective": float(problem.value) if status in OK_STATUSES else None,
        "solve_time_s": float(stats.solve_time) if stats and stats.solve_time is not None else wall,
        "setup_time_s": float(getattr(problem, "compilation_time", None) or 0.0),
        "wall_time_s": wall,
        "iterations": int(stats.num_iters) if stats and stats.num_iters is not None else None,
        "n_variables": n_var,
        "n_constraints": n_con,
    }
    infeasible = (cp.INFEASIBLE, cp.UNBOUNDED, cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED_INACCURATE)
    if status not in OK_STATUSES and status not in infeasible:
        raise SolverFailedError(
            f"{what}: solver {solver} stopped with status {status!r}; no plan is returned. "
            "Tighten the data scale or pass solver options (config.solver_options)."
        )
    return out
