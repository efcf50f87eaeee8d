"""What machine a run is on, how its CPUs are split, and how much of them the hypervisor stole."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = ("django", "channels", "daphne", "channels-redis", "fastapi", "starlette", "uvicorn", "uvloop",
            "httptools", "websockets", "locust", "gevent", "hdrhistogram", "redis", "twisted", "autobahn")
SYSCTLS = ("net/core/rmem_max", "net/core/wmem_max", "net/core/rmem_default", "net/core/wmem_default",
           "net/ipv4/tcp_rmem", "net/ipv4/tcp_wmem", "net/core/somaxconn")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe() -> dict:
    """The environment section of the results: enough to tell two runs' machines apart."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in PACKAGES},
        "sysctls": {k.replace("/", "."): (_read(f"/proc/sys/{k}") or "").replace("\t", " ") for k in SYSCTLS},
        "fd_limit": _fd_limit(),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _fd_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the bench like Ctrl-C does: its servers and Locust are stopped, what was
    measured is kept (without this, SIGTERM kills the runner and orphans its servers)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def raise_fd_limit() -> int:
    """Many connections need many descriptors: lift the soft limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the servers and the load generator may use; disjoint when there are enough."""

    server: frozenset[int]
    client: frozenset[int]

    @property
    def pinned(self) -> bool:
        return not (self.server & self.client)

    def describe(self) -> dict:
        return {"server_cpus": sorted(self.server), "client_cpus": sorted(self.client), "pinned": self.pinned,
                "note": "servers and load generator on disjoint CPUs" if self.pinned
                else "too few CPUs to separate servers from the load generator: they share"}


def plan_cpus(usable: set[int] | None = None) -> CpuPlan:
    cpus = sorted(usable if usable is not None else os.sched_getaffinity(0))
    if len(cpus) < 2:
        return CpuPlan(frozenset(cpus), frozenset(cpus))
    half = len(cpus) // 2
    return CpuPlan(frozenset(cpus[:half]), frozenset(cpus[half:]))


class CpuBusyMeter:
    """How busy some CPUs were between two reads of /proc/stat, in percent of one CPU (summed)."""

    def __init__(self, cpus: set[int]) -> None:
        self.names = {f"cpu{c}" for c in cpus}
        self.last = self._read()

    def _read(self) -> tuple[int, int]:
        busy = total = 0
        for line in (_read("/proc/stat") or "").splitlines():
            fields = line.split()
            if fields and fields[0] in self.names:
                values = [int(v) for v in fields[1:9]]
                idle = values[3] + values[4]  # idle + iowait
                busy += sum(values) - idle - values[7]  # steal is not work done here
                total += sum(values)
        return busy, total

    def percent(self) -> float:
        busy, total = self._read()
        d_busy, d_total = busy - self.last[0], total - self.last[1]
        self.last = (busy, total)
        return 100.0 * len(self.names) * d_busy / d_total if d_total > 0 else 0.0


class StealMeter:
    """CPU steal between two reads of /proc/stat, as a percentage of all CPU time."""

    def __init__(self) -> None:
        self.last = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = (_read("/proc/stat") or "cpu 0").splitlines()[0].split()[1:]
        values = [int(v) for v in fields[:8]] + [0] * (8 - len(fields[:8]))
        return values[7], sum(values)

    def percent(self) -> float:
        steal, total = self._read()
        d_steal, d_total = steal - self.last[0], total - self.last[1]
        self.last = (steal, total)
        return 100.0 * d_steal / d_total if d_total > 0 else 0.0
