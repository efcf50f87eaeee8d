"""What a bench run prints at its end: one line per scenario and target, then the answer the report opens
with, in plain words and as its headline table (the report's path follows, from bench.run.cli)."""

from __future__ import annotations

import textwrap

from bench.record import Results, Run, edge_runs, measures_capacity, searched
from bench.report.answer import answer
from bench.report.capacity import ramp_capacity
from bench.report.numbers import FmtKind
from bench.report.repeats import Stat, fmt_stat, fold
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    P95,
    Measure,
    flag_names,
    scenario_names,
    target_names,
)
from bench.report.searched import held_note, per_member
from bench.report.steps import short_step

FIGURES: tuple[tuple[Measure, FmtKind], ...] = ((DPS, "rate"), (P95, "ms"), (LOSS, "pct"), (COST, "us"))


def summary_group(data: Results, scenario: str, target: str) -> tuple[list[Run], str]:
    """The runs a one-line summary shows: the single step; a searched capacity's passing edge; a ramp's capacity
    step (else its first); a sweep's first step that lost messages (else its last)."""
    steps = data.steps_of(scenario, target)
    if not steps:
        return [], "not run"
    if found := searched(data, target, scenario):
        edge = "below the first probe" if found.passed is None else f"{per_member(found.passed)} msg/s per member"
        return edge_runs(data, found), f"searched SLO capacity {edge} ({held_note(found)})"
    if any(measures_capacity(r) for r in data.runs_of(scenario, target)):
        cap = ramp_capacity(data, scenario, target)
        if cap.state in ("at", "beyond"):
            return cap.runs, f"SLO capacity at {cap.label}"
        first = data.runs_of(scenario, target, steps[0])
        return first, f"over the SLO from the first step ({short_step(first[0])})"
    if len(steps) == 1:
        return data.runs_of(scenario, target, steps[0]), ""
    groups = [data.runs_of(scenario, target, s) for s in steps]
    lossy = next((g for g in groups if (fold(g, LOSS) or Stat(0, 0, 0, 0)).median > 0), None)
    measured = [g for g in groups if any(r.ledger.expected for r in g)] or groups
    g = lossy or measured[-1]
    return g, f"{'first loss at' if lossy else 'largest step measured:'} {short_step(g[0])}"


def print_summary(data: Results) -> None:
    """One line per (scenario, target) that ran: deliveries/s, RTT p95, loss, server cost, flags;
    a target that ran nothing at all (an interrupted run) gets a "not run" line."""
    targets, scenarios = target_names(data), scenario_names(data)
    tw = max([len(str(t)) for t in targets] + [6])
    sw = max([len(str(s)) for s in scenarios] + [8])
    print(f"{'scenario':<{sw}}  {'target':<{tw}}  {'deliveries/s':>12}  {'rtt p95 ms':>10}  {'loss %':>7}  "
          f"{'server us/dlv':>13}  flags")
    ran_anything = {t for t in targets if any(data.steps_of(sc, t) for sc in scenarios)}
    for sc in scenarios:
        for t in targets:
            if t in ran_anything and not data.steps_of(sc, t):
                continue  # not in this target's suite (e.g. the Redis targets run the ramp and the outage)
            g, note = summary_group(data, sc, t)
            figures = [fmt_stat(kind, fold(g, path)) if g else "—" for path, kind in FIGURES]
            flag = ", ".join(x for x in (note, flag_names(g)) if x)
            print(f"{sc!s:<{sw}}  {t!s:<{tw}}  {figures[0]:>12}  {figures[1]:>10}  {figures[2]:>7}  "
                  f"{figures[3]:>13}  {flag}")
    if not scenarios:
        print(f"(no runs; status {data.status or 'unknown'})")


def print_answer(data: Results) -> None:
    """The plain answer, a paragraph per question, then the headline table without its notes."""
    found = answer(data)
    if not found.rows:
        return
    print()
    for q in found.questions:
        text = " ".join("".join(part for part, _ in s) for s in q.sentences)
        print(textwrap.fill(f"{q.asks} {text}", width=110, subsequent_indent="  "))
    heads = ("target", "capacity (deliveries/s)", "server CPU/delivery", "a member stops reading", "largest message",
             "first loss")
    rows = [(r.target + (" *" if r.patched else ""), r.capacity.text + "".join(f" [{f}]" for f in r.capacity.flags),
             r.cost.text, r.slow.text, r.largest.text, r.first_loss.text) for r in found.rows]
    widths = [max(len(x) for x in col) for col in zip(heads, *rows, strict=True)]
    print()
    for line in (heads, *rows):
        print("  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    if found.patched:
        print("* on this project's fixes to its stack: " + "; ".join(
            f"{m} ({', '.join(targets)})" for m, targets in found.patched.items()))
