"""A capacity plan for example workloads (bench.plan): per target, the server processes and cores each needs,
its database and Redis CPU, the memory of its connections, how long a restart takes to readmit every member,
and what binds first; the measured inputs beside, each with the run it came from."""

from __future__ import annotations

from dataclasses import dataclass

from bench.plan import EXAMPLES, HEADROOM, Plan, memory_words, plans, scale_checks
from bench.record import Results
from bench.report.numbers import fmt
from bench.report.repeatability import WITHIN_PCT as REPEAT_PCT


@dataclass(frozen=True)
class PlanRow:
    target: str
    processes: str
    cores: str
    server_cpu: str
    database: str
    redis: str
    memory: str
    restart: str
    binds: str
    sources: list[str]


@dataclass(frozen=True)
class WorkloadPlan:
    name: str
    about: str  # the workload in words, with its deliveries/s
    rows: list[PlanRow]
    notes: list[str]  # what the plan could not count, each once, with the targets it is about: "… (django)"


def cores(n: float | None, why: str = "—") -> str:
    return why if n is None else f"{n:,.2f}"


def sources(p: Plan) -> list[str]:
    c = p.costs
    found = [f"{fmt('us', c.cost_us.value)} µs per delivery: {c.cost_us.source}",
             f"cores kept {c.core_share.value:.0%} busy at that capacity, so each process is planned at "
             f"{c.core_share.value * (1 - HEADROOM):.0%} of a core: {c.core_share.source}"]
    found += [f"{label}: {m.source}" for label, m in (
        (f"{c.storage_us.value:,.0f} µs per stored message" if c.storage_us else "", c.storage_us),
        (f"database {c.database_us.value:,.0f} µs per stored message" if c.database_us else "", c.database_us),
        (f"Redis {c.redis_us.value:,.1f} µs per message" if c.redis_us else "", c.redis_us),
        (f"{c.idle_bytes.value / 1024:,.0f} KiB per idle connection" if c.idle_bytes else "", c.idle_bytes),
        (f"≥ {c.handshakes_per_s.value:,.0f} handshakes/s per process" if c.handshakes_per_s else "",
         c.handshakes_per_s)) if m]
    return found


def row(p: Plan) -> PlanRow:
    return PlanRow(p.target, f"{p.processes:,}", f"{p.cores:,.1f}", cores(p.server_cpu),
                   cores(p.database_cpu, "—" if not p.workload.stored or not p.costs.storage_us else "not measured"),
                   cores(p.redis_cpu, "—" if p.processes == 1 else "not measured"),
                   "—" if p.memory_bytes is None else memory_words(p.memory_bytes),
                   "—" if p.readmit_s is None else f"≤ {p.readmit_s:,.0f} s", p.binds_first, sources(p))


def grouped(found: list[Plan]) -> list[str]:
    """Each note once, with the targets it is about: "… (django, fastapi)"."""
    about: dict[str, list[str]] = {}
    for p in found:
        for note in p.notes:
            about.setdefault(note, []).append(p.target)
    return [f"{note} ({', '.join(targets)})" for note, targets in about.items()]


def plan_view(data: Results) -> list[WorkloadPlan]:
    """The example workloads, each planned on every target with a searched capacity (none: [])."""
    out = []
    for w in EXAMPLES:
        found = plans(data, w)
        if found:
            out.append(WorkloadPlan(w.name, f"{w.describe()}: {fmt('rate', w.deliveries_per_s)} deliveries/s",
                                    [row(p) for p in found], grouped(found)))
    return out


@dataclass(frozen=True)
class ScaleRow:
    """The plan's prediction for several processes beside the capacity they held (bench.plan.scale_checks)."""

    one: str
    many: str
    predicted: str
    measured: str
    error: str
    within: bool  # inside the ±15% two benches on this machine are asked to agree within
    misses: str  # what the model does not count, when the error is outside it


def scale_view(data: Results) -> list[ScaleRow]:
    rows = []
    for c in scale_checks(data):
        within = abs(c.error_pct) <= REPEAT_PCT
        misses = "" if within else (
            f"at {c.processes} processes a delivery cost {fmt('us', c.cost_many_us)} µs of CPU (Redis's included) "
            f"against {fmt('us', c.cost_one_us)} at one (×{c.cost_many_us / c.cost_one_us:.2f}): the plan "
            "counts the one-process cost, and each process added "
            + ("adds work per delivery (a room's message crosses Redis to every process with a member in it)"
               if c.cost_many_us > c.cost_one_us else "took work off it"))
        rows.append(ScaleRow(c.one, c.many, fmt("rate", c.predicted), fmt("rate", c.measured),
                             f"{c.error_pct:+.0f}%", within, misses))
    return rows
