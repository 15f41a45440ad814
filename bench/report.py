"""Tables with a target and a PASS/MISS verdict beside each measured figure.

A :class:`Table` renders as aligned plain text (the terminal) or as Markdown
(``--markdown``, for docs/performance.md). Checked rows are also collected as
:class:`Verdict` objects for the summary at the end of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

TARGET_COLUMNS = ("target", "result")


@dataclass(frozen=True)
class Target:
    """``value op limit`` must hold, e.g. ``Target("<=", 1.5, "x")``."""

    op: Literal["<=", ">="]
    limit: float
    unit: str = ""

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {fmt(self.limit)}{self.unit}"


@dataclass(frozen=True)
class Verdict:
    table: str
    label: str
    value: float
    unit: str
    target: Target

    @property
    def passed(self) -> bool:
        return self.target.met(self.value)

    @property
    def shortfall(self) -> str:
        """How far a miss is from the target, as a factor (e.g. "1.30x over")."""
        if self.passed or math.isnan(self.value) or self.target.limit == 0:
            return ""
        if self.target.op == "<=":
            return f"{self.value / self.target.limit:.2f}x over"
        return f"{self.value / self.target.limit:.2f}x of the minimum"


@dataclass
class Table:
    """A titled table; each row lists its cells in ``columns`` order."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        """A row without a target (its target and result cells are left blank)."""
        missing = len(self.columns) - len(cells)
        self.rows.append([*cells, *([""] * missing)])

    def check(self, *cells: str, label: str, value: float, target: Target, unit: str = "") -> bool:
        """A row whose last two cells are ``target`` and PASS/MISS for ``value``."""
        verdict = Verdict(self.title, label, value, unit or target.unit, target)
        self.verdicts.append(verdict)
        self.rows.append([*cells, str(target), "PASS" if verdict.passed else "MISS"])
        return verdict.passed

    def check_many(self, *cells: str, checks: list[tuple[str, str, float, Target]]) -> bool:
        """Like :meth:`check` with several targets: ``(short name, label, value, target)``.

        The target cell reads e.g. ``p50 <= 20 ms, p99 <= 100 ms`` and the result
        cell ``PASS, MISS`` in the same order.
        """
        targets, results = [], []
        for short, label, value, target in checks:
            verdict = Verdict(self.title, label, value, target.unit, target)
            self.verdicts.append(verdict)
            targets.append(f"{short} {target}")
            results.append("PASS" if verdict.passed else "MISS")
        self.rows.append([*cells, ", ".join(targets), ", ".join(results)])
        return all(r == "PASS" for r in results)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self, markdown: bool = False) -> str:
        return _markdown(self) if markdown else _text(self)


def cost_table(title: str, versus: str) -> Table:
    """Request types by size: rate, latency, server CPU per request, cost vs ``versus``."""
    columns = ["N", "request", "req/s", "p50", "p99", "server CPU/req"]
    return Table(title, [*columns, f"cost vs {versus}", "target", "result"])


def fmt(value: float, digits: int = 3) -> str:
    """A short human number: 3 significant digits, thousands separated."""
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}g}"
    return text if "e" not in text else f"{value:.2f}"


def ms(seconds: float) -> str:
    return f"{fmt(seconds * 1000)} ms"


def us(seconds: float) -> str:
    return f"{fmt(seconds * 1e6)} µs"


def ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _text(table: Table) -> str:
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    rule = "  ".join("-" * w for w in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [table.title, "=" * len(table.title), line(table.columns), rule]
    out += [line(row) for row in table.rows]
    out += [f"  * {note}" for note in table.notes]
    return "\n".join(out)


def _markdown(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [f"#### {table.title}", "", line(table.columns)]
    out.append("|" + "|".join("---" for _ in table.columns) + "|")
    out += [line(row) for row in table.rows]
    if table.notes:
        out.append("")
        out += [f"- {note}" for note in table.notes]
    return "\n".join(out)


def summary(tables: list[Table], markdown: bool = False) -> str:
    """One line per checked figure: PASS/MISS, and by how much a miss misses."""
    result = Table("Summary", ["table", "figure", "measured", "target", "result", "miss by"])
    for table in tables:
        for v in table.verdicts:
            cells = [v.table, v.label, f"{fmt(v.value)}{v.unit}", str(v.target)]
            result.rows.append([*cells, "PASS" if v.passed else "MISS", v.shortfall])
    return result.render(markdown)
