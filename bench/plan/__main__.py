"""`python -m bench.plan reports/<timestamp>/results.json --members 50000 --room-size 30 --per-minute 1
--stored 0.5`: the server processes, cores, Redis and database CPU and memory a workload needs on each target,
from the costs a bench measured (bench/plan/__init__.py says how)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.plan import HEADROOM, Measured, Plan, Workload, memory_words, plans
from bench.record import Results


def lines(p: Plan) -> list[str]:
    """The plan of one target: a headline, then a line per figure with the run each input came from."""
    c, out = p.costs, [f"{p.target}: {p.processes:,} server process(es), {p.cores:,.1f} cores in all; binds first: "
                       f"{p.binds_first}"]

    def figure(label: str, text: str, source: Measured | None) -> None:
        if source is not None:
            out.append(f"  {label:<12} {text}  [{source.source}]")

    figure("server CPU", f"{p.server_cpu:,.2f} cores = {p.workload.deliveries_per_s:,.0f} deliveries/s × "
                         f"{c.cost_us.value:,.1f} µs", c.cost_us)
    figure("per process", f"{c.core_share.value:.0%} of a core busy at its held capacity, planned at "
                          f"{c.core_share.value * (1 - p.headroom):.0%}", c.core_share)
    if c.storage_us:
        figure("storing", f"{c.storage_us.value:,.0f} µs of server CPU per stored message", c.storage_us)
    if p.database_cpu is not None and c.database_us:
        figure("database", f"{p.database_cpu:.2f} cores at {c.database_us.value:,.0f} µs per stored message",
               c.database_us)
    if p.redis_cpu is not None and c.redis_us:
        figure("Redis", f"{p.redis_cpu:.2f} cores at {c.redis_us.value:,.1f} µs per message", c.redis_us)
    if p.memory_bytes is not None and c.idle_bytes:
        figure("memory", f"{memory_words(p.memory_bytes)}: {c.idle_bytes.value / 1024:,.0f} KiB per connection",
               c.idle_bytes)
    if p.readmit_s is not None and c.handshakes_per_s:
        figure("a restart", f"every member back in {p.readmit_s:,.0f} s at {c.handshakes_per_s.value:,.0f} "
                            "handshakes/s per process", c.handshakes_per_s)
    return out + [f"  note: {n}" for n in p.notes]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plan", description=__doc__)
    p.add_argument("results", type=Path, help="a results.json written by `python -m bench`")
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--room-size", type=int, required=True)
    p.add_argument("--per-minute", type=float, required=True, help="messages each member sends a minute")
    p.add_argument("--stored", type=float, default=0.0, help="share of messages stored, 0 to 1 (app targets)")
    p.add_argument("--reconnects-per-hour", type=float, default=0.0, help="reconnects per member an hour")
    p.add_argument("--headroom", type=float, default=HEADROOM,
                   help=f"share of each process's capacity kept free (default {HEADROOM})")
    args = p.parse_args(argv)
    if args.members < 1 or args.room_size < 1 or args.per_minute <= 0 or not 0 <= args.stored <= 1 \
            or not 0 <= args.headroom < 1:
        p.error("members and room size ≥ 1, messages a minute > 0, stored in [0, 1], headroom in [0, 1)")
    try:
        data = Results.load(args.results)
    except (OSError, ValueError) as e:
        print(f"bench.plan: cannot read {args.results}: {e}", file=sys.stderr)
        return 2
    workload = Workload("yours", args.members, args.room_size, args.per_minute / 60, args.stored,
                        args.reconnects_per_hour)
    found = plans(data, workload, args.headroom)
    if not found:
        print(f"bench.plan: {args.results} has no searched capacity to plan from (run `make bench`)", file=sys.stderr)
        return 2
    print(f"{workload.describe()}: {workload.deliveries_per_s:,.0f} deliveries/s; "
          f"from {args.results}, {args.headroom:.0%} headroom\n")
    for plan in found:
        print("\n".join(lines(plan)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
