"""CPU time as the kernel counts it, per CPU: how busy some CPUs were and how much the hypervisor stole.
Pure and shared: the orchestrator's sampler and the load generator's self-benchmark both read it."""

from __future__ import annotations

import psutil


def cpu_ticks(cpus: set[int] | None = None) -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds so far of `cpus` (every CPU when None), from psutil.
    Busy leaves out idle, iowait and steal: time stolen by the hypervisor is not work done here."""
    times = psutil.cpu_times(percpu=True)
    busy = steal = total = 0.0
    for index, t in enumerate(times):
        if cpus is not None and index not in cpus:
            continue
        idle = t.idle + t.iowait
        all_of_it = t.user + t.nice + t.system + idle + t.irq + t.softirq + t.steal
        busy, steal, total = busy + all_of_it - idle - t.steal, steal + t.steal, total + all_of_it
    return busy, steal, total


def steal_pct(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """CPU steal between two `cpu_ticks`, as a percentage of those CPUs' time."""
    total = after[2] - before[2]
    return 100.0 * (after[1] - before[1]) / total if total > 0 else 0.0


class CpuMeter:
    """How busy some CPUs were (percent of one CPU, summed) and how much was stolen (percent of
    their time), between two calls of `take`."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        self.cpus = cpus
        # cpu_count is None when undetermined: then count the CPUs that cpu_ticks sums over
        self.count = len(cpus) if cpus is not None else psutil.cpu_count() or len(psutil.cpu_times(percpu=True))
        self.last = cpu_ticks(cpus)

    def take(self) -> tuple[float, float]:
        now = cpu_ticks(self.cpus)
        busy, total = now[0] - self.last[0], now[2] - self.last[2]
        stolen = steal_pct(self.last, now)
        self.last = now
        return (100.0 * self.count * busy / total if total > 0 else 0.0), stolen
