"""Replaying policy specs against one world: each (policy, knob) is simulated once, every
policy faces the same world, and the KPI tables split by location and echelon."""

import numpy as np
import pytest

from stockcast.simulation.engine import kpis
from stockcast.simulation.policies import ClassicSpec, OracleSpec
from stockcast.simulation.replay import Replay, kpi_tables
from stockcast.simulation.world import build_window
from tests.simulation.conftest import tiny_panel, tiny_supply


def test_replay_simulates_each_run_once_and_splits_kpis():
    world = build_window(tiny_panel(swing=3.0), 8, 11, tiny_supply(), None, 0.0, 0)
    replay = Replay(world, {"classic": ClassicSpec(service=0.95, grid=[0.8]),
                            "oracle": OracleSpec()})
    main = replay.main()
    assert list(main) == ["classic", "oracle"]
    assert replay.trace("classic", 0.95) is main["classic"]  # kept, not re-simulated
    assert replay.kpis_at("classic", 0.95, start=1) == kpis(main["classic"], start=1)
    low = replay.trace("classic", 0.8)
    assert low.orders.sum() < main["classic"].orders.sum()
    assert set(replay.traces) == {("classic", 0.95), ("oracle", None), ("classic", 0.8)}
    assert kpis(main["oracle"])["fill_rate"] >= kpis(main["classic"])["fill_rate"] - 1e-9
    table, by_loc, by_ech = kpi_tables(main, world)
    assert list(table["policy"]) == ["classic", "oracle"]
    assert set(by_loc["location_id"]) == {"S1", "S2", "DC1"}
    ech = by_ech.set_index(["policy", "echelon"])
    assert ech.loc[("classic", "store"), "n_series"] == 2
    assert ech.loc[("classic", "dc"), "n_series"] == 1
    assert np.isnan(ech.loc[("classic", "dc"), "fill_rate"])
    assert (ech.loc[("classic", "store"), "avg_inventory"]
            + ech.loc[("classic", "dc"), "avg_inventory"]) == pytest.approx(
        table.set_index("policy").loc["classic", "avg_inventory"])
