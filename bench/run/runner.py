"""One measured run: a scenario step against a target's running servers, driven by Locust."""

from __future__ import annotations

import json
import math
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import ROOT, locust_command
from bench.ledger import settle
from bench.load.tally import Tally, family, percentiles
from bench.record import NOISY_PCT, SLOW_SPEED_PCT, CostOver, Evidence, Fault, LayerProfile, Run
from bench.run import profiler
from bench.run.appsamples import app_probes, db_connections, handshake_rate, statements_delta
from bench.run.database import Database
from bench.run.machine import SERVER_CPU_SPEED, CpuPlan
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


def quiescent_stats(servers: Sequence[Server], timeout: float = 15.0) -> tuple[dict | None, bool]:
    """The servers' summed /stats once they have finished with every message the run sent, and
    whether they did finish within `timeout`. Finished: two reads agree (messages in, deliveries,
    drops, closes) and no connection is still open: both servers count a connection closed, and
    its close code, in one step after its last received message was handed on (chat/consumers.py
    `disconnect`, fastapi_chat/app.py `relay`). While some still count as open, nothing may change
    for QUIET_OPEN_S, longer than a server busy with a backlog goes between two counter changes
    (~0.2 s for daphne after the burst scenario)."""
    return wait_quiet(lambda: read_servers([s.base_url for s in servers]), timeout=timeout,
                      quiet_s=QUIET_OPEN_S, done=lambda stats: stats["connections_open"] == 0)


def counters_probe(servers: Sequence[Server]) -> Callable[[], list[float] | None]:
    """The servers' deliveries and CPU seconds so far, and the servers' clock when they read them (`read_at`),
    as their /stats report all three in one reading, at every sample: the cost of a delivery and the servers'
    own delivery rate over the window alone (`window_counters`), with no skew between them (a busy server
    answers late, but its answer is one instant, and it says which)."""
    urls = [s.base_url for s in servers]

    def read() -> list[float] | None:
        stats = read_servers(urls, timeout=0.25)  # a server busy past it: a gap, the sampler keeps its pace
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


