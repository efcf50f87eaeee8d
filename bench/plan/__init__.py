"""A capacity plan from measured costs: for a workload (members, room size, messages per member, share stored,
reconnects), how many server processes and cores each target needs at a stated headroom, what its Redis and
database spend, the memory its connections take, how long a restart takes to get every member back, and which
resource binds first; each figure traced to the run it came from.

The model is linear in the work, with one ceiling per process:
- server CPU/s = deliveries/s × µs per delivery at the target's held capacity (rooms of the bench's size: a
  larger room shares its per-message work among more deliveries, so the plan over-counts it a little) plus,
  for stored messages, the storage cost per message (the app target's cost over its relay's, × the bench's
  room size); the database's own CPU per stored message and Redis's per message are the bench's own
  measurements of those servers, apart;
- a process is loaded, at most, as busy as the target kept its cores at its held capacity (capacity × cost ÷
  cores, its Redis and database on them included: how busy a core gets before the SLO breaks), and the plan
  keeps `headroom` of that free: processes = server CPU ÷ (that share × (1 − headroom)), rounded up;
- Redis is one core and one database server is planned as one core too: past that share they bind first;
- memory = members × RSS per idle connection + processes × a server's RSS before members came;
- one process's costs planning several are multiplied by what a second process behind Redis cost each
  delivery in the same stack's scale check, when this results file holds one (else the plan says it is a floor);
- a reconnect costs at most a core's second ÷ the handshakes/s one process accepted in a storm, and a restart
  readmits every member at that rate, times the processes.
A figure the results file does not hold (no Redis target ran, no idle run) is None, with why."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.record import Capacity, Results, Run, Storm, edge_runs, searched

HEADROOM = 0.3  # of each process's share of a core at capacity, kept free for bursts and drift


@dataclass(frozen=True)
class Workload:
    name: str
    members: int
    room_size: int
    per_member_per_s: float  # messages each member sends a second
    stored: float = 0.0  # the share of messages kept (app targets store every message they are sent)
    reconnects_per_member_per_h: float = 0.0  # connection churn: each reconnect is a handshake (a sign-in in app mode)

    @property
    def messages_per_s(self) -> float:
        return self.members * self.per_member_per_s

    @property
    def deliveries_per_s(self) -> float:
        """Each message reaches its whole room, the sender's echo too."""
        return self.messages_per_s * self.room_size

    def describe(self) -> str:
        rate = self.per_member_per_s * 60
        text = (f"{self.members:,} members in rooms of {self.room_size}, each sending "
                f"{rate:g} message{'s' * (rate != 1)} a minute")
        if self.stored:
            text += f", {self.stored:.0%} of them stored"
        if self.reconnects_per_member_per_h:
            text += f", {self.reconnects_per_member_per_h:g} reconnect(s) per member an hour"
        return text


# the report's examples: a team's chat, the 50,000 members, and an internet-sized service
EXAMPLES = (
    Workload("team", 2_000, 10, 1 / 60, stored=1.0, reconnects_per_member_per_h=1),
    Workload("community", 50_000, 30, 1 / 60, stored=0.5, reconnects_per_member_per_h=2),
    Workload("internet", 5_000_000, 50, 1 / 300, stored=0.1, reconnects_per_member_per_h=2),
)


@dataclass(frozen=True)
class Measured:
    """One input of the plan, and the run it came from."""

    value: float
    source: str


@dataclass(frozen=True)
class Costs:
    """What the plan needs of one target, measured (None: this results file does not hold it)."""

    target: str
    stack: str
    processes: int  # the bench's: its capacity was carried by this many
    cost_us: Measured  # server CPU µs per delivery at the held capacity (Redis and database CPU taken out)
    core_share: Measured  # how busy the target kept its cores at its held capacity: the ceiling a process is planned to
    storage_us: Measured | None = None  # app targets: the servers' extra CPU µs per stored message
    database_us: Measured | None = None  # the database's CPU µs per stored message
    redis_us: Measured | None = None  # Redis's CPU µs per message (a Redis target)
    idle_bytes: Measured | None = None  # RSS per idle connection
    base_bytes: Measured | None = None  # a server's RSS before its members connected
    handshakes_per_s: Measured | None = None  # one process, members arriving at once


