"""The headline table the report opens with: per target, how much it takes (capacity at the SLO), what a
delivery costs the server at that load, what a slow member does to its room, the largest message delivered,
and where it first lost messages and why; each figure naming the section that proves it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.record import Capacity as SearchedCapacity
from bench.record import Results, Run, broke_again, edge_runs, held_again, holds_again, searched
from bench.report.capacity import costs, ramp_capacity, ramp_scenarios
from bench.report.claims.buffers import growth_per_slow_member
from bench.report.loss import causes, first_losses, lossy
from bench.report.numbers import fmt, fmt_bytes
from bench.report.repeats import Stat, capacity_stat, fmt_stat, fold
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    flag_notes,
    info,
    offered_deliveries,
    scenario_names,
    stack_of,
    timeline,
)
from bench.report.searched import (
    again_note,
    bracket,
    capacity_number,
    held_again_note,
    held_note,
    per_member,
    searches_note,
)
from bench.report.steps import describe_step, sweep_axis

STALLED = 0.5  # a room delivering less than this share of what was offered, with a slow member, is stalled
BUFFERED_BYTES = 1 << 20  # server memory grown by this much per slow member: it holds what they do not read


@dataclass
class Cell:
    """A headline figure: what it says, a line under it, and the section that shows where it comes from."""

    text: str
    note: str = ""
    link: str = ""
    flags: list[str] = field(default_factory=list)  # client-bound, noisy: the figure may not be the server's


@dataclass
class Row:
    target: str
    stack: str
    patched: list[str]
    capacity: Cell
    cost: Cell
    slow: Cell
    largest: Cell
    first_loss: Cell
    capacity_value: Stat | None = None  # deliveries/s at the SLO, to rank the targets
    cost_value: Stat | None = None


Segment = tuple[str, str]  # text, and the section that proves it ("" for plain words)


def anchor(scenario: str) -> str:
    return f"#scenario-{scenario}"


def capacity_cell(data: Results, target: str) -> tuple[Cell, Stat | None]:
    """Deliveries/s at the SLO: the searched capacity when the bench searched it, else on the first ramp
    this target ran."""
    if found := searched(data, target):
        return searched_cell(data, found)
    caps = [cap for sc in ramp_scenarios(data) if (cap := ramp_capacity(data, sc, target)).state != "not run"]
    if not caps:
        return held_again_cell(data, target) or Cell("not measured", "no ramp ran"), None
    cap = caps[0]
    if cap.state == "below":
        first = data.runs_of(cap.scenario, target, data.steps_of(cap.scenario, target)[0])
        return (Cell("below the first step", f"{cap.scenario}: {cap.stopped_label}", "#capacity", caution(first)),
                Stat(0, 0, 0, 1))
    dps = fold(cap.runs, DPS)
    more = "≥ " if cap.state == "beyond" else ""
    return Cell(f"{more}{fmt_stat('rate', dps)}", f"{cap.scenario} at {cap.label}", "#capacity",
                caution(cap.runs)), dps


def held_again_cell(data: Results, target: str) -> Cell | None:
    """A record that only held an earlier bench's capacities again (`--at-capacities`): whether each held. No
    figure to rank by: the capacity is that bench's."""
    runs = [r for r in data.runs_of(target=target) if holds_again(r)]
    if not runs:
        return None
    broke = broke_again(runs)
    return Cell(fmt("rate", (broke or runs)[-1].deliveries_per_s), f"an earlier bench's capacity: "
                f"{held_again_note(runs)}", anchor(runs[-1].scenario), ["failed again"] if broke else [])


def searched_cell(data: Results, cap: SearchedCapacity) -> tuple[Cell, Stat | None]:
    """The confirmed pass, its bracket, what failed first; client-bound marks a floor, not the server's."""
    flags = caution(edge_runs(data, cap))
    if cap.client_bound and "client-bound" not in flags:
        flags.insert(0, "client-bound")
    if cap.passed is not None and not cap.held:
        flags.insert(0, "not held")
    note = f"{cap.scenario}: {held_note(cap)}; {bracket(cap)}; failed first: {', '.join(cap.failed_first) or '—'}"
    if cap.passed and cap.failed and not cap.converged:  # wider than asked, or its pass did not hold on a repeat
        note += f"; not converged within ±{cap.tolerance:.0%}"
    note += "".join(f"; {more}" for more in (again_note(data, cap), searches_note(data, cap)) if more)
    if broke_again(held_again(data, cap)):
        flags.insert(0, "failed again")
    return (Cell(capacity_number(cap).removesuffix(" deliveries/s"), note, "#capacity", flags),
            capacity_stat(data, cap.target, cap.scenario))


