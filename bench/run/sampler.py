"""Samples, during a run: server CPU and RSS, the load generator's CPU, the machine's steal, and
the socket queues of the servers' connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

from bench.cpu import CpuMeter
from bench.run.machine import spin_us
from bench.run.tcpstate import socket_queues


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _tree_cpu_seconds(tree: list[psutil.Process]) -> float:
    """CPU seconds of a process tree so far, its exited and reaped processes included: each process's own
    time and its waited-for children's (the kernel adds a child's times, and its reaped children's, to its
    parent's when the parent reaps it). PostgreSQL forks a backend per connection, and a pool that closes
    its overflow connections makes backends that live less than a sample: counted per live process, their
    CPU was missing from the servers' and showed as someone else's on their CPUs."""
    total = 0.0
    for p in tree:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:  # exited since the walk: its time is in its parent's next reading
            pass
    return total


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class Sampler(threading.Thread):
    """Every `interval` seconds: one sample row. CPU is a percentage of one core. Each of `probes` adds
    its reading to the row under its name (the servers' handshakes, the database's connections)."""

    def __init__(self, server_pids: list[int], server_ports: set[int], client_pid: int,
                 server_cpus: set[int], interval: float = 0.5,
                 probes: dict[str, Callable[[], object]] | None = None, time_cpu: bool = True,
                 backing_pids: list[int] | None = None) -> None:
        super().__init__(daemon=True)
        self.time_cpu = time_cpu  # the servers run here: time the first of their CPUs (machine.spin_us)
        self.probes = probes or {}
        self.server_cpus = server_cpus
        self.roots = list(server_pids)  # their process trees are walked again at every sample: a database
        self.backing = set(backing_pids or ())  # of the roots, the Redis and database the servers lean on
        self.server = [p for pid in server_pids for p in _tree(pid)]  # forks a backend per connection
        self.server_ports = server_ports
        self.rss_start = _rss(self.server)  # the baseline, from the same processes the samples cover
        self.client_pid = client_pid
        self.interval = interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def track(self, pid: int, backing: bool = False) -> None:
        """Count one more server process from now on (a Redis restarted mid-run)."""
        if pid not in self.roots:
            self.roots.append(pid)
        if backing:
            self.backing.add(pid)

    def run(self) -> None:
        machine_cpus, server_cpus = CpuMeter(), CpuMeter(self.server_cpus)
        start = last_t = time.monotonic()
        # per process (the client's, whose workers fork late) or per tree (the servers': a root that exits, a
        # Redis killed mid-run, takes only itself out of the sum)
        per_process = lambda procs: {p.pid: _cpu_seconds([p]) for p in procs}  # noqa: E731
        per_tree = lambda trees: {root: _tree_cpu_seconds(tree) for root, tree in trees.items()}  # noqa: E731
        last_server = per_tree({root: _tree(root) for root in self.roots})
        last_client: dict[int, float] = {}
        # on a fixed beat, not `interval` after each sample's work: a busy machine slows the probes (a server
        # answering /stats late, up to its 0.25 s timeout), and the samples must still come every `interval`
        beat = start + self.interval
        while not self._halt.wait(max(0.0, beat - time.monotonic())):
            beat = max(beat + self.interval, time.monotonic())
            now = time.monotonic()
            dt = now - last_t
            trees = {root: _tree(root) for root in list(self.roots)}
            self.server = [p for tree in trees.values() for p in tree]
            server = per_tree(trees)
            client = per_process(_tree(self.client_pid))  # workers fork late
            client_pct = {pid: 100 * (cpu - last_client.get(pid, cpu)) / dt for pid, cpu in client.items()}
            used = {root: max(0.0, cpu - last_server.get(root, cpu)) for root, cpu in server.items()}
            server_pct = 100 * sum(used.values()) / dt
            server_cpus_busy, steal = server_cpus.take()[0], machine_cpus.take()[1]
            self.samples.append({
                "t": round(now - start, 2),
                "dt": round(dt, 3),
                "wall": time.time(),
                "server_cpu_pct": round(server_pct, 1),
                "backing_cpu_pct": round(100 * sum(used[root] for root in self.backing if root in used) / dt, 1),
                # anything else running on the servers' CPUs: a noisy neighbour steal does not show
                "server_cpus_other_pct": round(max(0.0, server_cpus_busy - server_pct), 1),
                "server_rss": _rss(self.server),
                "client_cpu_pct": round(sum(client_pct.values()), 1),
                "client_busiest_pct": round(max(client_pct.values(), default=0.0), 1),
                "steal_pct": round(steal, 2),
                "server_cpu_spin_us": round(spin_us(min(self.server_cpus)), 1) if self.time_cpu else None,
                **socket_queues(self.server_ports),
                **{name: probe() for name, probe in self.probes.items()},
            })
            last_t, last_server, last_client = now, server, client

    def stop(self) -> list[dict]:
        self._halt.set()
        self.join(5)
        return self.samples