@dataclass(frozen=True)
class Plan:
    target: str
    workload: Workload
    costs: Costs
    headroom: float
    server_cpu: float  # cores the servers' own work takes
    processes: int
    memory_bytes: float | None
    database_cpu: float | None  # cores
    redis_cpu: float | None  # cores
    readmit_s: float | None  # every member back after a restart
    notes: list[str] = field(default_factory=list)

    @property
    def cores(self) -> float:
        """Cores to provision: one per server process, plus what Redis and the database use."""
        return self.processes + (self.redis_cpu or 0.0) + (self.database_cpu or 0.0)

    @property
    def binds_first(self) -> str:
        """What runs out first as the workload grows: a single Redis or database (one core each) once it needs
        more than its core, else the servers' CPU, which more processes fix."""
        shares = {"Redis": self.redis_cpu or 0.0, "the database": self.database_cpu or 0.0}
        worst = max(shares, key=lambda k: shares[k])
        if shares[worst] >= 1.0:
            return f"{worst}: {shares[worst]:.1f} cores of its one, shard it"
        return "servers' CPU (add processes)"


def run_label(run: Run) -> str:
    return f"{run.scenario} {run.step}".strip() + f" ({run.params.window:g} s window)"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def backing_us(run: Run, name: str, per: float) -> float | None:
    seconds = run.server.backing_cpu_seconds.get(name)
    return 1e6 * seconds / per if seconds is not None and per else None


def server_us(run: Run) -> float | None:
    """The servers' own CPU per delivery: the run's cost with the bench's Redis and database taken out."""
    cost, delta = run.server.cpu_us_per_delivery, run.server.delta
    if cost is None or delta is None or not delta.deliveries:
        return None
    backing = sum(run.server.backing_cpu_seconds.values())
    return cost - 1e6 * backing / delta.deliveries if backing else cost


def edge_cost(data: Results, cap: Capacity) -> tuple[float, float, list[Run]] | None:
    """At the held capacity: the servers' own µs per delivery, the share of their cores the whole target (its
    Redis and database on the same cores) kept busy within the SLO, and the runs."""
    runs = [r for r in edge_runs(data, cap) if r.ok]
    own = [c for r in runs if (c := server_us(r))]
    busy = [r.deliveries_per_s * cost / 1e6 / r.server.cores for r in runs
            if (cost := r.server.cpu_us_per_delivery) and r.server.cores]
    return (statistics.median(own), statistics.median(busy), runs) if own and busy else None


def idle_memory(data: Results, target: str) -> tuple[Measured | None, Measured | None]:
    """RSS per idle connection and before any, from the target's run with the most members (its idle
    scenario in `make bench`), else its relay's: an app target keeps a session beside, so it is a floor."""
    for name in (target, target.split("-app", 1)[0]):
        runs = [r for r in data.runs_of(target=name) if r.ok and r.server.rss_per_connection_bytes > 0
                and r.scenario == "idle"]
        if runs:
            run = max(runs, key=lambda r: r.params.users)
            whose = "" if name == target else f" of {name} (its relay: a floor for it)"
            label = f"{run_label(run)}, {run.params.users:,} members{whose}"
            return (Measured(run.server.rss_per_connection_bytes, label),
                    Measured(float(run.server.rss_before_bytes), label))
    return None, None


