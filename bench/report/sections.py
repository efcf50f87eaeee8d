"""The report's middle sections as what templates/sections.html draws: the charts, capacity at the SLO,
and the seed's claims tested."""

from __future__ import annotations

from dataclasses import dataclass

from bench.record import Results
from bench.report.capacity import RampCapacity, capacity_text, ramp_capacity, ramp_scenarios
from bench.report.charts import Figure, sweep_charts, timeline_chart
from bench.report.claims.base import FAILS, HOLDS, OTHER, UNMEASURED, UNSETTLED
from bench.report.numbers import FmtKind, fmt
from bench.report.repeats import fmt_stat, fold
from bench.report.runs import COST, DPS, P95, Measure, flag_notes, param, scenario_names
from bench.report.steps import sweep_axis

CAPACITY_FIGURES: tuple[tuple[Measure, FmtKind], ...] = ((DPS, "rate"), (P95, "ms"), (COST, "us"))

SWEPT = {"load": "latency and throughput against load", "size": "loss and latency against message size",
         "room_size": "latency and cost against room size"}


@dataclass
class Charts:
    sweeps: list[tuple[str, list[Figure]]]  # a heading per multi-step scenario, and its charts
    timelines: list[Figure]
    still: list[str]  # scenarios that delivered nothing to plot over time


def charts_view(data: Results, targets: list[str], col: dict) -> Charts | None:
    scenarios = scenario_names(data)
    if not scenarios:
        return None
    sweeps = [(f"{sc}: {SWEPT[sweep_axis(data, sc)]}", sweep_charts(data, sc, targets, col))
              for sc in scenarios if len(data.steps_of(sc)) > 1]
    flowing = [sc for sc in scenarios if any(r.timeline for r in data.runs_of(sc))]
    return Charts(sweeps, [timeline_chart(data, sc, targets, col) for sc in flowing],
                  [sc for sc in scenarios if sc not in flowing])


@dataclass
class CapacityRow:
    target: str
    capacity: str
    flags: list[tuple[str, str]]
    figures: list[str]  # offered deliveries/s, deliveries/s, RTT p95 ms, server µs/delivery
    next_step: str


def capacity_row(cap: RampCapacity) -> CapacityRow:
    at = cap.state in ("at", "beyond")
    figures = [fmt("rate", cap.offered) if at else "—"]
    figures += [fmt_stat(kind, fold(cap.runs, key)) if at else "—" for key, kind in CAPACITY_FIGURES]
    nxt = (f"{cap.stopped_label}: {cap.stopped_why}" if cap.stopped_why
           else "the ramp ended under the SLO" if cap.state == "beyond" else "")
    return CapacityRow(cap.target, cap.label if at else capacity_text(cap), flag_notes(cap.runs), figures, nxt)


def capacity_view(data: Results, targets: list[str]) -> list[tuple[str, str, list[CapacityRow]]]:
    """Per ramp scenario whose capacity was not searched (searched.py shows those): its SLO and a row per
    target."""
    searched = {c.scenario for c in data.capacities}
    return [(sc, fmt("ms", param(data, sc, "slo_p95_ms")), [capacity_row(ramp_capacity(data, sc, t)) for t in targets])
            for sc in ramp_scenarios(data) if sc not in searched]


VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", OTHER: "other", UNMEASURED: "unmeasured",
                 UNSETTLED: "unsettled"}
