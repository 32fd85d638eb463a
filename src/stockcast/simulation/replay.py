"""Replay policies against one world: every policy faces the same demand, economics and
realised lead times (common random numbers).

:class:`Replay` builds each policy from its spec (:class:`~stockcast.simulation.policies.
PolicySpec`) at a service knob, simulates it over the window
(:func:`~stockcast.simulation.engine.simulate`) and keeps each (policy, knob) run, so the
main runs, the tuning grids and the matched-service search never simulate a run twice.
:meth:`Replay.in_parallel` runs searches in forked worker processes and keeps every run
they simulated, so the search that follows reads them instead of simulating them again
(each run depends only on its policy and knob: the result is the same as one process's).
:func:`kpi_tables` reports runs overall, per location and per echelon.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from stockcast.simulation.engine import SimTrace, kpis, simulate
from stockcast.simulation.matching import MatchedService, matched_service
from stockcast.simulation.policies import OptimizerSpec, PolicySpec
from stockcast.simulation.world import Window

#: ``(replay, task)`` of the running :meth:`Replay.in_parallel` call: the forked workers
#: inherit them (a task is a closure, which a worker could not be sent otherwise).
_TASKS: list[tuple[Replay, Callable[[Replay], object]]] = []


def _run_task(i: int) -> dict:
    """In a worker: run task ``i``; the runs it simulated that the worker did not have."""
    replay, task = _TASKS[i]
    before = set(replay.traces)
    task(replay)
    return {k: v for k, v in replay.traces.items() if k not in before}


@dataclass
class Replay:
    """Policies of one window, simulated on demand and kept.

    Args:
        world: The window.
        policies: Policy name -> spec, in report order.
        forecasts: Policy name -> its forecaster's table per review origin (policies that
            plan with forecasts; :func:`stockcast.simulation.forecasts.by_origin`).
    """

    world: Window
    policies: Mapping[str, PolicySpec]
    forecasts: Mapping[str, Mapping[int, pd.DataFrame]] = field(default_factory=dict)
    traces: dict[tuple[str, float | None], SimTrace] = field(default_factory=dict, repr=False)

    def trace(self, name: str, knob: float | None) -> SimTrace:
        """The run of policy ``name`` at service knob ``knob`` (simulated once)."""
        key = (name, None if knob is None else float(knob))
        if key not in self.traces:
            spec, w = self.policies[name], self.world
            policy = spec.build(w, key[1], self.forecasts.get(name))
            self.traces[key] = simulate(w.demand, policy, w.lead_real, w.econ, w.on_hand0,
                                        w.unmet, w.review, w.supplier_leads, w.elasticity,
                                        spec.capacity(w))
        return self.traces[key]

    def main(self) -> dict[str, SimTrace]:
        """Every policy at its main-run knob (``spec.service``)."""
        return {n: self.trace(n, spec.service) for n, spec in self.policies.items()}

    def kpis_at(self, name: str, knob: float, start: int = 0) -> dict:
        """KPIs of a run over the periods from ``start``."""
        return kpis(self.trace(name, knob), start=start)

    def in_parallel(self, tasks: Sequence[Callable[[Replay], object]], n_jobs: int) -> None:
        """Run ``tasks`` (each simulates through this replay: :meth:`trace`) in up to
        ``n_jobs`` forked worker processes, longest first in the order given, and keep
        every run they simulated. One job, one task or no ``fork`` (not on Linux) runs them
        here, one after another. A task's error is raised here."""
        if n_jobs <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            for task in tasks:
                task(self)
            return
        global _TASKS
        _TASKS = [(self, t) for t in tasks]
        try:
            with ProcessPoolExecutor(min(n_jobs, len(tasks)),
                                     mp_context=multiprocessing.get_context("fork")) as pool:
                for runs in pool.map(_run_task, range(len(tasks))):
                    for key, trace in runs.items():
                        self.traces.setdefault(key, trace)
        finally:
            _TASKS = []

    def matched(self, evaluated: pd.DataFrame, grids: Mapping[str, Sequence[float]],
                targets: Sequence, *, start: int = 0, n_jobs: int = 1,
                **options) -> MatchedService:
        """Inventory at matched service over the periods from ``start``
        (:func:`~stockcast.simulation.matching.matched_service` with ``options``).

        With ``n_jobs`` > 1 the runs are simulated in worker processes first
        (:meth:`in_parallel`): every grid run, then each policy's search of the targets
        (the optimizer policies first: each of their runs plans every review); the search
        here then reads every run it needs and returns what one process would.
        """
        def kpis_at(r: Replay) -> Callable[[str, float], dict]:
            return lambda n, k: r.kpis_at(n, k, start)

        if n_jobs > 1:
            slow = sorted(grids, key=lambda n: not isinstance(self.policies[n], OptimizerSpec))
            runs = [(n, float(k)) for n in slow for k in grids[n]
                    if (n, float(k)) not in self.traces]
            self.in_parallel([lambda r, n=n, k=k: r.trace(n, k) for n, k in runs], n_jobs)
            self.in_parallel([lambda r, n=n: matched_service(kpis_at(r), evaluated, grids,
                                                             targets, only=[n], **options)
                              for n in slow], n_jobs)
        return matched_service(kpis_at(self), evaluated, grids, targets, **options)


def kpi_tables(traces: Mapping[str, SimTrace], world: Window
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """KPIs of each policy's run over the whole window: overall, per location and per
    echelon (``n_series``)."""
    table = pd.DataFrame([{"policy": n, **kpis(tr)} for n, tr in traces.items()])
    locs, ech = world.keys["location_id"].to_numpy(), world.echelon
    by_loc = pd.DataFrame([{"policy": n, "location_id": loc,
                            "echelon": ech[locs == loc][0], **kpis(tr, locs == loc)}
                           for n, tr in traces.items() for loc in pd.unique(locs)])
    by_ech = pd.DataFrame([{"policy": n, "echelon": e, "n_series": int((ech == e).sum()),
                            **kpis(tr, ech == e)}
                           for n, tr in traces.items() for e in pd.unique(ech)])
    return table, by_loc, by_ech
