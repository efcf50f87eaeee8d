"""Capacity as the bench searched it (Results.capacities): one number per target with its bracket, what
broke at the edge, and the probes that found it. A searched ramp's runs are probes in search order, not a
rising grid, so the step logic of capacity.py holds only for results without capacities (format 1)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.record import (
    Capacity,
    Results,
    Run,
    again_failures,
    broke_again,
    edge_runs,
    held_again,
    holds_again,
    probe_runs,
    searched,
    searches_of,
    within_tolerance,
)
from bench.report.numbers import fmt
from bench.report.repeats import fmt_stat, fold, held_capacity
from bench.report.runs import COST, P95, flag_notes


def held_note(cap: Capacity) -> str:
    """"held 15 s", or why the number is only indicative."""
    if cap.held:
        return f"held {cap.hold_s:g} s"
    if cap.hold_s:
        return f"indicative, not held: no {cap.hold_s:g} s hold at or below it passed"
    return "indicative, not held: from short probes only"


def capacity_number(cap: Capacity) -> str:
    """"≈ 1,200 deliveries/s" (the confirmed pass), "≥ …" when nothing failed up to the search's cap (and it
    did not hold at its CPU ceiling: converged)."""
    if cap.passed is None:
        return "below the first probe"
    more = "≥ " if cap.failed is None and not cap.converged else ""
    return f"{more}{fmt('rate', cap.deliveries_per_s(cap.passed))} deliveries/s"


def per_member(rate: float) -> str:
    """msg/s per member to three significant figures: a bracket ±10% wide must not round to one number."""
    return f"{rate:,.3g}" if rate < 1000 else fmt("rate", rate)


def bracket(cap: Capacity) -> str:
    """"[1,200, 1,320) deliveries/s = [0.6, 0.66) msg/s per member"."""
    edge = lambda v, show, none: show(v) if v is not None else none  # noqa: E731
    dps = lambda rate: fmt("rate", cap.deliveries_per_s(rate))  # noqa: E731
    return (f"[{edge(cap.passed, dps, '0')}, {edge(cap.failed, dps, '∞')}) deliveries/s = "
            f"[{edge(cap.passed, per_member, '0')}, {edge(cap.failed, per_member, '∞')}) msg/s per member")


def again_note(data: Results, cap: Capacity) -> str:
    """Whether the capacity held again in a run of its own: "held again for 20 s (p95 57.0 ms, 0% lost)"."""
    return held_again_note(held_again(data, cap))


def held_again_note(runs: list[Run]) -> str:
    """What the runs holding one capacity again (in the order they ran) said of it, run by run: held, failed on
    a machine running true, or failed on a slow or taken CPU (no test of it: it ran once more, if it could)."""
    broke = {id(r) for r in broke_again(runs)}
    return "; ".join(run_again_note(run, id(run) in broke, last=i + 1 == len(runs)) for i, run in enumerate(runs))


def run_again_note(run: Run, broke: bool, last: bool) -> str:
    """One run's part of `held_again_note`; `broke`: it failed the capacity (on a machine running true)."""
    failed, seen = again_failures(run), seen_again(run)
    if not failed:
        return f"held again for {run.params.window:g} s ({seen})"
    if broke:
        return f"failed when held again for {run.params.window:g} s ({seen}; {', '.join(failed)})"
    slow = f"failed on a slow or taken CPU when held again ({seen}; {', '.join(failed)}{speed(run)})"
    return f"{slow}: no test of a capacity measured on a CPU running true" if last else f"{slow}, so it ran once more"


def seen_again(run: Run) -> str:
    """"p95 57.0 ms, 0% lost": what a run holding a capacity again saw."""
    return f"p95 {fmt('ms', run.rtt_ms.p95)} ms, {fmt('pct', run.ledger.loss_pct)}% lost"


def speed(run: Run) -> str:
    """", its CPU at 61% of its speed" when the speed probe read the servers' CPU slow (else other work took it)."""
    return f", its CPU at {fmt('int', run.noise.server_cpu_speed_pct)}% of its speed" if run.noise.slow else ""


