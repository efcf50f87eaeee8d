"""One measured run: a scenario step against a target's running servers, driven by Locust."""

from __future__ import annotations

import json
import math
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import ROOT, locust_command
from bench.ledger import settle
from bench.load.tally import Tally, family, percentiles
from bench.record import NOISY_PCT, CostOver, Evidence, Fault, LayerProfile, Run, slow_cpu
from bench.run import certs, profiler
from bench.run.appsamples import app_probes, db_connections, handshake_rate, statements_delta
from bench.run.database import Database
from bench.run.machine import CpuPlan, CpuSpeed
from bench.run.procs import free_port
from bench.run.redisctl import RedisOutage, RedisServer, snapshot
from bench.run.sampler import Sampler
from bench.run.serverproc import Server
from bench.run.tcpstate import counter_delta, socket_queues, tcp_counters
from bench.scenarios import Scenario
from bench.stats import diff, read_servers, sum_stats, wait_quiet

REPORT_MARGIN_S = 4.0  # > Locust's 3 s worker report interval, so the last deltas reach the master
# A local run ends by itself once every room has settled; --run-time is the cap.


def run_command(scenario: Scenario, servers: Sequence[Server], results: Path,
                processes: int, sessions: Path | None = None,
                workers: Workers | None = None) -> tuple[list[str], float]:
    """The Locust command line for one run, and its --run-time in seconds: `processes` local Locust
    processes, or a master for `workers` started elsewhere."""
    spawn_rate = scenario.spawn_rate or scenario.users
    spawn_allowance = 2.0 + scenario.users / spawn_rate + scenario.users / 250
    margin = REPORT_MARGIN_S if processes > 1 or workers else 1.0
    run_time = spawn_allowance + scenario.warmup + scenario.window + scenario.drain + margin
    command = locust_command(
        "--headless",
        "--only-summary", "--loglevel", "WARNING",
        "-u", str(scenario.users), "-r", str(spawn_rate), "--run-time", f"{run_time:.0f}s",
        "--stop-timeout", "2",
        "--host", servers[0].base_url, "--chat-hosts", ",".join(s.base_url for s in servers),
        "--chat-room-size", str(scenario.room_size), "--chat-rate", str(scenario.rate),
        "--chat-size", str(scenario.size), "--chat-kind", scenario.kind,
        "--chat-warmup", str(scenario.warmup), "--chat-window", str(scenario.window),
        "--chat-drain", str(scenario.drain), "--chat-locust-events", "false",
        "--chat-burst", str(scenario.burst), "--chat-burst-every", str(scenario.burst_every),
        "--chat-nonreading", str(scenario.nonreading), "--chat-slow-readers", str(scenario.slow_readers),
        "--chat-read-rate", str(scenario.read_rate),
        "--chat-churn", str(scenario.churn), "--chat-churn-stay", str(scenario.churn_stay),
        "--chat-history", str(scenario.history), "--chat-sessions", str(sessions or ""),
        "--chat-results", str(results),
    )
    target = servers[0].target
    if target.browser:
        command += ["--chat-browser", "true"]
    if target.tls:
        command += ["--chat-ca", str(certs.for_this_run().ca)]
    if workers:
        host, port = workers.master_bind.rsplit(":", 1)
        command += ["--master", "--expect-workers", str(workers.count), "--master-bind-host", host,
                    "--master-bind-port", port]
    elif processes > 1:  # its workers meet it on a port of its own, not Locust's 5557 that another bench may hold
        port = str(free_port())
        command += ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
                    "--master-port", port]
    return command, run_time


@dataclass(frozen=True)
class Workers:
    """Locust workers started elsewhere (other machines, or compose): the runner's Locust is their master."""

    count: int
    master_bind: str = "127.0.0.1:5557"  # where the master listens for them, host:port


def _cpu_seconds(redis: RedisServer | None) -> float:
    """CPU seconds of the bench's own redis-server so far (0 without one)."""
    try:
        t = psutil.Process(redis.pid).cpu_times() if redis is not None and redis.pid else None
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system if t else 0.0


