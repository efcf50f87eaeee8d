"""How far this bench's capacities, and the headline's ratios, repeat the bench before it (Results.repeated,
written by the run from bench/compare/repeat.py): the rule is ±15%, and a figure outside it says why it moved."""

from __future__ import annotations

from dataclasses import dataclass

from bench.record import Moved, Repeated, Results

WITHIN_PCT = 15.0


@dataclass(frozen=True)
class RepeatRow:
    name: str
    old: str
    new: str
    change: str  # "+12%"
    within: bool
    full_speed: str  # the move at full CPU speed, "–" when not known
    why: str


@dataclass(frozen=True)
class RepeatView:
    summary: str  # "5 of 7 capacities and 1 of 2 ratios between the stacks within ±15% of …"
    rows: list[RepeatRow]


def within(m: Moved) -> bool:
    return abs(m.change_pct) <= WITHIN_PCT


def row(m: Moved, figure: str) -> RepeatRow:
    return RepeatRow(m.name, figure.format(m.old), figure.format(m.new), f"{m.change_pct:+.0f}%", within(m),
                     "–" if m.full_speed_pct is None else f"{m.full_speed_pct:+.0f}%", m.why)


def summary(r: Repeated) -> str:
    text = f"{sum(map(within, r.capacities))} of {len(r.capacities)} capacities"
    if r.ratios:
        text += f" and {sum(map(within, r.ratios))} of {len(r.ratios)} ratios between the stacks"
    about = ", ".join(x for x in (f"started {r.started}" if r.started else "", f"code {r.code}" if r.code else "")
                      if x)
    return f"{text} within ±{WITHIN_PCT:.0f}% of the bench before ({r.against}{'; ' + about if about else ''})"


def repeat_view(data: Results) -> RepeatView | None:
    r = data.repeated
    if r is None:
        return None
    return RepeatView(summary(r), [row(m, "{:,.0f}") for m in r.capacities] + [row(m, "{:.2f}×") for m in r.ratios])
