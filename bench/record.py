"""The run record: the one typed definition of what the orchestrator writes (results.json) and the
report reads. Versioned like pyperf's files: `Results.load` upgrades an older format on purpose,
and nothing downstream keeps fallbacks for old shapes.

Every field has a default so that a run cut short (a server died, Ctrl-C) still validates with
what it did measure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, NamedTuple, overload

from pydantic import BaseModel, ConfigDict, Field

from bench.scenarios import CPU_CEILING_PCT
from bench.targets import TARGETS, Stack

FORMAT_VERSION = 5
NOISY_PCT = 10.0  # steal, or other processes on the servers' CPUs, above this flags a run as noisy
SLOW_SPEED_PCT = 75.0  # and so does their CPU running below this share of its full speed (Noise)
TARGET_ORDER = list(TARGETS)  # every report lists targets in this order


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Percentiles(Record):
    """Milliseconds, from HDR histograms merged across Locust workers; None when nothing was recorded."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


# Why deliveries owed to a member were lost with a connection (bench/ledger.py settle)
LossCause = Literal["sender closed", "recipient closed", "refused by size limit", "recipient left before they arrived"]


class Loss(Record):
    code: int  # the close code (1000 for a member that left on its own)
    cause: LossCause
    count: int

    @property
    def label(self) -> str:
        return f"{self.code} ({self.cause})"


class Ledger(Record):
    """expected = delivered + dropped by the server + lost with a close + in flight + unexplained."""

    expected: int = 0
    delivered: int = 0
    dropped_by_server: dict[str, int] = Field(default_factory=dict)  # by the server's /stats cause
    lost_with_close: list[Loss] = Field(default_factory=list)
    in_flight: int = 0
    in_flight_through_redis: int = 0  # of in_flight, inferred (see bench/ledger.py)
    unexplained: int = 0
    duplicates: int = 0
    reordered: int = 0
    owed_to_nonreading: int = 0
    owed_to_slow_readers: int = 0
    loss_pct: float = 0.0
    in_flight_pct: float = 0.0

    @property
    def lost_with_close_total(self) -> int:
        return sum(loss.count for loss in self.lost_with_close)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped_by_server.values())


class StageTime(Record):
    """One stage of storing a message: wall seconds spent in it, summed, and how many were timed."""

    seconds: float = 0.0
    count: int = 0


class AppStages(Record):
    """Where a stored message's time goes, one schema on both stacks (CONTRACT.md /stats `app`)."""

    wait: StageTime = Field(default_factory=StageTime)  # for a worker: Django's database thread, SQLAlchemy's pool
    db: StageTime = Field(default_factory=StageTime)  # the insert and its commit


class LoopLag(Record):
    """How late a 100 ms sleep woke up: summed, counted, and the worst since the server started."""

    seconds: float = 0.0
    count: int = 0
    max: float = 0.0


class AppStats(Record):
    """The servers' /stats `app` over a run (CONTRACT.md), in relay mode too; the gauges (db_connections_open,
    storing, workers) and loop_lag's max as the run left them. Zeros when the servers reported none."""

    mode: str = ""  # "relay" or "full"
    database: str | None = None  # the engine, None in relay mode
    messages_stored: int = 0
    store_failures: int = 0
    store_seconds: float = 0.0
    handshakes_refused: dict[str, int] = Field(default_factory=dict)  # by cause
    db_connections_open: int = 0
    storing: int = 0  # read and not yet stored: in flight, owed to the whole room
    wait_for: str = ""  # what `stages.wait` waits for
    workers: int = 0
    stages: AppStages | None = None  # None: servers from before the stages were timed
    loop_lag: LoopLag = Field(default_factory=LoopLag)


class StatsDelta(Record):
    """What the servers' /stats counted during the run (bench/stats.py diff)."""

    messages_in: int = 0
    bytes_in: int = 0
    deliveries: int = 0
    bytes_out: int = 0
    cpu_seconds: float = 0.0
    drops: dict[str, int] = Field(default_factory=dict)
    close_codes: dict[int, int] = Field(default_factory=dict)
    backlog: int = 0
    app: AppStats = Field(default_factory=AppStats)  # app mode (CONTRACT.md): stored, store failures and time, refusals


CostOver = Literal["window", "sampled", "run"]


class ServerCost(Record):
    delta: StatsDelta | None = None  # None when a server died before it could be read
    cpu_us_per_delivery: float | None = None
    # "window": the servers' CPU and deliveries read over the window alone (the cost at this load); "sampled":
    # the CPU sampled in the window over the deliveries that arrived in it (the servers answered no reading in
    # time); "run": the whole run's /stats difference, handshakes included (bench/run/runner.py server_cost)
    cost_over: CostOver = "run"
    cpu_pct_mean: float | None = None
    rss_before_bytes: int = 0
    rss_peak_bytes: int = 0
    rss_per_connection_bytes: float = 0.0
    # how many cores the servers, with the Redis and database they lean on, could use at once (their CPUs, at
    # most one per process): no rate they deliver can take more CPU than this (`claimed_cores`)
    cores: int | None = None
    backing_cpu_seconds: dict[str, float] = Field(default_factory=dict)  # of the above: the bench's Redis, database


class ClientCost(Record):
    busiest_process_cpu_pct: float | None = None
    client_bound: bool = False  # the load generator, not the server, may have set the pace
    cpu_us_per_delivery: float | None = None


class Steal(Record):
    mean: float | None = None
    max: float | None = None


class Noise(Record):
    other_on_server_cpus_pct: float | None = None
    # the servers' CPU speed over the window, % of full speed (bench/run/machine.py spin_us, CpuSpeed)
    server_cpu_speed_pct: float | None = None
    noisy: bool = False

    @property
    def slow(self) -> bool:
        """The servers' CPU ran below SLOW_SPEED_PCT of its full speed (one of the ways a run is noisy)."""
        return slow_cpu(self.server_cpu_speed_pct)


def slow_cpu(speed_pct: float | None) -> bool:
    """A CPU speed (% of full) that makes a run noisy: the same load is that much more work for it."""
    return speed_pct is not None and speed_pct < SLOW_SPEED_PCT


class Membership(Record):
    """Churn: members that left on their own, the new members that took their seats, failed connects."""

    left: int = 0
    joined_again: int = 0
    connect_failed: int = 0


