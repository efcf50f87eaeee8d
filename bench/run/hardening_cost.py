"""What the limits against hostile clients cost on steady chat: server CPU µs per delivery with them and
as the stack ships (CHAT_HARDENING=off), on one server of each kind started side by side and run
alternately, so that the machine's drift (CPU steal comes and goes on a shared machine) falls on both."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypedDict

from bench.record import HardeningCost
from bench.run import serverproc
from bench.run.hostile import MODES
from bench.run.machine import CpuPlan
from bench.run.runner import run_step
from bench.scenarios import Scenario
from bench.targets import Target

COST_TARGETS = ("django", "fastapi")  # one per stack: daphne's limits and uvicorn's


class Load(TypedDict):
    """What the cost runs change of the steady scenario."""

    users: int
    rate: float


# 1,000 deliveries/s, below daphne's capacity on a 2-core machine: at steady's own 4,000 daphne fell behind (a
# third of the messages delivered), and a cost taken in overload spread twice as wide (460–720 µs, against 510–568)
LOAD = Load(users=100, rate=1.0)


def measure(target: Target, steady: Scenario, plan: CpuPlan, out: Path, repeats: int = 3) -> HardeningCost:
    """`repeats` runs a side (3: about a minute more than 2, and a range that means something)."""
    scenario = replace(steady, **LOAD)
    cost = HardeningCost(scenario=f"{steady.name} chat, {scenario.users} members sending {scenario.rate:g}/s each",
                         room_size=scenario.room_size)
    servers: dict[str, list] = {}
    failures: list[str] = []
    unsettled: set[str] = set()  # modes whose server was still busy with its last run, or left leftovers
    try:
        for mode in MODES:
            servers[mode] = start(target, out, mode, plan)
        for repeat in range(repeats):
            for mode in MODES:  # stock, hardened, stock, hardened...
                if mode in unsettled or not all(s.alive() for s in servers[mode]):  # this run starts clean
                    unsettled.discard(mode)
                    cost.restarts += 1
                    stop(servers.pop(mode))
                    servers[mode] = start(target, out, mode, plan, cost.restarts)
                run = run_step(scenario, servers[mode], plan, out, f"{target.name}-{scenario.name}-{mode}-{repeat}")
                us = run.server.cpu_us_per_delivery
                cost.steal_pct.append(None if run.steal_pct.mean is None else round(run.steal_pct.mean, 1))
                cost.noisy = cost.noisy or run.noise.noisy
                if not run.ok or us is None:
                    failures.append(f"{mode}: {run.failure or 'no deliveries'}"[:200])
                else:
                    getattr(cost, f"{mode}_us").append(round(us, 2))
                    print(f"bench:   {mode:<8} {us:,.1f} µs per delivery, steal {run.steal_pct.mean or 0:.1f}%"
                          + (", noisy" if run.noise.noisy else ""), flush=True)
                if not run.server_settled:
                    unsettled.add(mode)
    except serverproc.ServerFailed as failed:
        failures.append(str(failed)[:300])
    finally:
        for procs in servers.values():
            stop(procs)
    cost.error = "; ".join(failures) or None
    return cost


def start(target: Target, out: Path, mode: str, plan: CpuPlan, restarts: int = 0) -> list:
    """Servers of `mode`; a restart logs beside the servers it replaces, which keep their logs."""
    logs = out / "logs" / "cost" / (f"{mode}-restart{restarts}" if restarts else mode)
    return serverproc.start(target, logs, env=MODES[mode], cpus=set(plan.server))


def stop(procs: list) -> None:
    for proc in procs:
        proc.stop()
