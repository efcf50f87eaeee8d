"""The app mode beside the relay (CONTRACT.md "App mode"): which targets sign members in and store every
message, the relay target each is compared with, and what a target measured at its searched capacity
(its cost per delivery, and the /stats `app` stages of a stored message)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.record import AppStages, DbConnections, Results, Run, StageTime, edge_runs, searched
from bench.report.layers import profiled
from bench.report.numbers import fmt
from bench.report.repeats import fold
from bench.report.runs import COST, info, ran


def is_app(data: Results, target: str) -> bool:
    return info(data, target).env.get("CHAT_APP") == "full"


def app_targets(data: Results, fam: str | None = None) -> list[str]:
    return [t for t in ran(data, fam) if is_app(data, t)]


def relay_targets(data: Results, fam: str | None = None) -> list[str]:
    """The relay targets as the bench's members meet them (not the same servers met as browsers meet them)."""
    return [t for t in ran(data, fam) if not is_app(data, t) and not info(data, t).base]


def relay_of(data: Results, target: str) -> str | None:
    """The relay target an app target extends (django-app-sqlite -> django), when it ran."""
    base = target.split("-app", 1)[0]
    return base if base != target and base in relay_targets(data) else None


def at_capacity(data: Results, target: str) -> list[Run]:
    """The runs at the target's searched capacity: its profiled run, else the passing edge's probes."""
    run = profiled(data, target)
    if run is not None:
        return [run]
    cap = searched(data, target)
    return edge_runs(data, cap) if cap else []


def on_postgres(run: Run) -> bool:
    return run.evidence.database is not None and run.evidence.database.engine == "postgresql"


def capacity_value(data: Results, target: str) -> float | None:
    """Deliveries/s at the searched capacity (the confirmed pass)."""
    cap = searched(data, target)
    return cap.deliveries_per_s(cap.passed) if cap else None


def cost_at_capacity(data: Results, target: str) -> float | None:
    """Server CPU µs per delivery at the searched capacity (the bench's Redis and database included)."""
    found = fold(at_capacity(data, target), COST)
    return found.median if found else None


@dataclass
class Stages:
    """Per stored message, over some runs: wall µs waiting for a worker, µs in the database call, the event
    loop's mean and worst lag (ms), and the counts they rest on."""

    stored: float  # counts, summed over the runs' /stats numbers
    failures: float
    wait_us: float | None
    db_us: float | None
    lag_ms: float | None
    lag_max_ms: float | None
    workers: int
    wait_for: str
    connections: int
    storing: int  # a gauge: messages still being stored as the run ended

    def text(self) -> str:
        return (f"per stored message: {fmt('us', self.wait_us)} µs waiting for {self.wait_for or 'a worker'} "
                f"({fmt('int', self.workers)} worker{'s' * (self.workers != 1)}), {fmt('us', self.db_us)} µs in "
                f"the database call; event-loop lag {fmt('ms', self.lag_ms)} ms mean, {fmt('ms', self.lag_max_ms)} "
                f"ms worst since the server started; {fmt('int', self.stored)} stored, {fmt('int', self.failures)} "
                f"failed; {fmt('int', self.storing)} still storing at the end; database connections open "
                f"{self.connections}")


def stages(runs: list[Run]) -> Stages | None:
    """Over the runs whose servers timed the stages (their /stats `app`)."""
    timed = [(d.app, s) for r in runs if (d := r.server.delta) and (s := d.app.stages)]
    if not timed:
        return None
    apps = [app for app, _ in timed]

    def per(stage: Callable[[AppStages], StageTime]) -> float | None:
        n = sum(stage(s).count for _, s in timed)
        return 1e6 * sum(stage(s).seconds for _, s in timed) / n if n else None

    lags, last = sum(a.loop_lag.count for a in apps), apps[-1]
    return Stages(sum(a.messages_stored for a in apps), sum(a.store_failures for a in apps),
                  per(lambda s: s.wait), per(lambda s: s.db),
                  1e3 * sum(a.loop_lag.seconds for a in apps) / lags if lags else None,
                  1e3 * max(a.loop_lag.max for a in apps), last.workers, last.wait_for, last.db_connections_open,
                  last.storing)


def backing_us(runs: list[Run], service: str) -> float | None:
    """The bench's own Redis or database CPU per delivery (already inside the server's cost per delivery)."""
    cpu = sum(r.server.backing_cpu_seconds.get(service, 0.0) for r in runs)
    deliveries = sum(r.server.delta.deliveries for r in runs if r.server.delta)
    return 1e6 * cpu / deliveries if deliveries and any(service in r.server.backing_cpu_seconds for r in runs) \
        else None


SWEEP = "threads"  # the ASGI_THREADS sweep (bench/scenarios.toml)


def threads_label(n: int | None) -> str:
    return "daphne's default" if not n else str(n)


def sweep(data: Results, target: str) -> list[Run]:
    """The target's runs of the thread-pool sweep, in the order they ran (one per ASGI_THREADS value)."""
    return [r for r in data.runs if r.target == target and r.scenario == SWEEP]


@dataclass
class Connections:
    """A target's database connections over its runs that sampled them (PostgreSQL), in the order they ran:
    the run that saw the most open, the most active at once, the runs that left some busy, the last run's."""

    runs: list[Run]
    top: Run
    peak: int | None  # the most open at once, in `top`
    peak_active: int
    left: list[Run]  # runs after which some were still active or in a transaction
    before: int | None  # open before the first run
    last: DbConnections


def connections(data: Results, target: str) -> Connections | None:
    seen = [(r, db) for r in data.runs if r.target == target and (db := r.db_connections) is not None]
    if not seen:
        return None
    top, top_db = max(seen, key=lambda s: s[1].peak or 0)
    return Connections([r for r, _ in seen], top, top_db.peak, max(db.peak_active or 0 for _, db in seen),
                       [r for r, db in seen if db.returned is False], seen[0][1].before, seen[-1][1])