class SocketQueues(Record):
    server_send_q: int = 0
    server_send_q_max: int = 0
    server_recv_q: int = 0
    client_recv_q: int = 0
    client_recv_q_max: int = 0


class Sample(SocketQueues):
    """One row of bench/run/sampler.py: CPU in percent of one core."""

    t: float = 0.0
    dt: float = 0.0
    wall: float = 0.0
    server_cpu_pct: float = 0.0
    backing_cpu_pct: float = 0.0  # of server_cpu_pct, the bench's Redis and database
    server_cpus_other_pct: float = 0.0
    server_rss: int = 0
    client_cpu_pct: float = 0.0
    client_busiest_pct: float = 0.0
    steal_pct: float = 0.0
    server_cpu_spin_us: float | None = None  # the speed probe's time on the servers' CPU (machine.spin_us)
    server_sockets: int = 0  # TCP connections established to the servers (their handshakes done or not)
    handshakes: int | None = None  # app targets: handshakes the servers accepted so far (/stats connections.total)
    # the servers' [deliveries, CPU seconds, their clock] so far, one /stats reading (CONTRACT.md `read_at`)
    server_counters: list[float] | None = None
    db_connections: dict[str, int] | None = None  # PostgreSQL: client connections to the chat database by state


class OutageEvent(Record):
    event: str
    at: float


class RedisSubscriber(Record):
    """One pub/sub subscriber connection, as Redis's CLIENT LIST gives its fields (strings)."""

    model_config = ConfigDict(serialize_by_alias=True)  # `tot-mem` stays Redis's name in the file

    id: str | None = None  # changes when it reconnects
    addr: str | None = None
    age: str | None = None  # seconds
    sub: str | None = None  # channels subscribed
    omem: str | None = None  # bytes Redis holds for it, not yet written to its socket
    tot_mem: str | None = Field(default=None, alias="tot-mem")


class RedisSnapshot(Record):
    """Redis's own view of the pub/sub leg, which no server process counts (bench/run/redisctl.py snapshot)."""

    reachable: bool = False
    version: str | None = None
    subscribers: list[RedisSubscriber] = Field(default_factory=list)
    total_connections_received: int | None = None  # grows when a subscriber reconnects
    client_recent_max_output_buffer: int | None = None  # bytes
    client_output_buffer_limit_disconnections: int | None = None  # Redis >= 7.2 only
    pubsub_channels: int | None = None
    pubsub_output_buffer_limit: str | None = None  # "hard soft seconds", past which Redis closes a subscriber


class RedisEvidence(Record):
    output_buffer_closures: list[str] = Field(default_factory=list)  # Redis's log lines: a subscriber closed
    after_run: RedisSnapshot | None = None


class DatabaseEvidence(Record):
    """App mode: the database the servers stored to, and its connections around the run."""

    engine: str  # "postgresql" or "sqlite"
    note: str = ""
    connections_before: int | None = None  # PostgreSQL's own count; None where it cannot say
    connections_after: int | None = None


class Evidence(Record):
    """What explains a loss beside the ledger: the kernel's TCP counters, server log lines, Redis."""

    tcp_counters: dict[str, int] = Field(default_factory=dict)
    server_log: list[str] = Field(default_factory=list)
    redis_outage: list[OutageEvent] | None = None
    redis: RedisEvidence | None = None  # Redis's own view: output-buffer closures and a snapshot after the run
    database: DatabaseEvidence | None = None  # app mode: the engine, and its connections before and after


class DbConnections(Record):
    """Client connections to the chat database over a run (PostgreSQL's pg_stat_activity, by state:
    active, idle, idle in transaction...): before it, sampled during it, and once the servers settled."""

    before: int | None = None
    after: int | None = None
    after_states: dict[str, int] = Field(default_factory=dict)
    peak: int | None = None
    peak_active: int | None = None
    timeline: list[list[float]] = Field(default_factory=list)  # [seconds into the run, open, active] per sample

    @property
    def returned(self) -> bool | None:
        """Whether every connection was back to idle once the servers settled (none left active or in a
        transaction); None when it was not read."""
        return None if self.after is None else not any(n for s, n in self.after_states.items() if s != "idle")


class Statements(Record):
    """Statements of one kind the chat database ran during a run (pg_stat_statements): how many, and the
    milliseconds it spent executing them."""

    calls: int = 0
    ms: float = 0.0


class Handshakes(Record):
    """How fast the servers accepted a run's members (their /stats, sampled): a storm's rate."""

    accepted: int = 0  # handshakes the servers accepted during the run
    within_s: float | None = None  # from the first member's TCP connection to the last accepted, rounded out to
    # the samples: the last one with no new connection, the first one with every handshake counted

    @property
    def per_s(self) -> float | None:
        """At least this many per second (the span is rounded out to the samples)."""
        return self.accepted / self.within_s if self.within_s else None


class Fault(Record):
    kind: str
    fired_at: float | None = None


class Params(Record):
    """The scenario step that ran (bench/scenarios.py Scenario, less its name, text and steps)."""

    room_size: int = 10
    users: int = 0
    rate: float = 0.0
    kind: str = "text"
    size: int = 128
    warmup: float = 0.0
    window: float = 1.0
    drain: float = 0.0
    repeats: int = 1
    slo_p95_ms: float | None = None
    nonreading: int = 0
    slow_readers: int = 0
    read_rate: int = 0
    burst: int = 0
    burst_every: float = 0.0
    churn: int = 0
    churn_stay: float = 1.0
    spawn_rate: float = 0.0
    fault: str = ""
    history: int = 0  # app mode: each member asks for the room's last N stored messages as it joins
    search: int = 0  # > 0: the capacity was searched (Results.capacities) in at most this many runs
    hold: float = 0.0  # a searched capacity's sustained window, seconds (its holds ran with window = hold)
    holds: int = 0  # at most this many holds
    restart: bool = False  # the target's servers were restarted right before the run (a cold reconnect storm)
    asgi_threads: int | None = None  # daphne's ASGI_THREADS for the run's servers (0: unset; None: the target's)
    rate_at: str = ""  # the run's rate was the target's searched capacity in this scenario
    cpu_ceiling_pct: float = CPU_CEILING_PCT  # with slo_p95_ms: the servers' mean CPU (% of their cores) that fails it


