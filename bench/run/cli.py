"""`python -m bench`: start each target, run the scenarios through Locust, write results and report."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bench import ROOT, scenarios
from bench.compare.repeat import previous_bench, repeated
from bench.compare.thresholds import Threshold, check
from bench.record import Code, CodePart, Harness, RedisSetup, Results
from bench.report import print_answer, print_summary, write_report
from bench.run import codemetrics, hardening_cost, hostile, machine, reconnect, redisctl, serverproc
from bench.run.results import ResultsFile
from bench.run.runner import Workers
from bench.run.targetrun import Backing, TargetRun
from bench.targets import ABLATION_SEARCHES, BENCH_TARGETS, QUICK_TARGETS, STORMED, TARGETS, ablated


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--targets", default="",
                   help=f"comma-separated, from: {', '.join(TARGETS)} (default: {', '.join(BENCH_TARGETS)}; "
                        f"with --quick, {', '.join(QUICK_TARGETS)}; with --full, all). Redis targets run when a "
                        "Redis is available; app targets on the "
                        "bench's own PostgreSQL when it is installed, else on SQLite")
    p.add_argument("--scenarios", default="", help="comma-separated names from bench/scenarios.toml "
                                                   "(default: the file's suites)")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--quick", action="store_true", help="the quick suites (a few minutes)")
    variant.add_argument("--full", action="store_true", help="the full suites on every target (bench-full)")
    p.add_argument("--scenario-file", type=Path, default=scenarios.SCENARIO_FILE,
                   help="a scenario file of your own, in bench/scenarios.toml's format")
    p.add_argument("--repeats", type=int, default=None, help="override every scenario's repeats")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<timestamp>)")
    p.add_argument("--harness", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the load generator's own capacity first (bench/harness/loadgen.py)")
    p.add_argument("--fault", choices=["kill-server", "redis-outage"], default=None,
                   help="inject a fault in every run: a server process dies, or Redis stops for 3 s")
    p.add_argument("--hosts", default="",
                   help="comma-separated base URLs of servers started elsewhere (the replicas of the one target "
                        "--targets names): the bench starts none and reads every one's /stats; dns+URL: every "
                        "address its name resolves to is one replica (compose's scaled services)")
    p.add_argument("--expect-workers", type=int, default=0,
                   help="Locust workers started elsewhere (locust -f bench/locustfile.py --worker --master-host H): "
                        "the bench's Locust is their master and waits for this many")
    p.add_argument("--master-bind", default="127.0.0.1:5557", help="host:port the master listens on for them")
    p.add_argument("--hostile", action=argparse.BooleanOptionalAction, default=None,
                   help="measure what one hostile client does to each in-memory target, as it ships and "
                        "hardened, and what the hardening costs on steady chat (minutes; bench/run/hostile.py); "
                        "on by default with --full")
    p.add_argument("--storm", type=int, default=None, metavar="N",
                   help=f"a connection storm of N members at once on each stack's relay and app target that ran "
                        f"({', '.join(STORMED)}), stock and hardened; 0: none (default: "
                        f"{hostile.BENCH_STORM:,} in make bench, none with --quick or --scenarios; --hostile storms "
                        f"{hostile.STORM_SIZE:,})")
    p.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                   help="a reconnect storm on each stack's relay and app target that ran: 1,000 members chatting, the "
                        "server killed and started again, the members back by immediate retry and by backoff with "
                        "jitter (about a minute each; bench/run/reconnect.py); on by default with --full")
    p.add_argument("--searches", type=at_least_one, default=None, metavar="N",
                   help="search each capacity N times, for its spread (default: with --full, "
                        f"{ABLATION_SEARCHES} for each target an ablation table compares, else once)")
    p.add_argument("--at-capacities", type=Path, default=None, metavar="RESULTS",
                   help="run the steps set at a searched capacity (confirm, threads) at the capacities an earlier "
                        "bench's results.json found, not this run's: e.g. --scenarios confirm holds make bench's "
                        "capacities again for 20 s each")
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help="a threshold that fails the run (exit 1) once it is measured, e.g. loss>0.5, steady.p95>250, "
                        "capacity<4000, regression>10 with --baseline (bench/compare/thresholds.py); repeatable")
    p.add_argument("--baseline", type=Path, default=None,
                   help="an earlier results.json for regression thresholds and the report's 'Repeated' table "
                        "(default: the previous bench of the same targets in reports/)")
    return p.parse_args(argv)


def at_least_one(text: str) -> int:
    if (n := int(text)) < 1:
        raise argparse.ArgumentTypeError(f"{n}: at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:  # a bad threshold or baseline is refused before anything runs
        gates = [Threshold.parse(t) for t in args.fail_on]
        baseline = Results.load(args.baseline) if args.baseline else None
        found_in = Results.load(args.at_capacities) if args.at_capacities else None
    except (OSError, ValueError) as e:
        sys.exit(f"bench: {e}")
    variant = "quick" if args.quick else "full" if args.full else ""
    all_scenarios, suites = scenarios.load(variant, path=args.scenario_file)
    chosen = [n for n in args.scenarios.split(",") if n]
    names = [t for t in args.targets.split(",") if t] or \
        (list(TARGETS) if args.full else QUICK_TARGETS if args.quick else BENCH_TARGETS)
    unknown = [n for n in chosen if n not in all_scenarios] + [t for t in names if t not in TARGETS]
    if unknown:
        sys.exit(f"unknown {unknown}; scenarios: {sorted(all_scenarios)}; targets: {sorted(TARGETS)}")
    targets = [TARGETS[t] for t in names]
    ablation = ablated(names)
    hosts = [url for h in args.hosts.split(",") if h.strip() for url in serverproc.replicas(h.strip())]
    if hosts and len(targets) != 1:
        sys.exit("bench: --hosts are the replicas of one target: name it with --targets")
    workers = Workers(args.expect_workers, args.master_bind) if args.expect_workers else None
    out = args.out or ROOT / "reports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    machine.raise_fd_limit()
    machine.stop_on_sigterm()
    plan = machine.plan_cpus()
    environment = {**machine.describe(), "cpu_plan": plan.describe()}
    results = ResultsFile(out / "results.json", environment, ["python", "-m", "bench", *argv])
    results.set_code(Code(parts=[CodePart(**row) for row in codemetrics.measure()],
                          sign_in=codemetrics.sign_in_sources()))
    print(f"bench: results in {out}  (servers on CPUs {sorted(plan.server)}, load generator on "
          f"{sorted(plan.client)})", flush=True)
    backing = Backing()
    status = "crashed"  # until the last target is done; an exception still writes what was measured
    try:
        if any(t.needs_redis for t in targets):
            backing.redis, setup = provide_redis(out, plan)
            results.set_environment(redis=setup)
            print(f"bench: redis: {setup.note}", flush=True)
            if not setup.url:
                targets = [t for t in targets if not t.needs_redis]
        if args.harness:
            from bench.harness import run_harness
            from bench.harness import summary as harness_summary

            print("bench: measuring the load generator itself (harness)...", flush=True)
            harness = run_harness(seconds=2.0, repeats=3)  # its own dict (and --json), typed here for the record
            results.set_environment(harness=Harness.model_validate(harness))
            print("bench: " + harness_summary(harness), flush=True)
        for target in targets:
            names = chosen or suites[target.kind]
            # a Redis outage needs the bench's own Redis to stop; elsewhere it could not be injected
            can_stop_redis = target.needs_redis and backing.redis is not None
            plan_for_target = [all_scenarios[n] for n in names
                               if all_scenarios[n].fault != "redis-outage" or can_stop_redis]
            redis = results.environment.redis
            backing.redis_url = redis.url if redis and target.needs_redis else None
            searches = args.searches or (ABLATION_SEARCHES if args.full and target.name in ablation else 1)
            TargetRun(target, plan, out, results, args.fault, backing, hosts, workers, searches, found_in).run_all(
                plan_for_target, args.repeats)
        storm = args.storm if args.storm is not None else 0 if variant or chosen else hostile.BENCH_STORM
        if args.full if args.hostile is None else args.hostile:
            measure_hostile(targets, out, results, plan, all_scenarios.get("steady"))
        elif storm:
            measure_storms(targets, out, results, storm)
        if args.full if args.reconnect is None else args.reconnect:
            measure_reconnects(targets, out, results)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nbench: interrupted; keeping what was measured", flush=True)
    finally:
        backing.stop()
        results.finish(status)
        if status == "complete" and (against := args.baseline or previous_bench(out, results.data)):
            results.set_repeated(repeated(results.data, baseline or Results.load(against), shown(against)))
        paths = write_report(results.data, out)
        print_summary(results.data)
        print_answer(results.data)
        print(f"\nbench: report {paths['html']}\n       markdown {paths['md']}\n       json {paths['json']}")
    if status != "complete":
        return 130
    failed = check(gates, results.data, baseline)
    for f in failed:
        print(f"bench: threshold FAILED {f}", flush=True)
    return 1 if failed else 0


def shown(path: Path) -> str:
    """A results file as the report names it: from the project's root when it lies under it."""
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def measure_hostile(targets: list, out: Path, results: ResultsFile, plan: machine.CpuPlan, steady) -> None:
    """Each in-memory target against one hostile client at a time, stock and hardened (fresh servers), and
    on one target per stack what the hardening costs on steady chat."""
    for target in (t for t in targets if t.name in hostile.IN_MEMORY or t.name in STORMED or t.tls):
        # an app target's storm alone: sessions looked up under it; over wss:// the storm alone: what TLS does to a
        # storm's handshakes (CONTRACT.md "As browsers connect")
        only = hostile.FIGURES if target.name in hostile.IN_MEMORY else ("storm",)
        print(f"bench: {target.name:<13} hostile clients, {' and '.join(hostile.modes(target.name))} "
              f"({', '.join(only)})...", flush=True)
        record = asyncio.run(hostile.measure_target(target.name, out / "logs" / "hostile" / target.name, only=only))
        results.set_hostile(target.name, record)
        if steady and target.name in hardening_cost.COST_TARGETS:
            print(f"bench: {target.name:<13} {steady.name} chat, hardening off and on, alternately...", flush=True)
            results.set_hostile(target.name, record.model_copy(
                update={"cost": hardening_cost.measure(target, steady, plan, out)}))


