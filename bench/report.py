"""What a benchmark hands back, the table printed at the end and the JSON written beside it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_MET = "PASS"
TARGET_MISSED = "MISS"
NO_TARGET = "-"


class BenchmarkBroken(Exception):
    """The benchmark could not measure what it claims (e.g. the handler answered non-200)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number; `target` is an upper bound when there is one."""

    name: str
    value: float
    unit: str
    target: float | None = None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return NO_TARGET
        return TARGET_MET if self.value <= self.target else TARGET_MISSED

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "target": self.target, "verdict": self.verdict}


@dataclass(slots=True)
class BenchmarkResult:
    """A benchmark's figures, with the details behind them (samples, conditions) for the JSON."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, target: float | None = None) -> Figure:
        if not math.isfinite(value):
            raise BenchmarkBroken(f"{self.name}: {name} is not a finite number ({value})")
        figure = Figure(name, value, unit, target)
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {"figures": {f.name: f.as_json() for f in self.figures}, "details": self.details}


def format_value(value: float, unit: str) -> str:
    if unit in ("x", "ratio"):
        return f"{value:.2f} x"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def render_table(results: list[BenchmarkResult]) -> str:
    header = ("benchmark", "figure", "measured", "target", "result")
    rows = [header]
    for result in results:
        for figure in result.figures:
            target = "" if figure.target is None else "<= " + format_value(figure.target, figure.unit)
            rows.append(
                (result.name, figure.name, format_value(figure.value, figure.unit), target, figure.verdict)
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Numbers read best right-aligned; names left-aligned.
    aligned_right = {2, 3}
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in aligned_right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