class ProfileBasis(Record):
    """What a layer split rests on (bench/run/profiler.py Profile.basis): py-spy's samples; the shares of them it
    could not read, that were idle and that no layer claimed (%); busy samples per CPU tick; its rate and span."""

    samples: int | None = None
    errors_pct: float | None = None
    idle_pct: float | None = None
    other_pct: float | None = None
    coverage: float | None = None
    rate: int | None = None  # samples/s
    duration_s: float | None = None


class LayerProfile(Record):
    """Where the server CPU of one run went, µs per delivery by layer (bench/run/profiler.py): the server
    processes' share split by py-spy's samples, the bench's Redis and database by their own CPU."""

    layers_us: dict[str, float] = Field(default_factory=dict)
    basis: ProfileBasis = Field(default_factory=ProfileBasis)  # all None when there is no split
    flame_svg: str = ""  # inline, static
    error: str | None = None  # why there is no split (py-spy could not sample, nothing was delivered)


class Run(Record):
    """One scenario step against one target, as bench/run/runner.py measured it."""

    target: str = ""
    scenario: str = ""
    step: str = ""  # what the step overrides, as a label ("rate=4 size=1,024"); "" for a single-step scenario
    step_params: dict[str, bool | int | float | str] = Field(default_factory=dict)
    repeat: int = 0
    duration_s: float | None = None
    params: Params = Field(default_factory=Params)
    status: Literal["ok", "failed"] = "ok"
    failure: str | None = None
    offered_send_rate: float = 0.0
    achieved_send_rate: float = 0.0
    # throughput: deliveries that arrived while the window was open, per second, and no more than the servers
    # delivered by their own count and clock over it (the lower of the two below)
    deliveries_per_s: float = 0.0
    arrived_deliveries_per_s: float = 0.0  # deliveries that arrived while the window was open, per second
    served_deliveries_per_s: float | None = None  # the servers' count over their readings around the window, per s
    owed_deliveries_per_s: float = 0.0  # what the members were due: messages sent in the window × room size, per s
    rtt_ms: Percentiles = Field(default_factory=Percentiles)  # the sender's round trip through the broadcast
    latency_ms: Percentiles = Field(default_factory=Percentiles)  # each recipient's delivery
    connect_ms: Percentiles = Field(default_factory=Percentiles)  # each handshake (signed in, in app mode)
    history_ms: Percentiles = Field(default_factory=Percentiles)  # app mode: a joining member's history
    history_received: int = 0  # stored messages handed to joining members (not deliveries of the run)
    handshakes_refused: dict[int, int] = Field(default_factory=dict)  # HTTP status -> handshakes
    # HTTP status -> handshakes refused with Retry-After and tried again after it (bench/load/wsclient.py admitted)
    handshakes_retried: dict[int, int] = Field(default_factory=dict)
    # the permessage-deflate parameters the servers agreed to -> connections ("none": they declined it); empty when
    # the members offered no extension (CONTRACT.md "As browsers connect")
    negotiated: dict[str, int] = Field(default_factory=dict)
    # bytes the members read per delivery they received: frames as the servers sent them, compressed and encrypted
    # as they were (pings and closes too; the handshakes not)
    wire_bytes_per_delivery: float | None = None
    timeline: list[int] = Field(default_factory=list)  # deliveries that arrived in each second from the window's start
    rtt_timeline_ms: list[float | None] = Field(default_factory=list)  # mean round trip of each second of the window
    ledger: Ledger = Field(default_factory=Ledger)
    client_closes: dict[int, int] = Field(default_factory=dict)  # close code -> connections
    membership: Membership = Field(default_factory=Membership)
    server: ServerCost = Field(default_factory=ServerCost)
    socket_queues_peak: SocketQueues = Field(default_factory=SocketQueues)
    client: ClientCost = Field(default_factory=ClientCost)
    steal_pct: Steal = Field(default_factory=Steal)
    noise: Noise = Field(default_factory=Noise)
    samples: list[Sample] = Field(default_factory=list)
    locust_command: list[str] = Field(default_factory=list)
    load_generators: list[str] = Field(default_factory=list)  # the Locust workers that generated it, by id
    evidence: Evidence = Field(default_factory=Evidence)
    interrupted: bool = False
    server_settled: bool = True
    cold_start: bool = False  # its servers were started right before it: no connection, pool or cache yet
    sample_interval_s: float | None = None  # how often bench/run/sampler.py read it (None: not recorded)
    fault: Fault | None = None
    profile: LayerProfile | None = None  # the run sampled near the target's capacity
    db_connections: DbConnections | None = None  # PostgreSQL app targets: connections over the run
    handshakes: Handshakes | None = None  # app targets: how fast the servers accepted the members
    # PostgreSQL app targets: statements by kind ("sign-in", "storing", "history", "other"), bench/run/database.py
    db_statements: dict[str, Statements] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ServerConfig(Record):
    """The limits a target's servers reported when ready (their /stats `config`)."""

    max_message_bytes: int | None = None
    member_backlog: int | None = None
    member_backlog_bytes: int | None = None  # None: not reported (servers before the bound), or a stock server's
    allowed_origins: list[str] = Field(default_factory=list)


class TargetInfo(Record):
    """How a target's servers were started and what they reported when ready (their /stats)."""

    stack: Stack = "reference"  # bench.targets.Target.stack
    about: str = ""
    tunes: str = ""  # a tuned target: the target it changes (CONTRACT.md "Tuned"); `about` says how
    lineage: list[str] = Field(default_factory=list)  # what it is made over, nearest first, down to stock
    breaks: str = ""  # the contract's rules it is known to break: its figures are not a result
    # as browsers connect (CONTRACT.md): its members offered permessage-deflate as Chromium does; over wss://
    browser: bool = False
    tls: bool = False
    base: str = ""  # of such a target: the same server met by plain ws:// members
    launcher: list[str] = Field(default_factory=list)
    server_command: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    processes: int = 1
    server: str = ""
    fanout: str = ""
    layer: str = ""
    config: ServerConfig = Field(default_factory=ServerConfig)
    patched: list[str] = Field(default_factory=list)  # this project's fixes to the stack, by module
    hosts: list[str] = Field(default_factory=list)  # the base URL of every server process that served it