QUIET_OPEN_S = 0.5  # how long nothing may change while a connection still counts as open


SETTLE_S = 8.0  # servers still busy this long after a run are overloaded and restart (a healthy run settles in <1 s)


def trust(servers: Sequence[Server]) -> ssl.SSLContext | None:
    """What the servers' https:// readings trust: the run's CA for a wss:// target (bench/run/certs.py)."""
    return certs.context_for(servers[0].base_url) if servers else None


def quiescent_stats(servers: Sequence[Server], timeout: float = SETTLE_S) -> tuple[dict | None, bool]:
    """The servers' summed /stats once they have finished with every message the run sent, and
    whether they did finish within `timeout`. Finished: two reads agree (messages in, deliveries,
    drops, closes) and no connection is still open: both servers count a connection closed, and
    its close code, in one step after its last received message was handed on (chat/consumers.py
    `disconnect`, fastapi_chat/app.py `relay`). While some still count as open, nothing may change
    for QUIET_OPEN_S, longer than a server busy with a backlog goes between two counter changes
    (~0.2 s for daphne after the burst scenario)."""
    return wait_quiet(lambda: read_servers([s.base_url for s in servers], context=trust(servers)), timeout=timeout,
                      quiet_s=QUIET_OPEN_S, done=lambda stats: stats["connections_open"] == 0)


def counters_probe(servers: Sequence[Server]) -> Callable[[], list[float] | None]:
    """The servers' deliveries and CPU seconds so far, and the servers' clock when they read them (`read_at`),
    as their /stats report all three in one reading, at every sample: the cost of a delivery and the servers'
    own delivery rate over the window alone (`window_counters`), with no skew between them (a busy server
    answers late, but its answer is one instant, and it says which)."""
    urls, context = [s.base_url for s in servers], trust(servers)

    def read() -> list[float] | None:
        # a server busy past the timeout: a gap, the sampler keeps its pace
        stats = read_servers(urls, timeout=0.25, context=context)
        return [stats["deliveries"], stats["cpu_seconds"], stats["read_at"]] if stats else None
    return read


@dataclass(frozen=True)
class WindowCounters:
    """What the servers' own readings around a window say: CPU µs per delivery, and deliveries per second of
    their clock (the bench's Redis and database adding their CPU over the same stretch)."""

    cpu_us_per_delivery: float
    served_per_s: float


def window_counters(samples: list[dict], start_s: float, end_s: float, sending_s: float) -> WindowCounters | None:
    """The servers' readings (`counters_probe`) around the window: the last one before it opened, once the
    members had started sending (`sending_s`: no handshake after it), else the first in it; and the last one
    in it. What a delivery costs at this load, without the handshakes before it or the members leaving after it
    (a short run's whole-run cost is mostly its members connecting), and how fast the servers delivered. None
    when the readings span less than one sample interval of it."""
    read = [(s, s["server_counters"]) for s in samples if s.get("server_counters")]
    read = [(s, c) for s, c in read if sending_s <= c[2] <= end_s]
    before = [(s, c) for s, c in read if c[2] <= start_s]
    inside = [(s, c) for s, c in read if c[2] > start_s]
    if not inside:
        return None
    (first, (d0, cpu0, t0)), (last, (d1, cpu1, t1)) = before[-1] if before else inside[0], inside[-1]
    if t1 - t0 < min(s["dt"] for s in samples) or d1 <= d0:
        return None
    backing_s = sum(s.get("backing_cpu_pct", 0.0) / 100 * s["dt"] for s in samples
                    if first["wall"] < s["wall"] <= last["wall"])
    return WindowCounters(1e6 * (cpu1 - cpu0 + backing_s) / (d1 - d0), (d1 - d0) / (t1 - t0))