def measure_storms(targets: list, out: Path, results: ResultsFile, size: int) -> None:
    """A connection storm of `size` on each stack's relay and app target that ran, stock and hardened."""
    for target in (t for t in targets if t.name in STORMED):
        print(f"bench: {target.name:<13} a storm of {size:,} handshakes, {' and '.join(hostile.modes(target.name))}"
              "...", flush=True)
        results.set_hostile(target.name, asyncio.run(hostile.measure_target(
            target.name, out / "logs" / "storm" / target.name, storm_size=size, only=("storm",))))


def measure_reconnects(targets: list, out: Path, results: ResultsFile) -> None:
    """A reconnect storm per policy on each stack's plain and app target (bench/run/reconnect.py), fresh servers
    (and database) each."""
    for target in (t for t in targets if t.name in STORMED):
        for policy in reconnect.POLICIES:
            print(f"bench: {target.name:<13} reconnect storm, {reconnect.MEMBERS:,} members, {policy}...", flush=True)
            results.add_reconnect(asyncio.run(reconnect.storm(target.name, reconnect.MEMBERS, policy,
                                                              out / "logs" / "reconnect" / f"{target.name}-{policy}")))


def provide_redis(out: Path, plan: machine.CpuPlan) -> tuple[redisctl.RedisServer | None, RedisSetup]:
    """The bench's own redis-server when the binary is here (its CPU counts in the servers' cost and
    outages can be injected), else the Redis at CHAT_REDIS_URL if one answers, else none."""
    if redisctl.redis_server_binary():
        redis = redisctl.RedisServer(log_dir=out / "logs", cpus=set(plan.server)).start()
        return redis, RedisSetup(url=redis.url, owned=True,
                                 note=f"the bench's own redis-server at {redis.url}, on the servers' CPUs")
    url = redisctl.redis_url()
    if redisctl.ping(url):
        return None, RedisSetup(url=url, owned=False,
                                note=f"external Redis at {url}: its CPU is not in the servers' cost; no outage runs")
    return None, RedisSetup(url=None, owned=False,
                            note="no Redis, so the Redis targets are skipped. " + redisctl.HOW_TO_GET_REDIS)


if __name__ == "__main__":
    sys.exit(main())