# bench/run/capacity_search.py; "recheck": a second hold at a load whose first passed narrowly
ProbeRole = Literal["grow", "shrink", "bisect", "confirm", "hold", "recheck"]


class CapacityProbe(Record):
    rate: float  # messages/s per member
    role: ProbeRole  # "hold", "recheck": runs of the sustained window (Capacity.hold_s), the others short probes
    passed: bool
    why: list[str] = Field(default_factory=list)  # what broke the SLO rule, then what was at its limit


class Capacity(Record):
    """A target's capacity at the SLO, searched to within a tolerance: it lies in [passed, failed)."""

    target: str
    scenario: str
    users: int
    room_size: int
    slo_p95_ms: float
    passed: float | None = None  # messages/s per member: the highest held pass (else the short probes' edge)
    failed: float | None = None  # the lowest failing rate above it (None: nothing failed up to the cap)
    tolerance: float = 0.10
    converged: bool = False  # within the tolerance and `passed` held for hold_s
    held: bool = False  # `passed` was carried for a whole hold (hold_s); else it is indicative, not held
    hold_s: float | None = None  # the hold's window, seconds (None: the search ran no hold)
    client_bound: bool = False  # the load generator ran out of CPU at the edge: a floor, not the server's capacity
    failed_first: list[str] = Field(default_factory=list)
    start_rate: float | None = None  # where the search began, from the target's measured cost per delivery
    probes: list[CapacityProbe] = Field(default_factory=list)
    verdict: str = ""

    @overload
    def deliveries_per_s(self, rate: float) -> float: ...
    @overload
    def deliveries_per_s(self, rate: float | None) -> float | None: ...
    def deliveries_per_s(self, rate: float | None) -> float | None:
        """Deliveries/s offered at `rate` messages/s per member (every member gets every message)."""
        return None if rate is None else rate * self.users * self.room_size


class CodePart(Record):
    """One job of one stack's chat code, measured with radon (bench/run/codemetrics.py)."""

    stack: str
    part: str
    files: list[str] = Field(default_factory=list)
    sloc: int = 0
    lloc: int = 0
    comments: int = 0
    branches: int = 0  # cyclomatic complexity beyond the straight path, summed
    blocks: int = 0  # functions, methods and classes
    concepts: list[str] = Field(default_factory=list)  # framework names it imports


class SecurityCheck(Record):
    """One handshake an app target must refuse (or, signed in, accept): bench/run/security.py."""

    target: str
    check: str
    expected: int  # HTTP status: 101 accepted, 403 refused before accept
    got: int

    @property
    def passed(self) -> bool:
        return self.got == self.expected


class Code(Record):
    parts: list[CodePart] = Field(default_factory=list)
    sign_in: dict[str, dict[str, str]] = Field(default_factory=dict)  # stack -> {file: source}


class CpuPinning(Record):
    """Which CPUs the servers (with their Redis and database) and the load generator ran on (machine.CpuPlan)."""

    server_cpus: list[int]
    client_cpus: list[int]
    pinned: bool  # on disjoint CPUs
    note: str


class RedisSetup(Record):
    """The Redis the Redis targets used (bench/run/cli.py provide_redis)."""

    url: str | None = None  # None: no Redis, so the Redis targets were skipped
    owned: bool = False  # the bench's own redis-server: its CPU is the servers' cost, and outages can be injected
    note: str = ""


class Spread(Record):
    """A figure over the harness's repeats: the median, the range, and each repeat's."""

    median: float
    min: float
    max: float
    samples: list[float] = Field(default_factory=list)


class HarnessCores(Record):
    client: int
    server: int
    available: int


class HarnessRun(Record):
    """One repeat of the single-connection best case (bench/harness/loadgen.py)."""

    deliveries: int
    wall_s: float
    cpu_s: float
    per_core_s: float
    per_wall_s: float
    gaps: int
    dups: int
    foreign: int
    p50_us: int
    client_core_steal_pct: float


class LocustSlice(Record):
    """One slice of the Locust harness's window (bench/harness/loadgen.py run_locust_harness)."""

    deliveries: int
    cpu_s: float
    per_core_s: float
    per_wall_s: float
    client_cpu_pct: float
    client_core_steal_pct: float
    server_cpu_pct: float


class LocustHarness(Record):
    """The real Locust user over many members against the firehose: deliveries per client CPU-second."""

    deliveries_per_core_s: Spread
    deliveries_per_wall_s: float
    client_cpu_pct: float
    steal_pct: float
    server_cpu_pct: float  # near 100 the firehose, not the client, set the pace
    offered_per_s: float
    members: int
    room_size: int
    message_bytes: int
    seconds: int
    repeats: int
    client_received: int
    foreign: int
    closes: dict[str, int] = Field(default_factory=dict)  # close code -> connections
    connect_failed: int
    latency_p50_us: int | None = None
    cores: HarnessCores
    runs: list[LocustSlice] = Field(default_factory=list)
    command: str


class Harness(Record):
    """The load generator's own capacity (bench/harness/loadgen.py run_harness): deliveries per client CPU-second
    on one connection in large batches (the best case), and with `locust` the real Locust user."""

    deliveries_per_core_s: Spread | None = None
    deliveries_per_wall_s: float | None = None
    steal_pct: float | None = None
    message_bytes: int | None = None
    seconds: float | None = None
    repeats: int | None = None
    cores: HarnessCores | None = None
    runs: list[HarnessRun] = Field(default_factory=list)
    locust: LocustHarness | None = None
    summary: str = ""  # with `locust`: both, in a sentence


class Environment(BaseModel):
    """The machine and software a run was measured on; open to new keys (bench/run/machine.py)."""

    model_config = ConfigDict(extra="allow")

    cpu_model: str = ""
    cores: int | None = None
    usable_cpus: list[int] = Field(default_factory=list)
    memory_bytes: int | None = None
    kernel: str = ""
    python: str = ""
    packages: dict[str, str | None] = Field(default_factory=dict)
    sysctls: dict[str, str] = Field(default_factory=dict)
    fd_limit: int | None = None
    cpu_plan: CpuPinning | None = None
    harness: Harness | None = None
    redis: RedisSetup | None = None
    code: str | None = None  # the commit measured, "+changes" when the checkout had uncommitted ones (None: no git)