@dataclass(frozen=True)
class RunCost:
    """The server CPU µs per delivery of a run, what it was taken over (ServerCost.cost_over), and the servers'
    own delivery rate over the window when their readings gave one."""

    cpu_us_per_delivery: float | None
    over: CostOver
    served_per_s: float | None = None


def server_cost(samples: list[dict], start_s: float, end_s: float, scenario: Scenario, window_received: int,
                server: dict | None) -> RunCost:
    """The window's cost from the servers' own readings (`window_counters`); else, when a saturated server
    answered none of them in time, the CPU sampled in the window over the deliveries that arrived in it
    ("sampled"); else the whole run ("run": handshakes included, most of a short run's CPU)."""
    window = window_counters(samples, start_s, end_s, start_s - scenario.warmup)
    if window is not None:
        return RunCost(window.cpu_us_per_delivery, "window", window.served_per_s)
    inside = [s["server_cpu_pct"] for s in samples if start_s <= s["wall"] <= end_s]
    if inside and window_received:
        return RunCost(1e6 * sum(inside) / len(inside) / 100 * scenario.window / window_received, "sampled")
    if server and server["deliveries"]:
        return RunCost(1e6 * server["cpu_seconds"] / server["deliveries"], "run")
    return RunCost(None, "run")


@dataclass(frozen=True)
class RunName:
    """Which run this is, as the record names it: set by who runs it (bench/run/targetrun.py)."""

    target: str = ""
    step: str = ""  # what the step overrides, as a label
    step_params: dict[str, bool | int | float | str] = field(default_factory=dict)
    repeat: int = 0
    cold_start: bool = False  # its servers were started right before it


def run_step(scenario: Scenario, servers: Sequence[Server], plan: CpuPlan, work_dir: Path, label: str,
             fault: str | None = None, redis: RedisServer | None = None, database: Database | None = None,
             sessions: Path | None = None, workers: Workers | None = None, profile_s: int = 0,
             name: RunName = RunName()) -> Run:
    """Run Locust once against `servers`; everything measured comes back, even when a server dies.

    With `redis` (the bench's own redis-server), Redis's CPU and RSS count as the servers' cost; with
    `database` (app targets) its CPU too, when the bench runs it, and members sign in with `sessions`.
    With `profile_s`, py-spy samples the server processes for that long once the window has opened.
    """
    session = RunSession(scenario, servers, plan, work_dir, label, fault or scenario.fault or None, redis, database,
                         sessions, workers, profile_s)
    session.start()
    session.measure()
    session.collect()
    return session.assemble(name)


