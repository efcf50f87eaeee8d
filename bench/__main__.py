"""`python -m bench`: start each target, run the scenarios through Locust, write results and report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import machine, scenarios, serverproc
from bench.report import print_summary, write_report
from bench.results import ResultsFile
from bench.runner import run_step
from bench.serverproc import ROOT
from bench.targets import LOCAL_TARGETS, TARGETS


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--targets", default=",".join(LOCAL_TARGETS),
                   help=f"comma-separated, from: {', '.join(TARGETS)}")
    p.add_argument("--scenarios", default="", help="comma-separated names from bench/scenarios.toml "
                                                   "(default: the file's default suite)")
    p.add_argument("--quick", action="store_true", help="each scenario's quick variant (about two minutes)")
    p.add_argument("--repeats", type=int, default=None, help="override every scenario's repeats")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<timestamp>)")
    p.add_argument("--harness", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the load generator's own capacity first (bench/harness.py)")
    p.add_argument("--fault", choices=["kill-server"], default=None,
                   help="inject a fault in every run: kill-server kills a server process mid-run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    all_scenarios, default_suite = scenarios.load(quick=args.quick)
    names = [n for n in args.scenarios.split(",") if n] or default_suite
    targets = [TARGETS[t] for t in args.targets.split(",") if t]
    missing = [n for n in names if n not in all_scenarios]
    if missing:
        sys.exit(f"unknown scenario(s) {missing}; bench/scenarios.toml has {sorted(all_scenarios)}")
    out = args.out or ROOT / "reports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    machine.raise_fd_limit()
    plan = machine.plan_cpus()
    environment = {**machine.describe(), "cpu_plan": plan.describe()}
    results = ResultsFile(out / "results.json", environment, ["python", "-m", "bench", *argv])
    print(f"bench: results in {out}  (servers on CPUs {sorted(plan.server)}, load generator on "
          f"{sorted(plan.client)})", flush=True)
    status = "complete"
    try:
        if args.harness:
            from bench.harness import run_harness
            from bench.harness import summary as harness_summary

            print("bench: measuring the load generator itself (harness)...", flush=True)
            environment["harness"] = run_harness(seconds=2.0, repeats=3)
            results.save()
            print("bench: " + harness_summary(environment["harness"]), flush=True)
        for target in targets:
            run_target(target, [all_scenarios[n] for n in names], plan, out, results, args)
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nbench: interrupted; keeping what was measured", flush=True)
    finally:
        results.finish(status)
        paths = write_report(results.data, out)
        print_summary(results.data)
        print(f"bench: report {paths['html']}\n       markdown {paths['md']}\n       json {paths['json']}")
    return 0 if status == "complete" else 130


def run_target(target, chosen, plan, out, results, args) -> None:
    servers = None
    try:
        for scenario in chosen:
            for overrides, step in scenario.expand():
                label = " ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v:g}" for k, v in overrides.items())
                for repeat in range(args.repeats or scenario.repeats):
                    if servers is None or not all(s.alive() for s in servers):
                        if servers:
                            for s in servers:
                                s.stop()
                        servers = serverproc.start(target, out / "logs", cpus=set(plan.server))
                        results.add_target(target.name, describe_target(target, servers))
                    name = "-".join([target.name, scenario.name, label.replace("=", "").replace(" ", "-"), str(repeat)])
                    print(f"bench: {target.name:<13} {scenario.name:<8} {step.users} members in rooms of "
                          f"{step.room_size}, {step.rate:g} msg/s each, {step.size:,} B {step.kind} "
                          f"(run {repeat + 1})", flush=True)
                    started = time.monotonic()
                    run = run_step(step, servers, plan, out, name, fault=args.fault)
                    run.update(target=target.name, step=label, step_params=overrides, repeat=repeat,
                               duration_s=round(time.monotonic() - started, 1))
                    results.add_run(run)
                    print("bench:   " + one_line(run), flush=True)
                    if run["interrupted"]:
                        raise KeyboardInterrupt
                if scenario.slo_p95_ms and over_slo(results.data["runs"], target.name, scenario):
                    break  # the ramp found this target's capacity
    finally:
        for s in servers or []:
            s.stop()


def over_slo(runs: list[dict], target: str, scenario) -> bool:
    last = [r for r in runs if r["target"] == target and r["scenario"] == scenario.name][-1]
    p95 = last["rtt_ms"]["p95"]
    return last["status"] != "ok" or p95 is None or p95 > scenario.slo_p95_ms or last["ledger"]["loss_pct"] > 0


def one_line(run: dict) -> str:
    if run["status"] != "ok":
        return "FAILED: " + run["failure"].splitlines()[0]
    rtt, ledger = run["rtt_ms"], run["ledger"]
    cost = run["server"]["cpu_us_per_delivery"]
    return (f"{run['deliveries_per_s']:,.0f} deliveries/s, rtt p50 {rtt['p50']} ms p95 {rtt['p95']} ms, "
            f"loss {ledger['loss_pct']:.2f}%, server {cost or 0:.1f} us/delivery, "
            f"client {run['client']['busiest_process_cpu_pct'] or 0:.0f}% cpu, "
            f"steal {run['steal_pct']['mean'] or 0:.1f}%")


def describe_target(target, servers) -> dict:
    stats = servers[0].stats()
    return {
        "about": target.about,
        "launcher": [" ".join(s.command) for s in servers],
        "server_command": servers[0].log_tail(50).splitlines()[0] if servers[0].log_tail(50) else "",
        "env": target.env,
        "processes": target.processes,
        "server": stats["server"],
        "fanout": stats["fanout"],
        "layer": stats["layer"],
        "config": stats["config"],
    }


if __name__ == "__main__":
    sys.exit(main())