class HardeningCost(Record):
    """Server CPU µs per delivery on steady chat, run by run, with this project's limits against hostile
    clients and without them (CHAT_HARDENING=off), the runs interleaved (bench/run/hardening_cost.py)."""

    scenario: str = "steady"
    room_size: int | None = None  # members per room of `scenario` (None: recorded before it was kept)
    hardened_us: list[float] = Field(default_factory=list)
    stock_us: list[float] = Field(default_factory=list)
    # each run's mean CPU steal in the order they ran (stock, hardened, stock...), failed runs included
    steal_pct: list[float | None] = Field(default_factory=list)
    noisy: bool = False  # a run's window was noisy (steal, or other processes on the servers' CPUs)
    restarts: int = 0  # servers restarted between runs: left unsettled (still busy, leftovers) or dead
    error: str | None = None  # the runs that failed, beside the values the others gave


class Died(Record):
    """A hostile figure whose server died under it: a finding."""

    died: str  # its last exception, else its exit status


class Errored(Record):
    """A hostile figure not measured: the client failed, or the server would not start."""

    error: str


Failed = Died | Errored


class NonReader(Record):
    """A member that never reads while another sends `owed_bytes` in 1 MiB messages, each after its echo."""

    owed_bytes: int
    rss_growth_bytes: int  # the server's, while it was owed
    reached_reader: int  # messages that reached the reading member
    seconds: float
    dropped: dict[str, int] = Field(default_factory=dict)  # for it, by the server's /stats cause
    rss_after_leaving_bytes: int  # 3 s after it closed
    zero_window_s: float  # how long it lived once a message was stuck behind its window
    closed_meanwhile: dict[int, int] = Field(default_factory=dict)  # close code -> connections the server closed
    senders_close_code: int | None = None  # None: the sender was still connected


class Fragments(Record):
    """One message as 1-byte frames, while a pair chats beside it."""

    frames: int
    bystander_worst_rtt_s: float
    rss_peak_growth_bytes: int
    close_code: int | None = None  # None: the server did not close it
    seconds: float | None = None  # None: recorded before it was kept


class Storm(Record):
    """Handshakes at once: seconds until each was answered, and the answers; a pair that joined meanwhile."""

    connections: int
    seconds: float
    # HTTP status, "timeout" or "reset" (older records: "0", no valid answer) -> handshakes, retries included
    answers: dict[str, int] = Field(default_factory=dict)
    retries: bool = False  # a member refused 503 with Retry-After tried again after it (older records: never)
    last_admitted_s: float | None = None  # when the last member got in (None: none did, or not recorded)
    pair_join_s: float | None = None  # a pair's first handshake to its first message (None: not within the cap)
    pair_after_s: float | None = None  # when into the storm the pair tried (None: no pair tried, an older record)
    rss_growth_bytes: int | None = None  # server RSS at its peak during the storm, over its start
    cpu_s: float | None = None  # server CPU seconds (user and system) the storm took (None: an older record)
    # each second of the storm (from its start) -> its answers by kind, as `answers` ({}: an older record)
    by_second: dict[int, dict[str, int]] = Field(default_factory=dict)


ReconnectPolicy = Literal["immediate", "backoff"]


class Reconnect(Record):
    """A reconnect storm (bench/run/reconnect.py): members chatting, their server killed and started again on the
    same port, every member reconnecting by one policy."""

    target: str
    policy: ReconnectPolicy
    members: int
    capped_at_s: float  # how long after the kill a member may take to get back
    # from the kill until the new server answered /healthz (polled every 50 ms: a member may be back first)
    restart_s: float
    first_back_s: float | None = None  # from the kill until the first member was connected again: the server was up
    back_s: float | None = None  # from the kill until every member was connected again (None: not all within the cap)
    back: int = 0  # members back within the cap
    back_by_second: dict[int, int] = Field(default_factory=dict)  # second after the kill -> members back in it
    failures: dict[str, int] = Field(default_factory=dict)  # failed attempts by cause (HTTP status, refused, ...)
    server_cpu_s: float | None = None  # the new server's CPU seconds from its start until the last member was back
    server_cpu_peak_pct: float | None = None  # its busiest 0.25 s meanwhile, in % of one core (None: back sooner)
    server_rss_peak_bytes: int | None = None
    # every message the members sent: echoed to its sender, lost with the killed server (no echo before its
    # connection died), lost on a connection that closed after its member was back, or unexplained (none of these)
    sent: int = 0
    echoed: int = 0
    lost_with_server: int = 0
    lost_after_back: int = 0  # on a later connection of a member that was back, which then closed
    unexplained: int = 0
    # app mode: of those lost with the server, the ones it had stored first (a member's history brings them back)
    lost_but_stored: int | None = None


class HostileFigures(Record):
    """One target's figures in one mode (bench/run/hostile.py measure_mode); None: not measured."""

    non_reader: NonReader | Failed | None = None
    idle_s: float | Failed | None = None  # how long a TCP connection that sends nothing lives
    partial_s: float | Failed | None = None  # ... one that sends half a request line
    fds_per_idle: float | Failed | None = None
    storm: Storm | Failed | None = None
    fragments: Fragments | Failed | None = None
    server_errors: dict[str, int] | None = None  # exceptions the servers logged, by name ({}: looked, found none)
    capped_at_s: float | None = None  # any figure's time cap: a lifetime that reached it was cut there


class HostileSizes(Record):
    """What the figures were taken at."""

    owed_bytes: int | None = None  # owed to the non-reader
    frames: int | None = None  # of the fragmented message
    storm: int | None = None  # handshakes at once


class Moved(Record):
    """One figure of this bench beside the same figure of the bench before it (bench/compare/repeat.py)."""

    name: str  # a target (its searched capacity, deliveries/s), or "fastapi ÷ django" (their ratio)
    old: float
    new: float
    full_speed_pct: float | None = None  # the capacity's move once each is scaled to its servers' full CPU speed
    why: str = ""  # bench.compare's causes: a slow or taken CPU, a capacity not held, another share of the cores

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.new - self.old) / self.old