def cost_cell(data: Results, target: str) -> tuple[Cell, Stat | None]:
    """Server CPU per delivery at the target's held capacity, the load a sizing is made for (at a low load a
    message's fixed overhead dominates: fastapi's cost at 1 msg/s per member was 2-4× its cost at capacity);
    without a held capacity, in `steady` (else the first scenario where it was timed), labelled so."""
    cap = searched(data, target)
    if cap is not None and cap.held and cap.passed is not None:
        runs = edge_runs(data, cap)
        if found := fold(runs, COST):
            at = f"at its held capacity, {per_member(cap.passed)} msg/s per member"
            return Cell(f"{fmt_stat('us', found)} µs", at, "#capacity", caution(runs, cost=True)), found
    order = sorted(scenario_names(data), key=lambda sc: sc != "steady")
    for sc in order:
        c = costs(data, sc)
        if target in c.stats:
            return (Cell(f"{fmt_stat('us', c.stats[target])} µs", c.at, anchor(sc), caution(c.runs[target], cost=True)),
                    c.stats[target])
    return Cell("—", "not timed"), None


def caution(runs: list[Run], cost: bool = False) -> list[str]:
    """The flags a figure from these runs carries (server CPU per delivery stays valid when client-bound)."""
    return [name for name, _ in flag_notes(runs) if name != "failed" and not (cost and name == "client-bound")]


def slow_runs(data: Results, target: str) -> list[Run]:
    """The runs with a member per room that never reads (else one that reads slowly)."""
    slow = [r for r in data.runs_of(target=target) if r.params.nonreading > 0]
    return slow or [r for r in data.runs_of(target=target) if r.params.slow_readers > 0]


def slow_cell(data: Results, target: str) -> Cell:
    """What a member that does not read does: the room stalls, the server drops for it, closes it, or buffers."""
    runs = slow_runs(data, target)
    if not runs:
        return Cell("not measured", "no slow member in its suite")
    first = [r for r in runs if (r.scenario, r.step) == (runs[0].scenario, runs[0].step)]
    r, dps = first[0], fold(first, DPS)
    offered = offered_deliveries(r)
    pace = f"{fmt('rate', dps.median if dps else None)} of {fmt('rate', offered)} deliveries/s"
    link, flags = "#claim-4", caution(first)
    if dps is not None and offered and dps.median < STALLED * offered:
        return Cell("stalls the room", f"{pace}; slowest second {fmt('rate', min(timeline(r) or [0]))}", link, flags)
    if any(x.ledger.dropped_total for x in first):
        return Cell("drops", f"{causes(first)}; room at {pace}", link, flags)
    if any(x.ledger.lost_with_close_total for x in first):
        return Cell("closes it", f"{causes(first)}; room at {pace}", link, flags)
    if (grew := growth_per_slow_member(r)) >= BUFFERED_BYTES:
        return Cell("buffers", f"server memory +{fmt('size', grew)} per slow member; room at {pace}", link, flags)
    return Cell("keeps up", f"nothing lost; room at {pace}", link, flags)


def largest_cell(data: Results, target: str) -> Cell:
    """The largest message size the target delivered whole, and what happened past it."""
    sweeps = [sc for sc in scenario_names(data) if sweep_axis(data, sc) == "size"]
    runs = [r for sc in sweeps for r in data.runs_of(sc, target)]
    if not runs:
        return Cell("not measured", "no payload sweep ran")
    whole = [r.params.size for r in runs if r.ok and r.ledger.delivered and not lossy([r])]
    refused = sorted({r.params.size for r in runs
                      if r.ledger.lost_with_close_total and r.params.size > max(whole, default=0)})
    past = ""
    if refused:
        over = [r for r in runs if r.params.size == refused[0]]
        codes = sorted({x.code for r in over for x in r.ledger.lost_with_close if x.cause == "refused by size limit"})
        past = (f"{fmt_bytes(refused[0])} refused with close {', '.join(map(str, codes))}" if refused_only(over)
                else f"{fmt_bytes(refused[0])}: {causes(over)}")
    link = anchor(sweeps[0])
    if not whole:
        return Cell("none whole", past, link)
    return Cell(fmt_bytes(max(whole)), past, link)


def refused_only(runs: list[Run]) -> bool:
    """Lost only by refusing messages over the size limit: the largest-message column says so already."""
    return all(r.ledger.dropped_total == 0 and r.ledger.unexplained == 0
               and all(x.cause == "refused by size limit" for x in r.ledger.lost_with_close) for r in lossy(runs))


def first_loss_cell(data: Results, target: str) -> Cell:
    """The first scenario, in the order they ran, where the target lost messages, other than by refusing
    messages over the size limit (unless that is all it lost)."""
    found = first_losses(data, target)
    if not found:
        return Cell("none", f"in {len(data.runs_of(target=target))} runs", "#autopsy")
    sc, g = next(((sc, g) for sc, g in found if not refused_only(g)), found[0])
    step = describe_step(g[0])
    loss = fold(g, LOSS)
    lost = fmt("pct", loss.median if loss else None)
    return Cell(f"{sc}{' at ' + step if step else ''}", f"{lost}% lost: {causes(g)}", anchor(sc))


def row(data: Results, target: str) -> Row:
    cap, cap_value = capacity_cell(data, target)
    cost, cost_value = cost_cell(data, target)
    return Row(target, stack_of(data, target), info(data, target).patched, cap, cost, slow_cell(data, target),
               largest_cell(data, target), first_loss_cell(data, target), cap_value, cost_value)
