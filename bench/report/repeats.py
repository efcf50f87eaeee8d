"""Repeats folded into one figure (median and range), and whether two figures differ beyond the
run-to-run spread: the report calls a smaller difference "not significant" (pyperf's habit)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from bench.record import Results, Run, held_searches, searched
from bench.report.numbers import FmtKind, fmt
from bench.report.runs import Measure

SIGNIFICANT = 0.10  # single runs: a difference within 10% of the larger value is not significant
MIN_SAMPLES = 20  # a percentile of fewer messages is shown, marked, but not compared
RULE_OVERLAP = "ranges overlap"
RULE_SINGLE = f"single run, within {SIGNIFICANT:.0%}"


@dataclass(frozen=True)
class Stat:
    """A figure over repeats: median, min, max and how many runs gave it."""

    median: float
    lo: float
    hi: float
    n: int


def usable(runs: Iterable[Run]) -> list[Run]:
    """The runs to take figures from: the ok ones, or (when every repeat failed) what the failed ones kept."""
    runs = list(runs)
    return [r for r in runs if r.ok] or runs


def fold(runs: Iterable[Run], key: Measure, every: bool = False) -> Stat | None:
    """Median and range of a figure over the usable runs (`every`: failed runs included)."""
    return of([v for r in (list(runs) if every else usable(runs)) if (v := key(r)) is not None])


def of(values: list[float]) -> Stat | None:
    """Median and range of some values (None: there are none)."""
    return Stat(statistics.median(values), min(values), max(values), len(values)) if values else None


def held_capacity(data: Results, target: str, scenario: str | None = None) -> Stat | None:
    """The capacity held, in deliveries/s: the one the report quotes (`searched`), within the range of every
    search that held (bench-full searches an ablation's capacities several times); None when none held."""
    cap = searched(data, target, scenario)
    held = [c.deliveries_per_s(c.passed) for c in held_searches(data, target, scenario) if c.passed is not None]
    if not (cap and cap.held and cap.passed is not None):
        return None
    return Stat(cap.deliveries_per_s(cap.passed), min(held), max(held), len(held))


def capacity_stat(data: Results, target: str, scenario: str | None = None) -> Stat | None:
    """The searched capacity as a figure, deliveries/s: `held_capacity`, else the search's indicative edge alone (0
    when nothing passed); None when the target's capacity was not searched."""
    if held := held_capacity(data, target, scenario):
        return held
    if (cap := searched(data, target, scenario)) is None:
        return None
    value = cap.deliveries_per_s(cap.passed) or 0.0
    return Stat(value, value, value, 1)


def differ(a: Stat, b: Stat) -> str | None:
    """None when a and b differ beyond run-to-run spread, else the rule that calls it not significant."""
    if a.n > 1 and b.n > 1:
        return None if (a.hi < b.lo or b.hi < a.lo) else RULE_OVERLAP
    top = max(abs(a.median), abs(b.median))
    return None if abs(a.median - b.median) > SIGNIFICANT * top else RULE_SINGLE


def fmt_stat(kind: FmtKind, s: Stat | None) -> str:
    return fmt(kind, s.median if s else None)


def fmt_range(kind: FmtKind, s: Stat | None) -> str:
    """"[min–max]" when several runs gave the figure, else ""."""
    return f"[{fmt(kind, s.lo)}–{fmt(kind, s.hi)}]" if s and s.n > 1 else ""


def fmt_spread(kind: FmtKind, s: Stat | None) -> str:
    """The median with its range when there are repeats: "12.3 [11.0–14.1]"."""
    return " ".join(x for x in (fmt_stat(kind, s), fmt_range(kind, s)) if x)