def run_step(
    scenario: Scenario,
    servers: Sequence[Server],
    plan: CpuPlan,
    work_dir: Path,
    label: str,
    fault: str | None = None,
    redis: RedisServer | None = None,
    database: Database | None = None,
    sessions: Path | None = None,
    workers: Workers | None = None,
    profile_s: int = 0,
) -> Run:
    """Run Locust once against `servers`; everything measured comes back, even when a server dies.

    With `redis` (the bench's own redis-server), Redis's CPU and RSS count as the servers' cost; with
    `database` (app targets) its CPU too, when the bench runs it, and members sign in with `sessions`.
    With `profile_s`, py-spy samples the server processes for that long once the window has opened.
    """
    fault = fault or scenario.fault or None
    results_path = work_dir / f"{label}.locust.json"
    log_path = work_dir / f"{label}.locust.log"
    processes = max(1, len(plan.client))
    command, run_time = run_command(scenario, servers, results_path, processes, sessions, workers)
    before = sum_stats([s.stats() for s in servers])
    tcp_before = tcp_counters()
    log_offsets = [s.log_size() for s in servers]
    closures_before = len(redis.output_buffer_closures()) if redis else 0
    failure = None
    probes = {"server_counters": counters_probe(servers), **app_probes(servers, database)}
    at_start = {"t": 0.0, **socket_queues({s.port for s in servers}), **{n: probe() for n, probe in probes.items()}}
    statements_before = database.statements() if database else None
    db_connections_before = _db_connections(database)  # before any member connects
    with open(log_path, "wb") as log:  # its own session: Ctrl-C reaches the runner, which stops it cleanly
        locust = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=lambda: os.sched_setaffinity(0, plan.client))
    server_pids = [p.pid for p in (*servers, redis, database) if p and p.pid]  # remote servers have none
    backing_pids = [p.pid for p in (redis, database) if p and p.pid]
    sampler = Sampler(server_pids, {s.port for s in servers}, locust.pid, set(plan.server), probes=probes,
                      backing_pids=backing_pids,
                      time_cpu=any(s.pid for s in servers))  # servers on another machine: not timed from here
    sampler.start()
    started = time.monotonic()
    deadline = started + run_time + 30
    # faults strike a third into the window, judged by the server's own progress, not the clock
    fault_at = before["messages_in"] + scenario.offered_send_rate * (scenario.warmup + scenario.window / 3)
    outage, fault_fired = None, None
    window_at = before["messages_in"] + scenario.offered_send_rate * scenario.warmup
    sampling = Sampling([s.pid for s in servers if s.pid], profile_s, set(plan.client)) if profile_s else None
    redis_cpu_before = _cpu_seconds(redis)
    db_cpu_before = database.cpu_seconds() if database else 0.0
    interrupted = False
    try:
        while locust.poll() is None:
            if time.monotonic() > deadline:
                failure = failure or f"Locust did not stop within {run_time + 30:.0f}s; it was terminated"
                break
            try:
                read = sum_stats([s.stats() for s in servers])["messages_in"] \
                    if (fault and not fault_fired) or (sampling and not sampling.started) else None
                due = fault and not fault_fired and all(s.alive() for s in servers) and read >= fault_at
                if sampling and not sampling.started and read >= window_at:
                    sampling.start()
            except OSError:
                due = False  # a server went away between the checks: the loop notices below
            if due and fault == "kill-server" and servers[0].popen:
                servers[0].popen.kill()  # the first server process dies mid-window
                fault_fired = time.time()
            if due and fault == "redis-outage" and redis:
                outage = RedisOutage(redis, start=time.monotonic(), seconds=3.0)
                fault_fired = time.time()
            if outage:
                outage.tick()  # Redis stops for 3 s, then comes back empty
                if outage.server.alive() and (pid := outage.server.pid) is not None:
                    sampler.track(pid, backing=True)  # the new redis-server is the servers' cost too
            dead = [s for s in servers if not s.alive()]
            if dead and failure is None:
                s = dead[0]
                failure = (f"{s.exit_text()} {time.monotonic() - started:.1f}s into the run; its log ends:\n"
                           f"{s.log_tail(8)}")
            try:
                locust.wait(0.2)  # returns as soon as Locust exits
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        interrupted = True
        failure = "interrupted (Ctrl-C): the run was stopped early; what it measured until then is kept"
    finally:
        if locust.poll() is None:
            locust.terminate()  # Locust writes what it measured as it quits
            try:
                locust.wait(15)
            except subprocess.TimeoutExpired:
                locust.kill()
        samples = sampler.stop()
    after, settled = quiescent_stats(servers) if all(s.alive() for s in servers) else (None, False)
    statements = statements_delta(statements_before, database.statements()) \
        if database is not None and statements_before is not None else None
    backing = {}  # the CPU seconds of what the servers lean on, which counts as theirs
    if redis is not None and not outage:
        backing["redis"] = _cpu_seconds(redis) - redis_cpu_before
    if database is not None:
        backing["database"] = database.cpu_seconds() - db_cpu_before
    if after is not None:
        after["cpu_seconds"] += sum(backing.values())
    if outage and not outage.server.alive():
        outage.server.start()  # the run ended inside the outage: the next run needs its Redis
    server_log = [line for s, offset in zip(servers, log_offsets, strict=True) for line in s.log_since(offset)]
    evidence: dict[str, object] = {
        "redis_outage": [{"event": e, "at": t} for e, t in outage.events] if outage else None,
        "tcp_counters": counter_delta(tcp_counters(), tcp_before),
        "database": {"engine": database.engine, "note": database.note, "connections_before": db_connections_before,
                     "connections_after": _db_connections(database)} if database else None,
        "server_log": server_log,
    }
    redis_leg_intact = False
    if redis is not None:
        # Redis's own view of the pub/sub leg: a subscriber it closed for falling behind lost what it held
        closures = redis.output_buffer_closures()[closures_before:]
        evidence["redis"] = {"output_buffer_closures": closures, "after_run": snapshot(redis.url)}
        subscriber_lost = any("redis subscriber lost" in line for line in server_log)
        redis_leg_intact = not closures and not subscriber_lost and not fault
    tally = Tally()
    generators: list[str] = []
    if results_path.exists():
        measured = json.loads(results_path.read_text())
        tally.merge(measured)
        generators = measured.get("worker_ids") or [f"{os.uname().nodename} (local)"]
    elif failure is None:
        failure = f"Locust exited with {locust.returncode} and wrote no results; its log ends:\n" + _tail(log_path)
    limit = servers[0].config["max_message_bytes"]
    # servers on this machine are pinned to the plan's server CPUs, with their Redis and database; elsewhere unknown
    cores = min(len(plan.server), len(server_pids)) if all(s.pid for s in servers) else None
    run = summarize(scenario, tally, {**before, "rss_bytes": sampler.rss_start}, after, samples, failure, command,
                    limit, redis_leg_intact, cores)
    # a server left with open connections or a backlog (stuck after a meltdown) would hand its leftovers,
    # and the drops they end in, to the next run
    settled = settled and after is not None and not after["connections_open"] and not after["backlog"]
    # a server still working through this run's messages would pollute the next run's figures
    run.evidence = Evidence.model_validate(evidence)
    run.server.backing_cpu_seconds = backing
    if sampling is not None:
        sampling.join(profile_s + 60)
        run.profile = layer_profile(sampling, run, backing)
    run.load_generators = generators
    run.interrupted, run.server_settled = interrupted, settled
    run.sample_interval_s = sampler.interval  # the report says how often it sampled from this, not a copy
    run.fault = Fault(kind=fault, fired_at=fault_fired) if fault else None
    run.db_statements = statements
    if "handshakes" in probes:
        run.handshakes = handshake_rate([at_start, *samples])
    if "db_connections" in probes:
        run.db_connections = db_connections([at_start, *samples], db_connections_before, probes["db_connections"]())
        probes["db_connections"].close()
    return run


