"""What machine a run is on, how its CPUs are split, how much of them the hypervisor stole, and how fast
they ran."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench import ROOT
from bench.record import CpuPinning

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
        "code": code_version(),
    }


def code_version() -> str | None:
    """The commit measured, and whether the checkout had changes beside it (None: not a git checkout)."""
    git = lambda *args: subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)  # noqa: E731
    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:  # no git
        return None
    return head.stdout.strip() + ("+changes" if changed else "") if head.returncode == 0 else None


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


_started_fd_limit: int | None = None  # the soft limit before raise_fd_limit lifted it


def raise_fd_limit() -> int:
    """Many connections need many descriptors: lift the soft limit to the hard one (the one it had is kept
    for stock servers, shipped_fd_limit)."""
    import resource

    global _started_fd_limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _started_fd_limit is None:
        _started_fd_limit = soft
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def shipped_fd_limit() -> int:
    """The soft fd limit the bench was started with: a server as it ships (CHAT_HARDENING=off) raises none,
    so it runs at this one, not at the bench's raised limit."""
    import resource

    return _started_fd_limit if _started_fd_limit is not None else resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the servers and the load generator may use; disjoint when there are enough. One per bench: its
    `speed` measures every run's server CPUs against the same full speed."""

    server: frozenset[int]
    client: frozenset[int]
    speed: CpuSpeed = field(default_factory=lambda: CpuSpeed(), compare=False)

    @property
    def pinned(self) -> bool:
        return not (self.server & self.client)

    def describe(self) -> CpuPinning:
        return CpuPinning(server_cpus=sorted(self.server), client_cpus=sorted(self.client), pinned=self.pinned,
                          note="servers and load generator on disjoint CPUs" if self.pinned
                          else "too few CPUs to separate servers from the load generator: they share")


def plan_cpus(usable: set[int] | None = None) -> CpuPlan:
    cpus = sorted(usable if usable is not None else os.sched_getaffinity(0))
    if len(cpus) < 2:
        return CpuPlan(frozenset(cpus), frozenset(cpus))
    half = len(cpus) // 2
    return CpuPlan(frozenset(cpus[:half]), frozenset(cpus[half:]))


SPIN = 10_000  # iterations of the speed probe's loop: ~0.5 ms of a core at this machine's best


def spin_us(cpu: int) -> float:
    """The CPU time (µs) a fixed bit of pure Python takes on `cpu`. It grows when the CPU itself runs slower
    (a shared core's other thread busy, a lower clock: a neighbour that steal time does not show), not when
    the thread waits for it. On this project's 2-vCPU machine it ranged ×1.9 seconds apart, idle."""
    mask = os.sched_getaffinity(0)  # of this thread alone (Linux)
    os.sched_setaffinity(0, {cpu})
    try:
        start, total = time.thread_time_ns(), 0
        for i in range(SPIN):
            total += i
        return (time.thread_time_ns() - start) / 1e3
    finally:
        os.sched_setaffinity(0, mask)


SLOWEST = 3.0  # × full speed: a probe slower than this was interrupted, not slowed, and counts as this slow


class CpuSpeed:
    """The servers' CPU speed through a bench: the machine at full speed, taken as the first quartile of every
    probe the bench has timed so far (the very fastest is a fluke), over a run's mean probe time. A run is judged
    when it ends, against the runs before it: the first runs set full speed for the rest.

    The mean, not the median: the servers' work spreads over the window, so the share of it their CPU could do
    is time-weighted. Here a probe reads either full speed or about half (a shared core's other thread busy in
    bursts), and a median reads a CPU slow for 40% of a window at full speed. Over 25 sets of three or more
    holds of one target at one load, the cost per delivery's coefficient of variation (the sets' median) was 11%
    raw, 11% scaled by the median's speed and 5% by the mean's."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def pct(self, spins_us: list[float]) -> float | None:
        """A run's speed as a percentage of full speed, this run's probes included in what full speed is."""
        if not spins_us:
            return None
        self.seen += spins_us
        # inclusive: never faster than the fastest probe (the exclusive method extrapolates below it)
        full_speed_us = statistics.quantiles(self.seen, n=4, method="inclusive")[0] if len(self.seen) >= 2 \
            else self.seen[0]
        mean_us = statistics.fmean(min(spin, SLOWEST * full_speed_us) for spin in spins_us)
        return round(min(100.0, 100.0 * full_speed_us / mean_us), 1)


