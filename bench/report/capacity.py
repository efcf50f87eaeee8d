"""What a target can take: its capacity at the SLO on a ramp (websocket-shootout's method: the largest
step whose round-trip p95 stays under the SLO with no loss) and its server CPU per delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bench.record import Results, Run, at_a_capacity, claimed_cores, measures_capacity, ramp_edge, slo_failures
from bench.report.loss import causes
from bench.report.numbers import fmt, ratio
from bench.report.repeats import Stat, differ, fmt_spread, fmt_stat, fold, usable
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    P95,
    cautions,
    first_line,
    offered_deliveries,
    param,
    scenario_names,
    target_names,
)
from bench.report.steps import describe_step, where

MIN_DELIVERIES = 1000
MIN_CPU_S = 0.1


@dataclass
class RampCapacity:
    """A stepped ramp's capacity as the report shows it (the searched one is bench.record.Capacity)."""

    scenario: str
    target: str
    slo: float | None
    state: Literal["not run", "below", "at", "beyond"] = "not run"  # beyond: the ramp never crossed the SLO
    label: str = ""
    runs: list[Run] = field(default_factory=list)
    stopped_label: str = ""
    stopped_why: str = ""

    @property
    def offered(self) -> float:
        """Offered deliveries/s at capacity; 0 below the first step."""
        return max((offered_deliveries(r) or 0.0 for r in self.runs), default=0.0)


def why_over_slo(run: Run, slo: float) -> str | None:
    """Why a run does not count as within the SLO (bench.record.slo_failures decides), or None when it does."""
    failures = slo_failures(run, slo)
    if not failures:
        return None
    if not run.ok:
        return "the run failed: " + first_line(run.failure)
    p95, loss = P95(run), LOSS(run)
    if p95 is None:
        return "no round trip completed"
    said = {
        "p95": f"RTT p95 {fmt('ms', p95)} ms over the SLO ({fmt('ms', slo)} ms)",
        "loss": f"loss {fmt('pct', loss)}% ({causes(run)})",
        "in flight": f"{run.ledger.in_flight:,} deliveries still in flight after the drain",
        "fell behind": f"{fmt('rate', run.arrived_deliveries_per_s)} deliveries/s arrived of "
                       f"{fmt('rate', run.owed_deliveries_per_s)} due",
        "latency grew": "the round trip grew through the window",
        "server cpu": f"the servers' CPU at {fmt('pct1', run.server.cpu_pct_mean)}% of {run.server.cores} core(s), "
                      f"its ceiling {fmt('int', run.params.cpu_ceiling_pct)}%",
        "physics": f"{claimed_cores(run) or 0:.2f} cores claimed of {run.server.cores}: not delivered as measured",
    }
    return "; ".join(said[f] for f in failures if f in said)


def ramp_capacity(data: Results, scenario: str, target: str) -> RampCapacity:
    """The ramp's capacity (bench.record.ramp_edge), with what stopped it, in words."""
    slo = param(data, scenario, "slo_p95_ms")
    cap = RampCapacity(scenario, target, slo)
    if slo is None or not data.runs_of(scenario, target):
        return cap
    held, stopped = ramp_edge(data, scenario, target)
    if held:
        cap.label, cap.runs = describe_step(held[0]), held
    cap.state = "beyond" if not stopped else "at" if held else "below"
    if stopped:
        cap.stopped_label = describe_step(stopped[0])
        cap.stopped_why = next((w for r in stopped if (w := why_over_slo(r, slo))), "")
    return cap


def ramp_scenarios(data: Results) -> list[str]:
    return [s for s in scenario_names(data) if any(measures_capacity(r) for r in data.runs_of(s))]


def capacity_text(cap: RampCapacity) -> str:
    if cap.state == "not run":
        return "not run"
    if cap.state == "below":
        return f"below the first step ({cap.stopped_label})"
    more = " (the ramp never crossed the SLO: at least this)" if cap.state == "beyond" else ""
    return f"{cap.label} ({fmt_stat('rate', fold(cap.runs, DPS))} deliveries/s){more}"


@dataclass
class Costs:
    """Server µs/delivery per target at one step of a scenario, with the runs each figure came from."""

    at: str
    stats: dict[str, Stat]
    runs: dict[str, list[Run]]


def timed(runs: list[Run]) -> bool:
    """Whether server CPU per delivery means something here: enough deliveries to amortise the server's fixed
    work (connections, /stats) and enough CPU time for its 10 ms clock tick not to matter."""
    return all(r.server.delta is not None and r.server.delta.deliveries >= MIN_DELIVERIES
               and r.server.delta.cpu_seconds >= MIN_CPU_S for r in usable(runs))


def costs(data: Results, scenario: str) -> Costs:
    """Server µs/delivery per target at the first step every target ran (the same offered load for all), for
    the targets whose runs there are `timed`."""
    ran = [t for t in target_names(data) if data.runs_of(scenario, t)]
    common = [s for s in data.steps_of(scenario) if all(data.runs_of(scenario, t, s) for t in ran)]
    if not ran or not common or any(at_a_capacity(r) for r in data.runs_of(scenario)):  # each at its own load
        return Costs("", {}, {})
    runs = {t: data.runs_of(scenario, t, common[0]) for t in ran}
    stats = {t: s for t in ran if timed(runs[t]) and (s := fold(runs[t], COST))}
    at = where(runs[ran[0]][0]) if len(data.steps_of(scenario)) > 1 else scenario
    return Costs(at, stats, runs)


def cost_sentence(data: Results, scenario: str) -> str | None:
    """"steady: fastapi 20.1 µs [19.8–20.5], django 52 µs (2.6×)": cheapest first, × = times the cheapest."""
    c = costs(data, scenario)
    if not c.stats:
        return None
    order = sorted(c.stats, key=lambda t: c.stats[t].median)
    best = c.stats[order[0]]
    parts = []
    for t in order:
        rule = differ(best, c.stats[t]) if t != order[0] else None
        tail = "" if t == order[0] else f" (not significant, {rule})" if rule else \
            f" ({ratio(best.median, c.stats[t].median)})"
        parts.append(f"{t} {fmt_spread('us', c.stats[t])} µs{tail}{cautions(c.runs[t])}")
    return f"{c.at}: " + ", ".join(parts)