class Repeated(Record):
    """Each searched capacity and the headline's ratios against an earlier bench (the previous one of the same
    targets, or --baseline): how far two benches on this machine agree."""

    against: str  # the earlier results file
    started: str = ""
    code: str | None = None
    capacities: list[Moved] = Field(default_factory=list)
    ratios: list[Moved] = Field(default_factory=list)


class Hostile(Record):
    """What one hostile client did to a target (bench/run/hostile.py): each figure as the stack ships
    (`stock`, CHAT_HARDENING=off) and with this project's limits (`hardened`); None when not measured (a
    target with no limits of ours, like `reference`, has only `stock`)."""

    hardened: HostileFigures | None = None
    stock: HostileFigures | None = None
    settings: dict[str, str] = Field(default_factory=dict)  # the servers' settings beyond the defaults
    sizes: HostileSizes | None = None
    stock_fd_limit: int | None = None  # the soft fd limit stock servers ran at (the bench's own, before it raised it)
    cost: HardeningCost | None = None


class Results(Record):
    format_version: int = FORMAT_VERSION
    started: str = ""
    finished: str | None = None
    status: str = "running"
    argv: list[str] = Field(default_factory=list)
    environment: Environment = Field(default_factory=Environment)
    targets: dict[str, TargetInfo] = Field(default_factory=dict)
    runs: list[Run] = Field(default_factory=list)
    capacities: list[Capacity] = Field(default_factory=list)  # one per target and searched scenario
    code: Code = Field(default_factory=Code)  # what each stack's chat took to write
    security: list[SecurityCheck] = Field(default_factory=list)  # app targets: who is kept out
    hostile: dict[str, Hostile] = Field(default_factory=dict)  # target -> what one hostile client did (run/hostile.py)
    reconnects: list[Reconnect] = Field(default_factory=list)  # reconnect storms (bench/run/reconnect.py)
    repeated: Repeated | None = None  # the capacities beside an earlier bench's (bench/compare/repeat.py)

    @classmethod
    def load(cls, path: Path) -> Results:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def from_json(cls, data: dict) -> Results:
        """Any format version this code has written, upgraded to the current one."""
        version = data.get("format_version")
        if version == 1:
            data, version = upgrade_v1(data), 2
        if version == 2:
            data, version = upgrade_v2(data), 3
        if version == 3:
            data, version = upgrade_v3(data), 4
        if version == 4:
            data, version = upgrade_v4(data), 5
        if version != FORMAT_VERSION:
            raise ValueError(f"results format {version!r} is not one this bench reads (1 to {FORMAT_VERSION})")
        return cls.model_validate(data)

    def to_json(self) -> dict:
        return self.model_dump(mode="json")

    def runs_of(self, scenario: str | None = None, target: str | None = None, step: str | None = None) -> list[Run]:
        """The runs of a scenario, target and step (None: any), in the order they ran."""
        return [r for r in self.runs if (scenario is None or r.scenario == scenario)
                and (target is None or r.target == target) and (step is None or r.step == step)]

    def steps_of(self, scenario: str, target: str | None = None) -> list[str]:
        return list(dict.fromkeys(r.step for r in self.runs_of(scenario, target)))



def upgrade_v1(data: dict) -> dict:
    """Format 1 → 2: losses with a close were strings ("1006 (sender closed)"), a step could be a
    number, and runs before churn or noise flags lacked those fields (the defaults fill them)."""
    runs = []
    for run in data.get("runs", []):
        run = dict(run)
        ledger = dict(run.get("ledger") or {})
        ledger["lost_with_close"] = [
            {"code": int(label.split(" ", 1)[0]), "cause": label.split("(", 1)[1].rstrip(")"), "count": n}
            for label, n in (ledger.get("lost_with_close") or {}).items()]
        run["ledger"] = ledger
        run["step"] = "" if run.get("step") in (None, "") else str(run["step"])
        params = dict(run.get("params") or {})
        params.pop("rate_steps", None)  # format 1's ramp list, replaced by steps
        run["params"] = params
        runs.append(run)
    return {**data, "format_version": 2, "runs": runs}


def upgrade_v2(data: dict) -> dict:
    """Format 2 → 3: a run's `deliveries_per_s` then counted the deliveries of the messages sent in the window,
    whenever they arrived (kept as it was: the physics check names the runs where it could not have been
    delivered); its servers' cores were not recorded: one per process, at most their CPUs, as the plan ran them
    (all of the servers' CPUs where a Redis or database counted too). A capacity then was the short probes' edge,
    never held."""
    server_cpus = len(((data.get("environment") or {}).get("cpu_plan") or {}).get("server_cpus") or []) or None
    processes = {name: t.get("processes") or 1 for name, t in (data.get("targets") or {}).items()}
    runs = []
    for run in data.get("runs", []):
        server = dict(run.get("server") or {})
        cores = server_cpus if server.get("backing_cpu_seconds") else processes.get(run.get("target", ""), 1)
        server["cores"] = min(cores, server_cpus) if cores and server_cpus else cores
        runs.append({**run, "server": server})
    return {**data, "format_version": 3, "runs": runs}


def upgrade_v3(data: dict) -> dict:
    """Format 3 → 4: a run's throughput was what arrived in the window alone; the servers' own count over it
    was not recorded."""
    runs = [{**run, "arrived_deliveries_per_s": run.get("deliveries_per_s", 0.0)} for run in data.get("runs", [])]
    return {**data, "format_version": 4, "runs": runs}


HOSTILE_V4 = {"hardened", "stock", "settings", "sizes", "stock_fd_limit", "cost"}  # format 4's Hostile fields