def handshake_rate(data: Results, target: str, processes: int) -> Measured | None:
    """Handshakes one process accepted a second with members arriving at once: the hardened storm of the
    hostile runs, else the sign-in storm (app targets), else none."""
    hostile = data.hostile.get(target)
    figures = (hostile.hardened or hostile.stock) if hostile else None
    storm = figures.storm if figures else None
    if isinstance(storm, Storm) and storm.last_admitted_s and (admitted := storm.answers.get("101", 0)):
        return Measured(admitted / storm.last_admitted_s / processes,
                        f"hostile storm: {admitted:,} of {storm.connections:,} at once admitted")
    rates = [(h.per_s, h.accepted, r) for r in data.runs_of(target=target)
             if r.scenario == "signin" and (h := r.handshakes) and h.per_s]
    if rates:
        rate, accepted, run = max(rates, key=lambda x: x[0])
        return Measured(rate / processes, f"{run_label(run)}, {accepted:,} sign-ins at once (a floor: they "
                        "arrived no faster)")
    return None


def costs_of(data: Results, target: str) -> Costs | None:
    """The plan's inputs for a target with a held (or indicative) searched capacity."""
    cap = searched(data, target)
    edge = edge_cost(data, cap) if cap and cap.passed else None
    if cap is None or edge is None:
        return None
    cost, busy, runs = edge
    processes = data.targets[target].processes if target in data.targets else 1
    held = "held" if cap.held else "indicative, not held"
    source = f"{cap.scenario} at {cap.passed:g} msg/s per member ({held}, {len(runs)} run(s))"
    storage = None
    relay = target.split("-app", 1)[0]
    if relay != target and (rcap := searched(data, relay)) and rcap.passed and (redge := edge_cost(data, rcap)):
        # measured at two loads, the difference can come out below zero: storing costs the servers nothing
        # measurable then (the database's own CPU is apart)
        storage = Measured(max(0.0, (cost - redge[0]) * cap.room_size),
                           f"{target}'s own cost over {relay}'s, × rooms of {cap.room_size}")
    database = median([us for r in runs if r.server.delta
                       and (us := backing_us(r, "database", r.server.delta.app.messages_stored))])
    redis = median([us for r in runs if r.server.delta and (us := backing_us(r, "redis", r.server.delta.messages_in))])
    idle, base = idle_memory(data, target)
    return Costs(target, data.targets[target].stack if target in data.targets else "", processes,
                 Measured(cost, source), Measured(busy, source),
                 storage_us=storage, database_us=Measured(database, source) if database else None,
                 redis_us=Measured(redis, source) if redis else None, idle_bytes=idle, base_bytes=base,
                 handshakes_per_s=handshake_rate(data, target, processes))


def plan(costs: Costs, w: Workload, headroom: float = HEADROOM, crossing: Measured | None = None) -> Plan:
    """`crossing`: what a second process behind Redis multiplied each delivery's cost by, in this stack's scale
    check (scale_checks); it applies when one process's costs plan several."""
    notes = []
    stored_per_s = w.messages_per_s * w.stored if costs.storage_us else 0.0
    if w.stored and not costs.storage_us:
        notes.append("a relay target stores nothing: the stored share is planned only on an app target")
    server = (w.deliveries_per_s * costs.cost_us.value + stored_per_s * (costs.storage_us.value
              if costs.storage_us else 0.0)) / 1e6
    handshakes = w.members * w.reconnects_per_member_per_h / 3600
    if handshakes and costs.handshakes_per_s:  # a storm keeps a core busy: 1 ÷ its rate is a handshake's CPU, at most
        server += handshakes / costs.handshakes_per_s.value
    elif handshakes:
        notes.append("reconnects are not planned: this results file has no storm or sign-in run of it")
    per_process = costs.core_share.value * (1 - headroom)
    processes = max(1, math.ceil(server / per_process)) if per_process > 0 else 0
    if processes > 1 and costs.processes == 1:  # one process's costs, planning several behind Redis
        if crossing:
            server *= crossing.value
            processes = max(1, math.ceil(server / per_process))
            notes.append(f"several processes: each delivery ×{crossing.value:.2f}, as a second process behind Redis "
                         f"cost it here ({crossing.source})")
        else:
            notes.append("planned from one process's costs: behind Redis a second process makes each delivery "
                         "cost more (make bench-full's scale check measures by how much), so this count is a floor")
    memory = (w.members * costs.idle_bytes.value + processes * (costs.base_bytes.value if costs.base_bytes else 0)
              if costs.idle_bytes else None)
    database = stored_per_s * costs.database_us.value / 1e6 if costs.database_us and stored_per_s else None
    redis = w.messages_per_s * costs.redis_us.value / 1e6 if costs.redis_us and processes > 1 else None
    if processes > 1 and costs.redis_us is None:
        notes.append(f"{processes} processes share rooms through Redis: its CPU per message was not measured in "
                     "this results file (the Redis targets run in make bench-full)")
    readmit = w.members / (costs.handshakes_per_s.value * processes) if costs.handshakes_per_s else None
    return Plan(costs.target, w, costs, headroom, server, processes, memory, database, redis, readmit, notes=notes)