class RunSession:
    """One run's steps in the order they happen: start (the servers' readings before, Locust, the sampler),
    measure (until Locust ends, with the fault a third into the window), collect (the servers' readings
    after, evidence, what Locust counted) and assemble (the one Run record)."""

    def __init__(self, scenario: Scenario, servers: Sequence[Server], plan: CpuPlan, work_dir: Path, label: str,
                 fault: str | None, redis: RedisServer | None, database: Database | None, sessions: Path | None,
                 workers: Workers | None, profile_s: int) -> None:
        self.scenario, self.servers, self.plan, self.fault = scenario, servers, plan, fault
        self.redis, self.database, self.profile_s = redis, database, profile_s
        self.results_path = work_dir / f"{label}.locust.json"
        self.log_path = work_dir / f"{label}.locust.log"
        self.command, self.run_time = run_command(scenario, servers, self.results_path, max(1, len(plan.client)),
                                                  sessions, workers)
        self.failure: str | None = None
        self.interrupted = False
        self.outage: RedisOutage | None = None
        self.fault_fired: float | None = None

    def start(self) -> None:
        servers, redis, database, plan = self.servers, self.redis, self.database, self.plan
        self.started = time.monotonic()
        self.before = sum_stats([s.stats() for s in servers])
        self.tcp_before = tcp_counters()
        self.log_offsets = [s.log_size() for s in servers]
        self.closures_before = len(redis.output_buffer_closures()) if redis else 0
        self.probes = {"server_counters": counters_probe(servers), **app_probes(servers, database)}
        self.at_start = {"t": 0.0, **socket_queues({s.port for s in servers}),
                         **{n: probe() for n, probe in self.probes.items()}}
        self.statements_before = database.statements() if database else None
        self.db_connections_before = _db_connections(database)  # before any member connects
        with open(self.log_path, "wb") as log:  # its own session: Ctrl-C reaches the runner, which stops it cleanly
            self.locust = subprocess.Popen(self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True,
                                           preexec_fn=lambda: os.sched_setaffinity(0, plan.client))
        self.server_pids = [p.pid for p in (*servers, redis, database) if p and p.pid]  # remote servers have none
        self.sampler = Sampler(self.server_pids, {s.port for s in servers}, self.locust.pid, set(plan.server),
                               probes=self.probes, backing_pids=[p.pid for p in (redis, database) if p and p.pid],
                               time_cpu=any(s.pid for s in servers))  # servers on another machine: not timed here
        self.sampler.start()
        self.sampling = Sampling([s.pid for s in servers if s.pid], self.profile_s, set(plan.client)) \
            if self.profile_s else None
        self.redis_cpu_before = _cpu_seconds(redis)
        self.db_cpu_before = database.cpu_seconds() if database else 0.0

    def measure(self) -> None:
        """Until Locust ends (or its deadline): fire the fault, start py-spy when the window opens, note a
        server that died."""
        scenario, servers, locust, fault = self.scenario, self.servers, self.locust, self.fault
        deadline = self.started + self.run_time + 30
        # faults strike a third into the window, judged by the server's own progress, not the clock
        fault_at = self.before["messages_in"] + scenario.offered_send_rate * (scenario.warmup + scenario.window / 3)
        window_at = self.before["messages_in"] + scenario.offered_send_rate * scenario.warmup
        sampling = self.sampling
        try:
            while locust.poll() is None:
                if time.monotonic() > deadline:
                    self.failure = self.failure or \
                        f"Locust did not stop within {self.run_time + 30:.0f}s; it was terminated"
                    break
                try:
                    read = sum_stats([s.stats() for s in servers])["messages_in"] \
                        if (fault and not self.fault_fired) or (sampling and not sampling.started) else None
                    due = fault and not self.fault_fired and all(s.alive() for s in servers) and read >= fault_at
                    if sampling and not sampling.started and read >= window_at:
                        sampling.start()
                except OSError:
                    due = False  # a server went away between the checks: the loop notices below
                if due and fault == "kill-server" and servers[0].popen:
                    servers[0].popen.kill()  # the first server process dies mid-window
                    self.fault_fired = time.time()
                if due and fault == "redis-outage" and self.redis:
                    self.outage = RedisOutage(self.redis, start=time.monotonic(), seconds=3.0)
                    self.fault_fired = time.time()
                if self.outage:
                    self.outage.tick()  # Redis stops for 3 s, then comes back empty
                    if self.outage.server.alive() and (pid := self.outage.server.pid) is not None:
                        self.sampler.track(pid, backing=True)  # the new redis-server is the servers' cost too
                dead = [s for s in servers if not s.alive()]
                if dead and self.failure is None:
                    s = dead[0]
                    self.failure = (f"{s.exit_text()} {time.monotonic() - self.started:.1f}s into the run; "
                                    f"its log ends:\n{s.log_tail(8)}")
                try:
                    locust.wait(0.2)  # returns as soon as Locust exits
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            self.interrupted = True
            self.failure = "interrupted (Ctrl-C): the run was stopped early; what it measured until then is kept"
        finally:
            if locust.poll() is None:
                locust.terminate()  # Locust writes what it measured as it quits
                try:
                    locust.wait(15)
                except subprocess.TimeoutExpired:
                    locust.kill()
            self.samples = self.sampler.stop()

    def collect(self) -> None:
        """The servers once they are done with the run, what their Redis and database cost, the evidence a loss
        is explained by, and what Locust counted."""
        servers, redis, database, outage = self.servers, self.redis, self.database, self.outage
        self.after, settled = quiescent_stats(servers) if all(s.alive() for s in servers) else (None, False)
        self.statements = statements_delta(self.statements_before, database.statements()) \
            if database is not None and self.statements_before is not None else None
        self.backing: dict[str, float] = {}  # the CPU seconds of what the servers lean on, which counts as theirs
        if redis is not None and not outage:
            self.backing["redis"] = _cpu_seconds(redis) - self.redis_cpu_before
        if database is not None:
            self.backing["database"] = database.cpu_seconds() - self.db_cpu_before
        if self.after is not None:
            self.after["cpu_seconds"] += sum(self.backing.values())
        # a server left with open connections or a backlog (stuck after a meltdown) would hand its leftovers,
        # and the drops they end in, to the next run
        self.settled = settled and self.after is not None and not self.after["connections_open"] \
            and not self.after["backlog"]
        if outage and not outage.server.alive():
            outage.server.start()  # the run ended inside the outage: the next run needs its Redis
        server_log = [line for s, offset in zip(servers, self.log_offsets, strict=True) for line in s.log_since(offset)]
        evidence: dict[str, object] = {
            "redis_outage": [{"event": e, "at": t} for e, t in outage.events] if outage else None,
            "tcp_counters": counter_delta(tcp_counters(), self.tcp_before),
            "database": {"engine": database.engine, "note": database.note,
                         "connections_before": self.db_connections_before,
                         "connections_after": _db_connections(database)} if database else None,
            "server_log": server_log,
        }
        self.redis_leg_intact = False
        if redis is not None:
            # Redis's own view of the pub/sub leg: a subscriber it closed for falling behind lost what it held
            closures = redis.output_buffer_closures()[self.closures_before:]
            evidence["redis"] = {"output_buffer_closures": closures, "after_run": snapshot(redis.url)}
            subscriber_lost = any("redis subscriber lost" in line for line in server_log)
            self.redis_leg_intact = not closures and not subscriber_lost and not self.fault
        self.evidence = Evidence.model_validate(evidence)
        self.tally = Tally()
        self.generators: list[str] = []
        if self.results_path.exists():
            measured = json.loads(self.results_path.read_text())
            self.tally.merge(measured)
            self.generators = measured.get("worker_ids") or [f"{os.uname().nodename} (local)"]
        elif self.failure is None:
            self.failure = (f"Locust exited with {self.locust.returncode} and wrote no results; its log ends:\n"
                            + _tail(self.log_path))
        if self.sampling is not None:
            self.sampling.join(self.profile_s + 60)

    def assemble(self, name: RunName) -> Run:
        """The run record, built once from everything the run measured."""
        servers, probes = self.servers, self.probes
        delta = diff(self.after, self.before) if self.after else None
        # servers on this machine are pinned to the plan's server CPUs, with their Redis and database; elsewhere
        # unknown
        cores = min(len(self.plan.server), len(self.server_pids)) if all(s.pid for s in servers) else None
        about = {
            "target": name.target, "step": name.step, "step_params": name.step_params, "repeat": name.repeat,
            "cold_start": name.cold_start,
            "duration_s": round(time.monotonic() - self.started, 1),
            "evidence": self.evidence,
            "load_generators": self.generators,
            "interrupted": self.interrupted, "server_settled": self.settled,
            "sample_interval_s": self.sampler.interval,  # the report says how often it sampled from this
            "fault": Fault(kind=self.fault, fired_at=self.fault_fired) if self.fault else None,
            "db_statements": self.statements,
            "handshakes": handshake_rate([self.at_start, *self.samples]) if "handshakes" in probes else None,
            "db_connections": db_connections([self.at_start, *self.samples], self.db_connections_before,
                                             probes["db_connections"]()) if "db_connections" in probes else None,
            "profile": layer_profile(self.sampling, delta, self.backing, f"{name.target} at {name.step}")
            if self.sampling is not None else None,
        }
        if "db_connections" in probes:
            probes["db_connections"].close()
        return summarize(self.scenario, self.tally, {**self.before, "rss_bytes": self.sampler.rss_start}, delta,
                         self.samples, self.failure, self.command, servers[0].config["max_message_bytes"],
                         self.redis_leg_intact, cores, self.backing, self.plan.speed, about)