def upgrade_v4(data: dict) -> dict:
    """Format 4 → 5: the plain dicts got models. A target's hostile figures were, before stock was measured
    beside them, the hardened ones alone, with the log tail of a server that died under a figure
    (`<figure>_server_died`, never read); before `sizes` were recorded, the report read the run's sizes from
    any target's figures; a mode not measured was {}, and so were sizes and a CPU plan not recorded."""
    hostile = {target: dict(found) if found.keys() & HOSTILE_V4 else {"hardened": found}
               for target, found in (data.get("hostile") or {}).items()}
    for found in hostile.values():
        for mode in ("hardened", "stock"):
            kept = {k: v for k, v in (found.pop(mode, None) or {}).items() if not k.endswith("_server_died")}
            if kept:
                found[mode] = kept
    recorded: dict = next((found["sizes"] for found in hostile.values() if found.get("sizes")), {})
    figures = [found[mode] for found in hostile.values() for mode in ("hardened", "stock") if mode in found]

    def figure(key: str, field: str) -> int | None:
        return next((f[key][field] for f in figures if isinstance(f.get(key), dict) and field in f[key]), None)

    sizes = {"owed_bytes": recorded.get("owed_bytes") or figure("non_reader", "owed_bytes"),
             "frames": recorded.get("frames") or figure("fragments", "frames"),
             "storm": recorded.get("storm") or figure("storm", "connections")}
    for found in hostile.values():
        if not found.get("sizes"):
            found.pop("sizes", None)
            if any(sizes.values()):
                found["sizes"] = sizes
    environment = {k: v for k, v in (data.get("environment") or {}).items() if k != "cpu_plan" or v}
    targets = {name: {**t, "stack": t.get("stack") or stack_v4(name, t)}
               for name, t in (data.get("targets") or {}).items()}
    return {**data, "format_version": 5, "environment": environment, "hostile": hostile, "targets": targets}


def stack_v4(name: str, described: dict) -> Stack:
    """A target's stack before it was recorded: from what its servers reported (the fan-out, the server line),
    else from its name."""
    fanout, server = described.get("fanout") or "", described.get("server") or ""
    if fanout == "channels" or "(channels " in server:
        return "Channels"
    if fanout in ("queued", "seed") or "(fastapi " in server:
        return "FastAPI"
    if fanout or server:
        return "reference"
    return "Channels" if name.startswith("django") else "FastAPI" if name.startswith("fastapi") else "reference"


# The capacity rule: one home, read by the runner's search, the report and `compare`.
PHYSICS_TOLERANCE = 1.05  # CPU time is counted in clock ticks, and a short window has few of them
BEHIND_PCT = 5.0  # deliveries arriving this far below what the members were due: the backlog grew
GREW = (2.0, 0.2)  # the round trip's last third ×2 its first third, and by a fifth of the SLO: it grew
TREND_MIN_S = 6  # seconds of window the latency trend needs (three thirds of two seconds)
# A hold that passes with its p95 above this share of the SLO passed narrowly: the same load's p95 moved ×2.3
# between two holds here (fastapi-app 187 → 429 ms, its pool's queue), so one such pass is a coin flip, and
# it counts once a second hold at that load passes too (bench/run/capacity_search.py `hold_edge`).
NARROW_P95 = 0.5

SloFailure = Literal["run failed", "p95", "loss", "in flight", "fell behind", "latency grew", "server cpu",
                     "physics"]


def claimed_cores(run: Run) -> float | None:
    """The CPU a run's throughput implies: deliveries/s × the server CPU seconds each cost."""
    cost = run.server.cpu_us_per_delivery
    return run.deliveries_per_s * cost / 1e6 if cost and run.deliveries_per_s else None


def physical(run: Run) -> bool:
    """No rate is delivered with more CPU than the servers have: a run that claims more is a failed
    measurement (a rate counted that was not delivered as measured), never a throughput or a capacity."""
    claimed, cores = claimed_cores(run), run.server.cores
    return claimed is None or cores is None or claimed <= PHYSICS_TOLERANCE * cores


def fell_behind(run: Run) -> bool:
    """Deliveries arrived in the window more than BEHIND_PCT below what the members were due, beyond what the
    window's edges explain (each sender's count in it is off by up to one message: ~3σ of that is allowed)."""
    due, got, p = run.owed_deliveries_per_s, run.arrived_deliveries_per_s, run.params
    if not due or not p.window:
        return False
    slack_messages = 1.5 * max(p.users, 1) ** 0.5
    return (due - got) * p.window > BEHIND_PCT / 100 * due * p.window + slack_messages * p.room_size


def latency_grew(run: Run, slo_p95_ms: float) -> bool:
    """The round trip's mean in the window's last third is ×2 its first third's and a fifth of the SLO above
    it: a backlog growing through the window, though its p95 may still be under the SLO."""
    window = run.rtt_timeline_ms[:int(run.params.window)]
    seconds = [v for v in window if v is not None]
    if len(seconds) < TREND_MIN_S or len(seconds) < len(window):  # too short, or a second without a round trip
        return False
    third = len(seconds) // 3
    first, last = sum(seconds[:third]) / third, sum(seconds[-third:]) / third
    return last > GREW[0] * first and last - first > GREW[1] * slo_p95_ms


def slo_failures(run: Run, slo_p95_ms: float) -> list[SloFailure]:
    """Why a run was not a load its servers carried within the SLO ([]: it was). Websocket-shootout's rule
    (round-trip p95 within the SLO, nothing lost), and what shows a backlog building before the p95 does:
    messages still in flight after the drain, deliveries falling behind what was due, a round trip that
    grows through the window, the servers' CPU at the run's ceiling of their cores; and the physics check."""
    if not run.ok:
        return ["run failed"]
    p95, ledger, cores = run.rtt_ms.p95, run.ledger, run.server.cores
    why: list[SloFailure] = []
    if p95 is None or p95 > slo_p95_ms:
        why.append("p95")
    if ledger.loss_pct > 0:
        why.append("loss")
    if ledger.in_flight:
        why.append("in flight")
    if fell_behind(run):
        why.append("fell behind")
    if latency_grew(run, slo_p95_ms):
        why.append("latency grew")
    if cores and (run.server.cpu_pct_mean or 0.0) >= run.params.cpu_ceiling_pct * cores:
        why.append("server cpu")
    if not physical(run):
        why.append("physics")
    return why


def within_tolerance(passed: float | None, failed: float | None, tolerance: float) -> bool:
    """A search's bracket [passed, failed) no wider than `tolerance` of `passed` (a bracket exactly that wide,
    2.0 to 2.2 at 10%, is within it: the float division reads 0.10000000000000009)."""
    if not passed or not failed:
        return False
    return (failed - passed) / passed <= tolerance + 1e-9


def near_slo(p95_ms: float | None, slo_p95_ms: float) -> bool:
    """A p95 within ×1/NARROW_P95 of the SLO: a run that passed with it passed narrowly."""
    return p95_ms is not None and p95_ms > NARROW_P95 * slo_p95_ms


