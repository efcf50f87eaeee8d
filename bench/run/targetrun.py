"""Running one target: its servers and database, every scenario step, and capacity searches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.record import (
    RUNS_AGAIN,
    Capacity,
    CapacityProbe,
    Results,
    Run,
    SecurityCheck,
    TargetInfo,
    ramp_edge,
    runs_again,
    searched,
)
from bench.run import database, redisctl, security, serverproc
from bench.run.capacity_search import Outcome, outcome_of, search, start_rate_from_cost
from bench.run.machine import CpuPlan
from bench.run.results import ResultsFile
from bench.run.runner import SETTLE_S, RunName, Workers, run_step
from bench.scenarios import Scenario
from bench.targets import Target


@dataclass
class Backing:
    """What the targets' servers lean on, started by the bench when it can: Redis, and the app targets'
    databases (one PostgreSQL for the whole run, started on first need; an SQLite file per target)."""

    redis: redisctl.RedisServer | None = None
    redis_url: str | None = None  # the current target's
    postgres: database.Database | None = None
    tried_postgres: bool = False

    def database_for(self, target: Target, out: Path, cpus: set[int]) -> database.Database:
        if target.database == "postgresql" and not self.tried_postgres:
            self.tried_postgres = True
            self.postgres = database.postgres(cpus)
            print(f"bench: database: {self.postgres.note if self.postgres else database.NO_POSTGRES}", flush=True)
        if target.database == "postgresql" and self.postgres:
            return self.postgres
        return database.sqlite(out, target.name)

    def stop(self) -> None:
        for service in (self.redis, self.postgres):
            if service is not None:
                service.stop()


PROFILE_MARGIN_S = 4  # a hold's py-spy stops this long before its window ends: its stacks come back in time


class TargetRun:
    """Every run of one target: its servers (restarted when a run leaves them unsettled or dead), its
    database in app mode, each scenario's steps and repeats, and capacity searches."""

    def __init__(self, target: Target, plan: CpuPlan, out: Path, results: ResultsFile, fault: str | None,
                 backing: Backing, hosts: list[str] | None = None, workers: Workers | None = None,
                 searches: int = 1, found_in: Results | None = None) -> None:
        self.target, self.plan, self.out, self.results, self.fault, self.backing = \
            target, plan, out, results, fault, backing
        self.hosts = hosts or []  # servers started elsewhere: measured, never started or stopped here
        self.workers = workers
        self.searches = searches  # times each capacity is searched: more than once, its spread (an ablation's)
        self.found_in = found_in  # an earlier bench whose capacities the `rate_at` steps run at (else this one's)
        self.tried: Counter[tuple[str, float, bool]] = Counter()  # runs per (scenario, rate, hold): file names
        self.servers: Sequence[serverproc.Server] | None = None
        self.db: database.Database | None = None
        self.sessions: Path | None = None
        self.env: dict[str, str] = {}
        self.knobs: dict[str, str] = {}  # what the running servers were started with beyond the target's env

    def run_all(self, scenarios: list[Scenario], repeats: int | None) -> None:
        if self.target.database:  # app mode: a migrated database and signed-in members for the largest scenario
            self.db = self.backing.database_for(self.target, self.out, set(self.plan.server))
            users = max(step.users for scenario in scenarios for _, step in scenario.expand())
            self.sessions = database.prepare(self.db, users, self.out / f"{self.target.name}-sessions.json")
            self.env = {"CHAT_DATABASE_URL": self.db.url}
        try:
            for scenario in scenarios:
                if scenario.search:
                    for nth in range(self.searches):
                        self.search(scenario, nth)
                    continue
                for overrides, step in scenario.expand():
                    step = self.at_capacity(step)
                    if skip := self.cannot(step):
                        print(f"bench: {self.target.name:<13} {scenario.name} {step_label(overrides)}: skipped, "
                              f"{skip}", flush=True)
                        continue
                    times = repeats or scenario.repeats
                    for repeat in range(times):
                        run = self.run(scenario, step, overrides, repeat)
                        for again in range(RUNS_AGAIN):
                            if not runs_again(run):
                                break
                            print("bench:   it broke the rule while the servers' CPU ran slow or was taken: "
                                  "once more", flush=True)
                            run = self.run(scenario, step, overrides, times + repeat * RUNS_AGAIN + again)
                    if ramp_edge(self.results.data, scenario.name, self.target.name).stopped:
                        break  # the ramp found this target's capacity
        finally:
            self.stop()

    def run(self, scenario: Scenario, step: Scenario, overrides: dict, repeat: int = 0, profile_s: int = 0) -> Run:
        """One run of `step`, recorded; the servers are (re)started first if they need to be."""
        target = self.target
        label = step_label(overrides)
        # a restart storm, and each step of a thread-pool sweep, gets servers of its own, started cold
        knobs = {"ASGI_THREADS": str(step.asgi_threads)} if step.asgi_threads else {}
        restart = step.restart or step.asgi_threads is not None or knobs != self.knobs
        cold = restart or self.servers is None or not all(s.alive() for s in self.servers)
        if cold:
            self.stop()
            if self.hosts:
                self.servers = [serverproc.RemoteServer(target, url).wait_ready() for url in self.hosts]
            else:  # ASGI_THREADS=0 leaves it unset: daphne's default
                self.servers = serverproc.start(replace(target, env={**target.env, **knobs}) if knobs else target,
                                                self.out / "logs", cpus=set(self.plan.server),
                                                redis_url=self.backing.redis_url, env=self.env)
                self.knobs = knobs
            self.results.add_target(target.name, describe_target(target, self.servers, self.backing.redis_url,
                                                                 self.env))
            if self.db and not any(c.target == target.name for c in self.results.data.security):
                self.results.add_security([SecurityCheck(target=target.name, **c) for c in
                                           security.check(self.servers[0].base_url, self.db)])
        name = "-".join([target.name, scenario.name, label.replace("=", "").replace(" ", "-"), str(repeat)])
        print(f"bench: {target.name:<13} {scenario.name:<8} {step.users} members in rooms of "
              f"{step.room_size}, {step.rate:g} msg/s each, {step.size:,} B {step.kind} "
              f"(run {repeat + 1})", flush=True)
        assert self.servers is not None  # started above if there were none (`cold`)
        run = run_step(step, self.servers, self.plan, self.out, name, fault=self.fault,
                       redis=self.backing.redis if target.needs_redis else None,
                       database=self.db, sessions=self.sessions, workers=self.workers, profile_s=profile_s,
                       name=RunName(target.name, label, overrides, repeat, cold_start=cold and not self.hosts))
        self.results.add_run(run)
        print("bench:   " + one_line(run), flush=True)
        if run.interrupted:
            raise KeyboardInterrupt
        if not run.server_settled and all(s.alive() for s in self.servers):
            print(f"bench:   the server had not finished with this run (still busy {SETTLE_S:g} s after it, or "
                  "connections or a backlog left over); restarting it so the next run starts clean", flush=True)
            self.stop()
        return run

    def search(self, scenario: Scenario, nth: int = 0) -> Capacity:
        """The capacity at the scenario's SLO: the first run, at its `rate`, measures the target's server cost
        per delivery, and the short probes go from there to what that cost allows, then grow and bisect; every
        pass or fail proposes its own next rate the same way. Holds of `scenario.hold` seconds then decide the
        edge (bench/run/capacity_search.py)."""
        cores = max(1, min(self.target.processes, len(self.plan.server)))
        slo = scenario.slo_p95_ms
        if slo is None:  # else the first probe's SLO check fails on comparing with None
            raise ValueError(f"scenario {scenario.name!r} searches a capacity but sets no slo_p95_ms")

        def measure(rate: float) -> Outcome:
            run = self.run(scenario, replace(scenario, rate=rate), {"rate": rate}, repeat=self.tried_again(
                scenario, rate, held=False))
            return outcome_of(run, slo)

        def hold(rate: float) -> Outcome:  # sampled by py-spy too: the held pass is where the CPU goes at capacity
            held = replace(scenario, rate=rate, window=scenario.hold)
            run = self.run(scenario, held, {"rate": rate, "hold": scenario.hold},
                           repeat=self.tried_again(scenario, rate, held=True),
                           profile_s=0 if self.hosts else max(1, int(scenario.hold) - PROFILE_MARGIN_S))
            return outcome_of(run, slo)

        def estimate(rate: float, outcome: Outcome) -> float | None:  # near saturation at the cost just measured
            return start_rate_from_cost(outcome.cost_us, cores, scenario.room_size, users=scenario.users,
                                        utilisation=scenario.cpu_ceiling_pct / 100 - 0.05) if outcome.cost_us else None

        start = scenario.rate
        holding = scenario.hold > 0 and scenario.holds > 0
        bracket = search(measure, start, max_rate=scenario.rate * 4096, min_rate=scenario.rate / 64,
                         max_steps=scenario.search, estimate=estimate, slo_p95_ms=slo,
                         hold=hold if holding else None, max_holds=scenario.holds)
        found = Capacity(
            target=self.target.name, scenario=scenario.name, users=scenario.users, room_size=scenario.room_size,
            slo_p95_ms=slo, passed=bracket.passed, failed=bracket.failed,
            tolerance=bracket.tolerance, converged=bracket.converged, held=bracket.held,
            hold_s=scenario.hold if holding else None, client_bound=bracket.client_bound,
            failed_first=list(bracket.failed_first), start_rate=start, verdict=bracket.verdict(),
            probes=[CapacityProbe(rate=p.rate, role=p.role, passed=p.outcome.passed, why=list(p.outcome.why))
                    for p in bracket.probes])
        self.results.add_capacity(found)
        print(f"bench: {self.target.name:<13} capacity"
              f"{f' (search {nth + 1} of {self.searches})' * (self.searches > 1)}: {found.verdict}", flush=True)
        if bracket.passed and not self.hosts and not bracket.held:  # no held pass was sampled: one more run
            profiled = replace(scenario, name=f"{scenario.name}-profile", rate=bracket.passed, slo_p95_ms=None,
                               search=0, hold=0.0, holds=0, rate_at=scenario.name,
                               about=f"the run at {scenario.name}'s capacity, its stacks sampled")
            self.run(profiled, profiled, {"rate": bracket.passed}, profile_s=max(1, int(scenario.window) - 1),
                     repeat=self.tried_again(profiled, bracket.passed, held=False))
        return found

    def tried_again(self, scenario: Scenario, rate: float, held: bool) -> int:
        """How many runs of this step ran before (a recheck, another search): the next one's files are its own."""
        key = (scenario.name, rate, held)
        self.tried[key] += 1
        return self.tried[key] - 1

    def cannot(self, step: Scenario) -> str:
        """Why this target cannot run `step` as it means ("" when it can)."""
        if self.hosts and (step.restart or step.asgi_threads is not None):
            return "it restarts the servers and these were started elsewhere"
        if step.asgi_threads is not None and not self.target.reads_asgi_threads:
            return "its server does not read ASGI_THREADS"
        if step.rate_at:  # never at `rate` instead: the record and the report would call it the capacity
            cap = self.capacity_of(step.rate_at)
            if cap is None or cap.passed is None:
                return f"no searched capacity in {step.rate_at} (not run before it, or no rate passed)"
            if (cap.users, cap.room_size) != (step.users, step.room_size):
                return (f"{step.rate_at}'s capacity is for {cap.users} members in rooms of {cap.room_size}, "
                        f"not {step.users} in rooms of {step.room_size}")
        return ""

    def capacity_of(self, scenario: str) -> Capacity | None:
        """This target's capacity in `scenario`, as the report quotes it (of several searches, the median held), in
        this bench or the earlier one it was told to run at."""
        return searched(self.found_in or self.results.data, self.target.name, scenario)

    def at_capacity(self, step: Scenario) -> Scenario:
        """A step with `rate_at` runs at the capacity this target's search of that scenario confirmed (`cannot`
        refuses it when there is none)."""
        cap = self.capacity_of(step.rate_at) if step.rate_at else None
        return replace(step, rate=cap.passed) if cap and cap.passed else step

    def stop(self) -> None:
        for s in self.servers or []:
            s.stop()
        self.servers = None