def layer_profile(sampling: Sampling, delta: dict | None, backing: dict[str, float], title: str) -> LayerProfile:
    """The run's server CPU per delivery by layer: the server processes' own share (of the servers' /stats
    `delta`) split by py-spy's samples, Redis and the database by their own CPU (they are not Python: py-spy
    does not see them)."""
    if sampling.profile is None or delta is None or not delta["deliveries"]:
        return LayerProfile(error=sampling.error or "no deliveries to split the CPU over")
    found = sampling.profile
    own = delta["cpu_seconds"] - sum(backing.values())
    layers = profiler.per_delivery_us(profiler.attribute(found.folded), own, delta["deliveries"])
    layers.update({f"{name} server": 1e6 * cpu / delta["deliveries"] for name, cpu in backing.items()})
    return LayerProfile(layers_us=layers, basis=found.basis(), flame_svg=profiler.flame_svg(found.folded, title=title))


class Sampling(threading.Thread):
    """py-spy over the server processes (bench/run/profiler.py), in the background during a run."""

    def __init__(self, pids: list[int], seconds: int, cpus: set[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.seconds, self.cpus = pids, seconds, cpus
        self.started = False
        self.profile: profiler.Profile | None = None
        self.error: str | None = None

    def start(self) -> None:
        self.started = True
        super().start()

    def run(self) -> None:
        try:
            self.profile = profiler.profile(self.pids, self.seconds, cpus=self.cpus)
        except RuntimeError as e:
            self.error = str(e)


def _db_connections(database: Database | None) -> int | None:
    """Connections open to the chat database (PostgreSQL's own count), None when it cannot say."""
    try:
        return database.connections() if database else None
    except Exception:  # the database is the servers' to lose; the run is measured all the same
        return None


def _tail(path: Path, lines: int = 12) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def summarize(scenario: Scenario, tally: Tally, before: dict, server: dict | None, samples: list[dict],
              failure: str | None, command: list[str], max_message_bytes: int, redis_leg_intact: bool,
              cores: int | None, backing: dict[str, float], cpu_speed: CpuSpeed, about: dict[str, object]) -> Run:
    """The run record of one Locust run, built once: its measurements, the servers' /stats difference over it
    (`server`; None when a server died), the ledger, the servers' CPU speed against the bench's full speed,
    and `about` it (which run it is, its evidence; RunSession.assemble)."""
    c = tally.counters
    # the ledger reads the servers as they were when the rooms settled, before members closed
    at_settle = diff(tally.settle_stats, before) if tally.settle_stats else server
    ledger = settle(c, {
        **(at_settle or {}),
        "client_sent": c["client_sent"], "room_size": scenario.room_size,
        "message_bytes": scenario.size, "max_message_bytes": max_message_bytes,
        "redis_leg_intact": redis_leg_intact,
    })
    start_ns, end_ns = tally.window_ns
    window_samples = [s for s in samples if start_ns / 1e9 <= s["wall"] <= end_ns / 1e9] or samples
    cost = server_cost(samples, start_ns / 1e9, end_ns / 1e9, scenario, c["window_received"], server)
    arrived = c["window_received"] / scenario.window
    peak = lambda key: max((s[key] for s in samples), default=0)  # noqa: E731
    client_cpu_s = sum(s["client_cpu_pct"] / 100 * s["dt"] for s in samples)
    mean = lambda key: sum(s[key] for s in window_samples) / len(window_samples) if window_samples else None  # noqa: E731
    speed = cpu_speed.pct([s["server_cpu_spin_us"] for s in window_samples if s.get("server_cpu_spin_us")])
    client_busiest = mean("client_busiest_pct")
    seconds = sorted(int(k) for k in tally.timeline if 0 <= int(k) < scenario.window)
    return Run.model_validate({
        **about,
        "scenario": scenario.name,
        "params": scenario.params(),
        "status": "failed" if failure else "ok",
        "failure": failure,
        "offered_send_rate": scenario.offered_send_rate,
        "achieved_send_rate": c["window_sent"] / scenario.window,
        # throughput is what arrived while the window was open, not what was sent in it: an overloaded server
        # delivers the window's messages later, and they must not count as if it had kept up. Nor more than the
        # servers delivered by their own count and clock: a load generator that fell behind reads, in the
        # window, deliveries the servers made before it
        "deliveries_per_s": min(arrived, cost.served_per_s) if cost.served_per_s is not None else arrived,
        "arrived_deliveries_per_s": arrived,
        "served_deliveries_per_s": cost.served_per_s,
        "owed_deliveries_per_s": c["window_sent"] * scenario.room_size / scenario.window,
        "rtt_timeline_ms": [round(total / n / 1000, 3) if n else None
                            for total, n in (tally.rtt_timeline.get(str(s), (0, 0))
                                             for s in range(math.ceil(scenario.window)))],
        "rtt_ms": percentiles(tally.histograms["rtt"]),
        "latency_ms": percentiles(tally.histograms["latency"]),
        "connect_ms": percentiles(tally.histograms["connect"]),
        "history_ms": percentiles(tally.histograms["history"]),
        "history_received": c["history_received"],
        "handshakes_refused": family(c, "refused"),
        "handshakes_retried": family(c, "retried"),
        "negotiated": family(c, "negotiated"),
        "wire_bytes_per_delivery": c["wire_bytes_read"] / c["client_received"] if c["client_received"] else None,
        "timeline": [tally.timeline.get(str(s), 0) for s in range(seconds[-1] + 1)] if seconds else [],
        "ledger": ledger,
        "client_closes": family(c, "closed"),
        # churn: members that left on their own, and the new members that took their seats
        "membership": {k: c[k] for k in ("left", "joined_again", "connect_failed")},
        "server": {
            "delta": server,
            "cpu_us_per_delivery": cost.cpu_us_per_delivery,
            "cost_over": cost.over,
            "cpu_pct_mean": mean("server_cpu_pct"),
            "cores": cores,
            "backing_cpu_seconds": backing,
            "rss_before_bytes": before["rss_bytes"],
            "rss_peak_bytes": max([s["server_rss"] for s in samples] + [before["rss_bytes"]]),
            # what each connection costs the server while the room is up (the idle scenario's figure)
            "rss_per_connection_bytes": (max([s["server_rss"] for s in samples] + [before["rss_bytes"]])
                                         - before["rss_bytes"]) / scenario.users,
        },
        "socket_queues_peak": {k: peak(k) for k in ("server_send_q", "server_send_q_max", "server_recv_q",
                                                     "client_recv_q", "client_recv_q_max")},
        "client": {"busiest_process_cpu_pct": client_busiest,
                   "client_bound": client_busiest is not None and client_busiest >= 90.0,
                   # the load generator's real cost per message received, beside the harness's best case
                   "cpu_us_per_delivery": 1e6 * client_cpu_s / c["client_received"] if c["client_received"] else None},
        "steal_pct": {"mean": mean("steal_pct"), "max": max((s["steal_pct"] for s in samples), default=None)},
        # a window is noisy when steal or other processes took a real share of the servers' CPUs, or those
        # CPUs ran slow (what steal does not show: a shared core's other thread busy, a lower clock)
        "noise": {"other_on_server_cpus_pct": mean("server_cpus_other_pct"), "server_cpu_speed_pct": speed,
                  "noisy": (mean("steal_pct") or 0) >= NOISY_PCT or (mean("server_cpus_other_pct") or 0) >= NOISY_PCT
                  or slow_cpu(speed)},
        "samples": samples,
        "locust_command": command,
    })