def searches_note(data: Results, cap: Capacity) -> str:
    """"the median of 3 searches (3 held, 4,140–4,380)" when the capacity was searched more than once."""
    searches = searches_of(data, cap.target, cap.scenario)
    if len(searches) < 2:
        return ""
    if not (held := held_capacity(data, cap.target, cap.scenario)):
        return f"the first of {len(searches)} searches, none of which held"
    return f"the median of {len(searches)} searches ({held.n} held, {fmt('rate', held.lo)}–{fmt('rate', held.hi)})"


def converged_note(cap: Capacity) -> str:
    """Whether the search converged, and how when its bracket is wider than the tolerance
    (bench/run/capacity_search.py `Bracket.converged`)."""
    within = f"within ±{cap.tolerance:.0%}"
    if not cap.converged:
        return f"not converged {within}"
    if within_tolerance(cap.passed, cap.failed, cap.tolerance):
        return f"converged {within}"
    if any(p.role == "recheck" and p.rate == cap.passed and p.passed for p in cap.probes):
        return "converged: held twice, its p95 above half the SLO"
    return f"converged: held near its CPU ceiling, a load {cap.tolerance:.0%} higher would pass it"


def state(data: Results, cap: Capacity) -> str:
    """Whether the number is the server's: converged within the tolerance, and not set by the load generator;
    whether it held again in a run of its own, and the searches it is the median of."""
    bits = [held_note(cap), converged_note(cap)]
    bits += [note for note in (again_note(data, cap), searches_note(data, cap)) if note]
    if cap.client_bound:
        bits.append("client-bound at the edge: the load generator ran out of CPU first, so this is a floor, "
                    "not the server's capacity")
    return "; ".join(bits)


@dataclass
class ProbeRow:
    rate: str
    deliveries: str
    role: str
    passed: bool
    p95: str
    why: str


@dataclass
class SearchRow:
    target: str
    number: str
    bracket: str
    failed_first: str
    state: str
    flags: list[tuple[str, str]]
    p95: str  # RTT p95 ms and server µs per delivery at the passing edge
    cost: str
    probes: list[ProbeRow]
    verdict: str


def search_row(data: Results, cap: Capacity) -> SearchRow:
    runs = probe_runs(data, cap)
    probes = [ProbeRow(per_member(p.rate), fmt("rate", cap.deliveries_per_s(p.rate)), p.role, p.passed,
                       fmt("ms", r.rtt_ms.p95) if r else "—", "; ".join(p.why))
              for p, r in zip(cap.probes, runs, strict=True)]
    edge = edge_runs(data, cap)
    flags = flag_notes(edge)
    if cap.client_bound and not any(name == "client-bound" for name, _ in flags):
        flags.insert(0, ("client-bound", "at the edge"))
    return SearchRow(cap.target, capacity_number(cap), bracket(cap), ", ".join(cap.failed_first) or "—",
                     state(data, cap), flags, fmt_stat("ms", fold(edge, P95)), fmt_stat("us", fold(edge, COST)), probes,
                     cap.verdict)


@dataclass
class SearchedScenario:
    name: str
    slo: str  # ms
    ceiling: str  # the search's CPU ceiling, % of the servers' cores
    again_ceiling: str  # the ceiling its capacities were held again under ("": none held again in this run)
    rows: list[SearchRow]


def search_view(data: Results, targets: list[str]) -> list[SearchedScenario]:
    """Per searched scenario: its SLO, its runs' CPU ceilings and a row per target, in the report's target order."""
    out = []
    for sc in dict.fromkeys(c.scenario for c in data.capacities):
        caps = [c for t in targets if (c := searched(data, t, sc))]
        runs = data.runs_of(sc)
        again = {r.params.cpu_ceiling_pct for r in data.runs if holds_again(r) and r.params.rate_at == sc}
        out.append(SearchedScenario(sc, fmt("ms", caps[0].slo_p95_ms),
                                    fmt("int", runs[0].params.cpu_ceiling_pct) if runs else "—",
                                    "–".join(fmt("int", c) for c in sorted(again)),
                                    [search_row(data, c) for c in caps]))
    return out
