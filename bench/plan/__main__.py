"""`python -m bench.plan reports/<timestamp>/results.json --members 50000 --room-size 30 --per-minute 1
--stored 0.5`: the server processes, cores, Redis and database CPU and memory a workload needs on each target,
from the costs a bench measured (bench/plan/__init__.py says how)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.plan import HEADROOM, Plan, Workload, plans
from bench.record import Results


def mib(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def cores(n: float | None) -> str:
    return "–" if n is None else f"{n:.2f}"


def lines(p: Plan) -> list[str]:
    c = p.costs
    out = [f"{p.target}: {p.processes:,} server process(es), {p.cores:,.1f} cores in all; binds first: {p.binds_first}",
           f"  server CPU   {p.server_cpu:,.2f} cores = {p.workload.deliveries_per_s:,.0f} deliveries/s × "
           f"{c.cost_us.value:,.1f} µs  [{c.cost_us.source}]",
           f"  per process  {c.core_share.value:.0%} of a core busy at its held capacity, planned at "
           f"{c.core_share.value * (1 - p.headroom):.0%}  [{c.core_share.source}]"]
    if c.storage_us:
        out.append(f"  storing      {c.storage_us.value:,.0f} µs of server CPU per stored message  "
                   f"[{c.storage_us.source}]")
    if p.database_cpu is not None and c.database_us:
        out.append(f"  database     {cores(p.database_cpu)} cores at {c.database_us.value:,.0f} µs per stored message  "
                   f"[{c.database_us.source}]")
    if p.redis_cpu is not None and c.redis_us:
        out.append(f"  Redis        {cores(p.redis_cpu)} cores at {c.redis_us.value:,.1f} µs per message  "
                   f"[{c.redis_us.source}]")
    if p.memory_bytes is not None and c.idle_bytes:
        out.append(f"  memory       {mib(p.memory_bytes)}: {c.idle_bytes.value / 1024:,.0f} KiB per connection  "
                   f"[{c.idle_bytes.source}]")
    if p.readmit_s is not None and c.handshakes_per_s:
        out.append(f"  a restart    every member back in {p.readmit_s:,.0f} s at {c.handshakes_per_s.value:,.0f} "
                   f"handshakes/s per process  [{c.handshakes_per_s.source}]")
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