def memory_words(n: float) -> str:
    """An amount of memory as the plan prints it, in the command and the report alike."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def plans(data: Results, workload: Workload, headroom: float = HEADROOM) -> list[Plan]:
    """A plan per target with a searched capacity, in the results' order."""
    found = [costs_of(data, t) for t in dict.fromkeys(c.target for c in data.capacities)]
    crossing: dict[str, Measured] = {
        data.targets[c.many].stack: Measured(c.cost_many_us / c.cost_one_us, f"{c.many} against {c.one}")
        for c in scale_checks(data)}
    return [plan(c, workload, headroom, crossing.get(c.stack)) for c in found if c is not None]


@dataclass(frozen=True)
class ScaleCheck:
    """The plan checked against a run: a target's held capacity on several processes, beside what the plan
    predicts for them from the same target's costs on one (its Redis on the same cores in both)."""

    one: str
    many: str
    processes: int
    cores: int  # the cores the several processes (and Redis) had
    predicted: float  # deliveries/s
    measured: float
    cost_one_us: float  # µs per delivery at each held capacity, Redis's CPU included
    cost_many_us: float

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.measured - self.predicted) / self.predicted


def total_cost(data: Results, cap: Capacity) -> tuple[float, int] | None:
    """µs per delivery at the held capacity with the Redis and database CPU in it, and the cores it ran on."""
    runs = [r for r in edge_runs(data, cap) if r.ok and r.server.cpu_us_per_delivery and r.server.cores]
    if not runs:
        return None
    return statistics.median(r.server.cpu_us_per_delivery or 0.0 for r in runs), runs[0].server.cores or 1


def held(data: Results, target: str) -> Capacity | None:
    cap = searched(data, target)
    return cap if cap and cap.passed and cap.held else None


def twin(data: Results, many: str) -> str | None:
    """The one-process target run on the same server with the same settings as `many`, when `many` has several
    (TargetInfo.launcher names each process's port, so the server and the environment say it is the same)."""
    info = data.targets[many]
    return next((t for t, i in data.targets.items() if info.processes > 1 and i.processes == 1
                 and (i.stack, i.server, i.env) == (info.stack, info.server, info.env)), None)


def scale_checks(data: Results) -> list[ScaleCheck]:
    """Each target run on several processes whose one-process twin also ran: the plan's arithmetic (cores ×
    how busy one process kept them ÷ its cost per delivery) against the held capacity measured."""
    out = []
    for many in data.targets:
        if (one := twin(data, many)) is None or (cap_one := held(data, one)) is None \
                or (cap_many := held(data, many)) is None:
            continue
        base, found, costs = total_cost(data, cap_one), total_cost(data, cap_many), costs_of(data, one)
        if base is None or found is None or costs is None:
            continue
        predicted = found[1] * costs.core_share.value * 1e6 / base[0]
        measured = cap_many.deliveries_per_s(cap_many.passed) or 0.0
        out.append(ScaleCheck(one, many, data.targets[many].processes, found[1], predicted, measured, base[0],
                              found[0]))
    return out
