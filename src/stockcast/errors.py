"""Errors raised on bad input: each names the table, column, rule and rows at fault."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Issue:
    """One failed check on one table."""

    table: str
    column: str | None
    rule: str
    message: str
    rows: list = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = ""
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" … (+{len(self.rows) - 10} more)" if len(self.rows) > 10 else ""
            rows = f" [rows: {shown}{more}]"
        return f"{where}: {self.rule}: {self.message}{rows}"


class StockcastError(Exception):
    """Base class for errors the user can fix by changing input or config."""


class DataValidationError(StockcastError, ValueError):
    """Input data broke one or more rules; carries every issue found, not only the first."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        lines = "\n".join(f"  - {i}" for i in self.issues)
        super().__init__(f"{len(self.issues)} data validation issue(s):\n{lines}")


class InfeasibleProblemError(StockcastError, ValueError):
    """An optimization problem has no feasible plan; names the constraint and items."""