def layer_profile(sampling: Sampling, run: Run, backing: dict[str, float]) -> LayerProfile:
    """The run's server CPU per delivery by layer: the server processes' own share split by py-spy's
    samples, Redis and the database by their own CPU (they are not Python: py-spy does not see them)."""
    delta = run.server.delta
    if sampling.profile is None or delta is None or not delta.deliveries:
        return LayerProfile(error=sampling.error or "no deliveries to split the CPU over")
    found = sampling.profile
    own = delta.cpu_seconds - sum(backing.values())
    layers = profiler.per_delivery_us(profiler.attribute(found.folded), own, delta.deliveries)
    layers.update({f"{name} server": 1e6 * cpu / delta.deliveries for name, cpu in backing.items()})
    return LayerProfile(layers_us=layers, basis=found.basis(),
                        flame_svg=profiler.flame_svg(found.folded, title=f"{run.target} at {run.step}"))


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


def summarize(scenario: Scenario, tally: Tally, before: dict, after: dict | None, samples: list[dict],
              failure: str | None, command: list[str], max_message_bytes: int,
              redis_leg_intact: bool = False, cores: int | None = None) -> Run:
    """The run record of one Locust run: its measurements, the servers' /stats difference, the ledger."""
    c = tally.counters
    server = diff(after, before) if after else None
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
    speed = SERVER_CPU_SPEED.pct([s["server_cpu_spin_us"] for s in window_samples if s.get("server_cpu_spin_us")])
    client_busiest = mean("client_busiest_pct")
    seconds = sorted(int(k) for k in tally.timeline if 0 <= int(k) < scenario.window)
    return Run.model_validate({
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
                  or (speed is not None and speed < SLOW_SPEED_PCT)},
        "samples": samples,
        "locust_command": command,
    })
