"""Report rows (one per target) and their rendering as a text table and as markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Row", "fmt_seconds", "markdown_table", "text_table"]


def fmt_seconds(seconds: float) -> str:
    """``1.23 s`` or ``45.6 ms`` or ``7.8 µs``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


@dataclass(frozen=True)
class Row:
    """One target: what was measured, against what, the measured figure and the limit.

    ``op`` is ``">="`` (the measured figure must reach ``limit``) or ``"<="`` (it must
    not exceed it); ``None`` makes an informational row without a verdict.
    """

    target: str
    name: str
    library: str
    baseline: str
    measured: float
    limit: float | None = None
    op: str | None = None
    unit: str = "x"
    runs: int = 0
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """Whether the target is met (None for an informational row)."""
        if self.op is None or self.limit is None:
            return None
        if self.op == ">=":
            return self.measured >= self.limit
        return self.measured <= self.limit

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL`` or ``info``."""
        passed = self.passed
        if passed is None:
            return "info"
        return "PASS" if passed else "FAIL"

    def _figure(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.2f}x"
        return f"{value:.1f} {self.unit}"

    def cells(self) -> list[str]:
        """The row's cells, in the order of ``HEADERS``."""
        target = (
            "" if self.op is None or self.limit is None else f"{self.op} {self._figure(self.limit)}"
        )
        return [
            self.target,
            self.name,
            self.library,
            self.baseline,
            self._figure(self.measured),
            target.replace(">=", "≥").replace("<=", "≤"),
            self.verdict,
            str(self.runs) if self.runs else "",
        ]


HEADERS = ["#", "benchmark", "userdir", "baseline", "measured", "target", "result", "runs"]


def _notes(rows: Sequence[Row], bullet: str) -> list[str]:
    return [f"{bullet}{row.target}: {row.note}" for row in rows if row.note]


def text_table(rows: Sequence[Row]) -> str:
    """A fixed-width table for the terminal, then the rows' notes."""
    cells = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    notes = _notes(rows, "  ")
    return "\n".join(
        [
            line(HEADERS),
            rule,
            *(line(c) for c in cells[1:]),
            *(["", "Notes:", *notes] if notes else []),
        ]
    )


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table in GitHub markdown, then the rows' notes as a list."""

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    rule = "|" + "|".join("---" for _ in HEADERS) + "|"
    notes = _notes(rows, "- ")
    table = [line(HEADERS), rule, *(line(row.cells()) for row in rows)]
    return "\n".join([*table, *(["", *notes] if notes else [])])