def step_label(overrides: dict) -> str:
    """What a step overrides, as its label: "rate=4 size=1,024"."""
    return " ".join(f"{k}={'yes' if v else 'no'}" if isinstance(v, bool) else f"{k}={v:,}" if isinstance(v, int)
                    else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in overrides.items())


def one_line(run: Run) -> str:
    if not run.ok:
        return "FAILED: " + (run.failure or "").splitlines()[0]
    rtt, cost = run.rtt_ms, run.server.cpu_us_per_delivery
    return (f"{run.deliveries_per_s:,.0f} deliveries/s, rtt p50 {rtt.p50} ms p95 {rtt.p95} ms, "
            f"loss {run.ledger.loss_pct:.2f}%, server {cost or 0:.1f} us/delivery, "
            f"client {run.client.busiest_process_cpu_pct or 0:.0f}% cpu, steal {run.steal_pct.mean or 0:.1f}%")


def describe_target(target: Target, servers: list, redis_url: str | None, env: dict[str, str]) -> TargetInfo:
    stats = servers[0].stats()
    started_here = all(s.popen for s in servers)
    return TargetInfo(
        stack=target.stack,
        about=target.about,
        tunes=target.tunes,
        lineage=target.lineage,
        breaks=target.breaks,
        browser=target.browser,
        tls=target.tls,
        base=target.base,
        launcher=[" ".join(s.command) for s in servers] if started_here else [],
        server_command=(servers[0].log_since(0, limit=1) or [""])[0],  # the launcher's first line
        env={**target.server_env(redis_url), **env} if started_here else {},
        processes=len(servers),
        hosts=[s.base_url for s in servers],
        server=stats["server"], fanout=stats["fanout"], layer=stats["layer"], config=stats["config"],
        patched=list(target.patched),
    )