def within_slo(run: Run, slo_p95_ms: float) -> bool:
    """The capacity rule, one for the runner's search and the report (slo_failures says why not)."""
    return not slo_failures(run, slo_p95_ms)


def delivered_rate(run: Run) -> float | None:
    """A run's deliveries/s where the physics check lets it stand, else None: never a figure."""
    return run.deliveries_per_s if physical(run) else None


def at_a_capacity(run: Run) -> bool:
    """A run at the capacity its target's search found (`rate_at`: `confirm`, the ASGI_THREADS sweep, a search's
    profiled run): each target at a load of its own, so no comparison of targets at one load."""
    return bool(run.params.rate_at)


def measures_capacity(run: Run) -> bool:
    """A run that measures a capacity, a stepped ramp's step or a search's probe: an SLO, at a rate of its own."""
    return run.params.slo_p95_ms is not None and not at_a_capacity(run)


def holds_again(run: Run) -> bool:
    """A run that holds a capacity already found again, under the capacity rule (the `confirm` scenario)."""
    return run.params.slo_p95_ms is not None and at_a_capacity(run)


class RampEdge(NamedTuple):
    """Where a stepped ramp crossed the SLO: the runs of the largest step all within it ([]: not even the first
    step), and of the first step that was not ([]: the ramp never crossed it)."""

    held: list[Run]
    stopped: list[Run]


def ramp_edge(data: Results, scenario: str, target: str) -> RampEdge:
    """The stepped ramp's capacity (websocket-shootout's method, `within_slo` its rule): the largest step before
    the first one whose runs were not all within the SLO. The runner stops a ramp there, the report and
    `compare` quote it; no SLO in the scenario: no edge."""
    held: list[Run] = []
    for step in data.steps_of(scenario, target):
        runs = data.runs_of(scenario, target, step)
        slo = runs[0].params.slo_p95_ms
        if slo is None or not measures_capacity(runs[0]):
            return RampEdge([], [])
        if not all(within_slo(r, slo) for r in runs):
            return RampEdge(held, runs)
        held = runs
    return RampEdge(held, [])


def stack_of(data: Results, target: str) -> Stack:
    """The stack a target runs, as its record says (one whose servers never reported: as bench.targets says)."""
    if target in data.targets:
        return data.targets[target].stack
    return TARGETS[target].stack if target in TARGETS else "reference"


# Queries on a searched capacity, for the report and compare alike.
def searches_of(data: Results, target: str, scenario: str | None = None) -> list[Capacity]:
    """Every search of the target's capacity in `scenario` (else in the first scenario it was searched in), in
    the order they ran: bench-full searches an ablation's capacities several times, for their spread."""
    first = next((c.scenario for c in data.capacities if c.target == target and scenario in (None, c.scenario)), None)
    return [c for c in data.capacities if c.target == target and c.scenario == first]


def held_searches(data: Results, target: str, scenario: str | None = None) -> list[Capacity]:
    """The searches of `searches_of` whose pass was held, lowest capacity first."""
    return sorted((c for c in searches_of(data, target, scenario) if c.held and c.passed is not None),
                  key=lambda c: c.passed or 0.0)


def searched(data: Results, target: str, scenario: str | None = None) -> Capacity | None:
    """The target's searched capacity (in `scenario`, else the first one searched): of several searches, the
    median of those that held (the lower of the middle two), so every figure quoted is one search's own; when
    none held, the first search."""
    held = held_searches(data, target, scenario)
    return held[(len(held) - 1) // 2] if held else next(iter(searches_of(data, target, scenario)), None)


def held_again(data: Results, cap: Capacity) -> list[Run]:
    """The runs that held `cap` again at its load (`holds_again`, `rate_at` its scenario)."""
    return [r for r in data.runs_of(target=cap.target) if holds_again(r) and r.params.rate_at == cap.scenario
            and cap.passed is not None and r.params.rate == cap.passed]


def again_failures(run: Run) -> list[SloFailure]:
    """What a run holding a capacity again (`holds_again`) broke of the capacity rule ([]: it held, or it holds
    nothing again)."""
    slo = run.params.slo_p95_ms
    return slo_failures(run, slo) if holds_again(run) and slo is not None else []


def broke_holding_again(run: Run) -> bool:
    """A run holding a capacity again (`holds_again`) that broke the capacity rule."""
    return bool(again_failures(run))


def broke_again(runs: list[Run]) -> list[Run]:
    """Of runs holding a capacity again, those that broke the rule on a machine running true. One that broke it
    while the servers' CPU ran slow or was taken is no test of a capacity measured at the machine's own speed:
    it runs again (`runs_again`), and if every such run ran slow, the capacity was not held again at all."""
    return [r for r in runs if broke_holding_again(r) and not r.noise.noisy]


RUNS_AGAIN = 2  # times a run holding a capacity again runs once more while it breaks the rule on a slow CPU


def runs_again(run: Run) -> bool:
    """A run holding a capacity again that broke the rule while the servers' CPU ran slow or was taken: it says
    nothing of the capacity, and runs once more (bench/run/targetrun.py), at most RUNS_AGAIN times."""
    return run.noise.noisy and broke_holding_again(run)


def probe_runs(data: Results, cap: Capacity) -> list[Run | None]:
    """The run of each probe: the ramp's runs at the probe's rate, taken in the order they ran (the searches
    before `cap` of the same capacity take theirs first)."""
    left: dict[float, list[Run]] = {}
    for r in data.runs_of(cap.scenario, cap.target):
        left.setdefault(round(r.params.rate, 6), []).append(r)
    searches = searches_of(data, cap.target, cap.scenario)
    before = searches[:next((i for i, c in enumerate(searches) if c is cap), 0)]
    return [[runs.pop(0) if (runs := left.get(round(p.rate, 6))) else None for p in search.probes]
            for search in [*before, cap]][-1]


def edge_runs(data: Results, cap: Capacity) -> list[Run]:
    """The runs of the passing edge: the holds that passed at `passed` (else the short probes that did)."""
    at_edge = [(p, r) for p, r in zip(cap.probes, probe_runs(data, cap), strict=True)
               if r is not None and p.passed and p.rate == cap.passed]
    return [r for p, r in at_edge if p.role == "hold"] or [r for _, r in at_edge]
