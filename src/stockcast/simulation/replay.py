"""Replay policies against one world: every policy faces the same demand, economics and
realised lead times (common random numbers).

:class:`Replay` builds each policy from its spec (:class:`~stockcast.simulation.policies.
PolicySpec`) at a service knob, simulates it over the window
(:func:`~stockcast.simulation.engine.simulate`) and keeps each (policy, knob) run, so the
main runs, the tuning grids and the matched-service search never simulate a run twice.
:func:`kpi_tables` reports runs overall, per location and per echelon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from stockcast.simulation.engine import SimTrace, kpis, simulate
from stockcast.simulation.policies import PolicySpec
from stockcast.simulation.world import Window


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
