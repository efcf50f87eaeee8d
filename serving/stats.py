"""The /stats counters every chat server keeps (schema in CONTRACT.md), one definition for both stacks and the
reference: each fills in what only it knows (its identity, its configuration, how its rooms, backlog and
database are read)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

_process = psutil.Process()


@dataclass(frozen=True)
class Identity:
    """What a /stats reading says the server is (CONTRACT.md `/stats`)."""

    backend: str  # "django" | "fastapi" | "reference"
    server: str  # "daphne 4.2.3 (channels 4.3.2)", …
    fanout: str
    layer: str
    config: dict[str, Any]  # max_message_bytes, member_backlog, member_backlog_bytes, allowed_origins
    mode: str  # app mode: "relay" | "full"
    wait_for: str  # what a stored message waits for before its database call


@dataclass
class ChatStats:
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    messages_in: int = 0
    bytes_in: int = 0
    deliveries: int = 0
    bytes_out: int = 0
    drops: Counter[str] = field(
        default_factory=lambda: Counter(backlog_full=0, backlog_bytes=0, send_failed=0, expired=0, redis_unavailable=0)
    )
    close_codes: Counter[int] = field(default_factory=Counter)
    # App mode (CONTRACT.md, "App mode"); origin refusals are counted in relay mode too.
    messages_stored: int = 0
    store_failures: int = 0
    store_seconds: float = 0.0
    handshakes_refused: Counter[str] = field(
        default_factory=lambda: Counter(anonymous=0, forged=0, expired=0, origin=0, database=0)
    )
    # Where a stored message's time goes (CONTRACT.md "/stats `app`"): `wait` for what the stack stores through
    # (Identity.wait_for), then the `db` call itself; `storing` is a gauge.
    storing: int = 0
    stages: dict[str, list[float]] = field(default_factory=lambda: {"wait": [0.0, 0], "db": [0.0, 0]})
    loop_lag: list[float] = field(default_factory=lambda: [0.0, 0, 0.0])  # seconds late in all, wake-ups, the worst
    _watching: asyncio.Task[None] | None = None

    def stage(self, name: str, seconds: float) -> None:
        self.stages[name][0] += seconds
        self.stages[name][1] += 1

    def watch_loop(self) -> None:
        """Start measuring the event loop's lag (once, from the first connection): how late a 100 ms
        sleep wakes up is how long other work held the loop."""
        if self._watching is None:
            self._watching = asyncio.get_running_loop().create_task(self._lag())

    async def _lag(self, period: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            late = max(0.0, loop.time() - before - period)
            self.loop_lag[0] += late
            self.loop_lag[1] += 1
            self.loop_lag[2] = max(self.loop_lag[2], late)

    def refuse(self, cause: str) -> None:
        """A handshake refused before accept (HTTP 403), and why."""
        self.connections_refused += 1
        self.handshakes_refused[cause] += 1

    def as_json(self, identity: Identity, rooms: int, backlog: int, database: str | None, db_connections: int,
                workers: int) -> dict[str, Any]:
        cpu, read_at = _process.cpu_times(), time.time()
        return {
            "backend": identity.backend,
            "server": identity.server,
            "fanout": identity.fanout,
            "layer": identity.layer,
            "pid": _process.pid,
            "config": identity.config,
            "connections": {
                "open": self.connections_open,
                "total": self.connections_total,
                "refused": self.connections_refused,
            },
            "rooms": rooms,
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "deliveries": self.deliveries,
            "bytes_out": self.bytes_out,
            "drops": dict(self.drops),
            "backlog": backlog,
            "close_codes": {str(code): n for code, n in self.close_codes.items()},
            "app": {
                "mode": identity.mode,
                "database": database,
                "messages_stored": self.messages_stored,
                "store_failures": self.store_failures,
                "store_seconds": self.store_seconds,
                "handshakes_refused": dict(self.handshakes_refused),
                "db_connections_open": db_connections,
                "storing": self.storing,
                "wait_for": identity.wait_for,
                "workers": workers,
                "stages": {k: {"seconds": v[0], "count": v[1]} for k, v in self.stages.items()},
                "loop_lag": {"seconds": self.loop_lag[0], "count": self.loop_lag[1], "max": self.loop_lag[2]},
            },
            "rss_bytes": _process.memory_info().rss,
            # the server's clock at the instant it read its CPU, with the counters above (CONTRACT.md `read_at`)
            "cpu_seconds": cpu.user + cpu.system, "read_at": read_at,
        }
