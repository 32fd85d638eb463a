"""The champion gate: a challenger takes the alias only by beating the champion on the
primary metric, computed on the same rows (same series, origins and horizons) in the same run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class GateDecision:
    """What the gate decided and why."""

    metric: str
    challenger_version: str | int
    challenger_score: float
    champion_version: str | int | None
    champion_score: float | None
    promoted: bool
    reason: str
    rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    metric: str,
    challenger_version: str | int,
    challenger_score: float,
    champion_version: str | int | None,
    champion_score: float | None,
    *,
    greater_is_better: bool = False,
    rows: int | None = None,
    promote: bool = True,
) -> GateDecision:
    """Promote on strict improvement only.

    Args:
        metric: The primary metric's name (e.g. ``test_pinball``).
        challenger_version: The evaluated version.
        challenger_score: Its score on the rows both models forecast (or on its own rows when
            there is no champion).
        champion_version: The current alias holder (``None``: no champion yet).
        champion_score: The champion's score on the same rows (``None``: the champion could
            not forecast any of them).
        greater_is_better: Direction of the metric.
        rows: Rows both were scored on.
        promote: ``False`` reports the decision without acting on it.
    """

    def decision(promoted: bool, reason: str) -> GateDecision:
        if promoted and not promote:
            promoted, reason = False, reason + " (promotion disabled)"
        return GateDecision(metric, challenger_version, float(challenger_score),
                            champion_version, champion_score, promoted, reason, rows)

    if champion_version is None:
        return decision(True, "no champion yet")
    if str(champion_version) == str(challenger_version):
        return decision(False, "already the champion")
    if champion_score is None:
        return decision(False, "champion cannot forecast any of the evaluated rows (other series, "
                        "dataset or horizon): not comparable, alias kept")
    wins = challenger_score > champion_score if greater_is_better else challenger_score < champion_score
    return decision(
        wins,
        f"challenger {'beats' if wins else 'does not beat'} champion on {metric} "
        f"({rows} common forecast rows)",
    )
