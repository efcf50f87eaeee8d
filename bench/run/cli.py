"""`python -m bench`: start each target, run the scenarios through Locust, write results and report."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import ROOT, scenarios
from bench.compare.thresholds import Threshold, check
from bench.record import Results, Run, TargetInfo, within_slo
from bench.report import print_summary, write_report
from bench.run import database, machine, redisctl, serverproc
from bench.run.results import ResultsFile
from bench.run.runner import run_step
from bench.targets import LOCAL_TARGETS, REDIS_TARGETS, TARGETS, Target


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--targets", default=",".join(LOCAL_TARGETS + REDIS_TARGETS),
                   help=f"comma-separated, from: {', '.join(TARGETS)} (Redis targets run when a Redis is "
                        "available, the in-memory ones always)")
    p.add_argument("--scenarios", default="", help="comma-separated names from bench/scenarios.toml "
                                                   "(default: the file's suites)")
    p.add_argument("--quick", action="store_true", help="the quick suites (a few minutes)")
    p.add_argument("--scenario-file", type=Path, default=scenarios.SCENARIO_FILE,
                   help="a scenario file of your own, in bench/scenarios.toml's format")
    p.add_argument("--repeats", type=int, default=None, help="override every scenario's repeats")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<timestamp>)")
    p.add_argument("--harness", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the load generator's own capacity first (bench/harness/loadgen.py)")
    p.add_argument("--fault", choices=["kill-server", "redis-outage"], default=None,
                   help="inject a fault in every run: a server process dies, or Redis stops for 3 s")
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help="a threshold that fails the run (exit 1) once it is measured, e.g. loss>0.5, steady.p95>250, "
                        "capacity<4000, regression>10 with --baseline (bench/compare/thresholds.py); repeatable")
    p.add_argument("--baseline", type=Path, default=None, help="an earlier results.json for regression thresholds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:  # a bad threshold or baseline is refused before anything runs
        gates = [Threshold.parse(t) for t in args.fail_on]
        baseline = Results.load(args.baseline) if args.baseline else None
    except (OSError, ValueError) as e:
        sys.exit(f"bench: {e}")
    all_scenarios, suites = scenarios.load(quick=args.quick, path=args.scenario_file)
    chosen = [n for n in args.scenarios.split(",") if n]
    unknown = [n for n in chosen if n not in all_scenarios] + [t for t in args.targets.split(",") if t not in TARGETS]
    if unknown:
        sys.exit(f"unknown {unknown}; scenarios: {sorted(all_scenarios)}; targets: {sorted(TARGETS)}")
    targets = [TARGETS[t] for t in args.targets.split(",")]
    out = args.out or ROOT / "reports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    machine.raise_fd_limit()
    machine.stop_on_sigterm()
    plan = machine.plan_cpus()
    environment = {**machine.describe(), "cpu_plan": plan.describe()}
    results = ResultsFile(out / "results.json", environment, ["python", "-m", "bench", *argv])
    print(f"bench: results in {out}  (servers on CPUs {sorted(plan.server)}, load generator on "
          f"{sorted(plan.client)})", flush=True)
    backing = Backing()
    status = "crashed"  # until the last target is done; an exception still writes what was measured
    try:
        if any(t.needs_redis for t in targets):
            backing.redis, results.environment.redis = provide_redis(out, plan)
            results.save()
            print(f"bench: redis: {results.environment.redis['note']}", flush=True)
            if not results.environment.redis["url"]:
                targets = [t for t in targets if not t.needs_redis]
        if args.harness:
            from bench.harness import run_harness
            from bench.harness import summary as harness_summary

            print("bench: measuring the load generator itself (harness)...", flush=True)
            results.environment.harness = run_harness(seconds=2.0, repeats=3)
            results.save()
            print("bench: " + harness_summary(results.environment.harness), flush=True)
        for target in targets:
            kind = "redis" if target.needs_redis else "app" if target.database else "local"
            names = chosen or suites[kind]
            # a Redis outage needs the bench's own Redis to stop; elsewhere it could not be injected
            can_stop_redis = target.needs_redis and backing.redis is not None
            plan_for_target = [all_scenarios[n] for n in names
                               if all_scenarios[n].fault != "redis-outage" or can_stop_redis]
            backing.redis_url = (results.environment.redis or {}).get("url") if target.needs_redis else None
            run_target(target, plan_for_target, plan, out, results, args, backing)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nbench: interrupted; keeping what was measured", flush=True)
    finally:
        backing.stop()
        results.finish(status)
        paths = write_report(results.data, out)
        print_summary(results.data)
        print(f"bench: report {paths['html']}\n       markdown {paths['md']}\n       json {paths['json']}")
    if status != "complete":
        return 130
    failed = check(gates, results.data, baseline)
    for f in failed:
        print(f"bench: threshold FAILED {f}", flush=True)
    return 1 if failed else 0


def provide_redis(out: Path, plan: machine.CpuPlan) -> tuple[redisctl.RedisServer | None, dict]:
    """The bench's own redis-server when the binary is here (its CPU counts in the servers' cost and
    outages can be injected), else the Redis at CHAT_REDIS_URL if one answers, else none."""
    if redisctl.redis_server_binary():
        redis = redisctl.RedisServer(log_dir=out / "logs", cpus=set(plan.server)).start()
        return redis, {"url": redis.url, "owned": True,
                       "note": f"the bench's own redis-server at {redis.url}, on the servers' CPUs"}
    url = redisctl.redis_url()
    if redisctl.ping(url):
        return None, {"url": url, "owned": False,
                      "note": f"external Redis at {url}: its CPU is not in the servers' cost; no outage runs"}
    return None, {"url": None, "owned": False,
                  "note": "no Redis, so the Redis targets are skipped. " + redisctl.HOW_TO_GET_REDIS}


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


def run_target(target: Target, chosen, plan, out, results, args, backing: Backing) -> None:
    servers = None
    redis_url, db, sessions, env = backing.redis_url, None, None, {}
    if target.database:  # app mode: a migrated database and signed-in members for the largest scenario
        db = backing.database_for(target, out, set(plan.server))
        users = max(step.users for scenario in chosen for _, step in scenario.expand())
        sessions = database.prepare(db, users, out / f"{target.name}-sessions.json")
        env = {"CHAT_DATABASE_URL": db.url}
    try:
        for scenario in chosen:
            for overrides, step in scenario.expand():
                label = " ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v:g}" if isinstance(v, float)
                                 else f"{k}={v}" for k, v in overrides.items())  # e.g. kind=text
                for repeat in range(args.repeats or scenario.repeats):
                    if servers is None or not all(s.alive() for s in servers):
                        for s in servers or []:
                            s.stop()
                        servers = serverproc.start(target, out / "logs", cpus=set(plan.server), redis_url=redis_url,
                                                   env=env)
                        results.add_target(target.name, describe_target(target, servers, redis_url, env))
                    name = "-".join([target.name, scenario.name, label.replace("=", "").replace(" ", "-"), str(repeat)])
                    print(f"bench: {target.name:<13} {scenario.name:<8} {step.users} members in rooms of "
                          f"{step.room_size}, {step.rate:g} msg/s each, {step.size:,} B {step.kind} "
                          f"(run {repeat + 1})", flush=True)
                    started = time.monotonic()
                    run = run_step(step, servers, plan, out, name, fault=args.fault,
                                   redis=backing.redis if target.needs_redis else None,
                                   database=db, sessions=sessions)
                    run.target, run.step, run.step_params, run.repeat = target.name, label, overrides, repeat
                    run.duration_s = round(time.monotonic() - started, 1)
                    results.add_run(run)
                    print("bench:   " + one_line(run), flush=True)
                    if run.interrupted:
                        raise KeyboardInterrupt
                    if not run.server_settled and all(s.alive() for s in servers):
                        print("bench:   the server had not finished with this run (still busy 15 s after it, or "
                              "connections or a backlog left over); restarting it so the next run starts clean",
                              flush=True)
                        for s in servers:
                            s.stop()
                        servers = None
                if scenario.slo_p95_ms and over_slo(results.data.runs, target.name, scenario):
                    break  # the ramp found this target's capacity
    finally:
        for s in servers or []:
            s.stop()


def over_slo(runs: list[Run], target: str, scenario) -> bool:
    """Whether the step just run is past the SLO, by the rule the report's capacity uses: any of its runs."""
    mine = [r for r in runs if r.target == target and r.scenario == scenario.name]
    return any(not within_slo(r, scenario.slo_p95_ms) for r in mine if r.step == mine[-1].step)


def one_line(run: Run) -> str:
    if not run.ok:
        return "FAILED: " + (run.failure or "").splitlines()[0]
    rtt, cost = run.rtt_ms, run.server.cpu_us_per_delivery
    return (f"{run.deliveries_per_s:,.0f} deliveries/s, rtt p50 {rtt.p50} ms p95 {rtt.p95} ms, "
            f"loss {run.ledger.loss_pct:.2f}%, server {cost or 0:.1f} us/delivery, "
            f"client {run.client.busiest_process_cpu_pct or 0:.0f}% cpu, steal {run.steal_pct.mean or 0:.1f}%")


def describe_target(target: Target, servers: list[serverproc.ServerProcess], redis_url: str | None,
                    env: dict[str, str]) -> TargetInfo:
    stats = servers[0].stats()
    return TargetInfo(
        about=target.about,
        launcher=[" ".join(s.command) for s in servers],
        server_command=(servers[0].log_since(0, limit=1) or [""])[0],  # the launcher's first line
        env={**target.server_env(redis_url), **env},
        processes=target.processes,
        server=stats["server"], fanout=stats["fanout"], layer=stats["layer"], config=stats["config"],
        patched=list(target.patched),
    )


if __name__ == "__main__":
    sys.exit(main())
