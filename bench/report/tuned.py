"""Each stack tuned (CONTRACT.md "Tuned"): per stock target that ran, its tuned targets (their record's
`tunes`), each a documented change a team could copy, with its sustained capacity and its server µs per
delivery and RTT p95 at a fixed load (the `steady` scenario, the same offered load for all), and each
figure's change over stock, "not significant" inside the runs' spread (bench.report.repeats.differ): bench-full
searches each capacity here several times (bench.targets.ABLATION_SEARCHES), so a capacity has a range too."""

from __future__ import annotations

from dataclasses import dataclass

from bench.record import Results
from bench.report.numbers import fmt
from bench.report.repeats import Stat, differ, fmt_spread, fold, held_capacity
from bench.report.runs import COST, P95, info, offered_deliveries, ran

FIXED = "steady"  # the fixed load the costs are compared at


@dataclass
class TunedRow:
    target: str
    change: str  # "stock", or what the tuned target changes
    over: str  # the target it changes, which its gains are measured against ("" for stock)
    capacity: str
    capacity_gain: str
    cost: str
    cost_gain: str
    p95: str
    p95_gain: str


@dataclass
class Tuned:
    stock: str
    fixed_load: str  # where the costs were taken
    rows: list[TunedRow]


def lineage(data: Results, target: str) -> list[str]:
    """What a tuned target is made over, nearest first (a record from before lineages: its `tunes` alone)."""
    found = info(data, target)
    return found.lineage or ([found.tunes] if found.tunes else [])


def over(data: Results, target: str) -> str:
    """The target a tuned one is measured against: the nearest it is made over that ran here."""
    return next((t for t in lineage(data, target) if t in ran(data)), "")


def tuned_of(data: Results, stock: str) -> list[str]:
    """The tuned targets that ran on `stock`: each change on it, and each further change on those (a tuned
    target may tune another), each followed by what builds on it: one change added at a time. A change made
    over a tuned target that did not run reads against the nearest that did."""
    out = []
    for t in ran(data):
        if t != stock and over(data, t) == stock:
            out += [t, *tuned_of(data, t)]
    return out


def change_made(data: Results, target: str) -> str:
    """What a tuned target changes, as its record describes it, and the contract's rules it breaks if any."""
    made, breaks = info(data, target).about.removeprefix("tuned: "), info(data, target).breaks
    return f"{made}; breaks the contract, so not a result: {breaks}" if breaks else made


def best_configuration(data: Results, stock: str) -> tuple[str, float] | None:
    """Of `stock` and its tuned targets, the one that held the most (not one that breaks the contract), and
    what it held in deliveries/s; None when none held."""
    held = [(t, found.median) for t in [stock, *tuned_of(data, stock)]
            if not info(data, t).breaks and (found := held_capacity(data, t)) and found.median]
    return max(held, key=lambda h: h[1]) if held else None


def change(stock: Stat | None, tuned: Stat | None) -> str:
    """"+16%", "not significant", or "—" when either side was not measured."""
    if stock is None or tuned is None or not stock.median:
        return "—"
    if differ(stock, tuned):
        return "not significant"
    return f"{100 * (tuned.median - stock.median) / stock.median:+.0f}%"


def fixed_load(data: Results, target: str) -> str:
    """"steady: 200 members in rooms of 10, 2 msg/s each (4,000 deliveries/s offered)"."""
    runs = data.runs_of(FIXED, target)
    if not runs:
        return f"{FIXED} did not run"
    p = runs[0].params
    return (f"{FIXED}: {p.users:,} members in rooms of {p.room_size}, {p.rate:g} msg/s each "
            f"({fmt('rate', offered_deliveries(runs[0]))} deliveries/s offered)")


def tuned_view(data: Results) -> list[Tuned]:
    """A table per stock target that has tuned targets in this run: stock first, then each tuned target, its
    figures against the target it changes (stock, or the tuned target it adds a change to)."""
    out = []
    for stock in (t for t in ran(data) if not lineage(data, t)):
        tuned = tuned_of(data, stock)
        if not tuned:
            continue
        figures = {t: (held_capacity(data, t), fold(data.runs_of(FIXED, t), COST), fold(data.runs_of(FIXED, t), P95))
                   for t in [stock, *tuned]}
        rows = []
        for t, (cap, cost, p95) in figures.items():
            made_over = over(data, t) if t != stock else ""
            base = figures[made_over] if made_over else (None, None, None)
            rows.append(TunedRow(t, change_made(data, t) if made_over else "stock", made_over,
                                 fmt_spread("rate", cap) if cap else "not held",
                                 change(base[0], cap) if made_over else "",
                                 fmt_spread("us", cost) if cost else "—", change(base[1], cost) if made_over else "",
                                 fmt_spread("ms", p95) if p95 else "—", change(base[2], p95) if made_over else ""))
        out.append(Tuned(stock, fixed_load(data, stock), rows))
    return out
