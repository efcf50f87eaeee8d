"""The process's /stats counters (schema in CONTRACT.md)."""

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import channels
import daphne
import psutil
from django.conf import settings

_process = psutil.Process()


def _server() -> str:
    """The ASGI server running this process: only uvicorn's launcher (serve_uvicorn.py) imports uvicorn."""
    if "uvicorn" in sys.modules:
        return f"uvicorn {sys.modules['uvicorn'].__version__}"
    return f"daphne {daphne.__version__}"


@dataclass
class ChatStats:
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    members_by_room: Counter = field(default_factory=Counter)
    messages_in: int = 0
    bytes_in: int = 0
    deliveries: int = 0
    bytes_out: int = 0
    drops: Counter = field(
        default_factory=lambda: Counter(backlog_full=0, backlog_bytes=0, send_failed=0, expired=0, redis_unavailable=0)
    )
    close_codes: Counter = field(default_factory=Counter)
    # App mode (CONTRACT.md, "App mode"); origin refusals are counted in relay mode too.
    messages_stored: int = 0
    store_failures: int = 0
    store_seconds: float = 0.0
    handshakes_refused: Counter = field(
        default_factory=lambda: Counter(anonymous=0, forged=0, expired=0, origin=0, database=0)
    )
    # Where a stored message's time goes (CONTRACT.md "/stats `app`"): `wait` for the one thread every
    # database_sync_to_async call runs in, then the `db` call itself; `storing` is a gauge.
    storing: int = 0
    stages: dict = field(default_factory=lambda: {"wait": [0.0, 0], "db": [0.0, 0]})
    loop_lag: list = field(default_factory=lambda: [0.0, 0, 0.0])  # seconds late in all, wake-ups, the worst
    _watching: asyncio.Task | None = None

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

    def as_json(self, layer: str, backlog: int, database: str | None, db_connections: int) -> dict:
        cpu, read_at = _process.cpu_times(), time.time()
        return {
            "backend": "django",
            "server": f"{_server()} (channels {channels.__version__})",
            "fanout": "channels",
            "layer": layer,
            "pid": _process.pid,
            "config": {
                "max_message_bytes": settings.CHAT_MAX_MESSAGE_BYTES,
                "member_backlog": settings.CHAT_MEMBER_BACKLOG,
                "member_backlog_bytes": settings.CHAT_MEMBER_BACKLOG_BYTES,
                "allowed_origins": settings.CHAT_ALLOWED_ORIGINS,
            },
            "connections": {
                "open": self.connections_open,
                "total": self.connections_total,
                "refused": self.connections_refused,
            },
            "rooms": sum(1 for n in self.members_by_room.values() if n > 0),
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "deliveries": self.deliveries,
            "bytes_out": self.bytes_out,
            "drops": dict(self.drops),
            "backlog": backlog,
            "close_codes": {str(code): n for code, n in self.close_codes.items()},
            "app": {
                "mode": settings.CHAT_APP,
                "database": database,
                "messages_stored": self.messages_stored,
                "store_failures": self.store_failures,
                "store_seconds": self.store_seconds,
                "handshakes_refused": dict(self.handshakes_refused),
                "db_connections_open": db_connections,
                "storing": self.storing,
                "wait_for": "the database thread (database_sync_to_async: one thread per process)",
                "workers": 1,
                "stages": {k: {"seconds": v[0], "count": v[1]} for k, v in self.stages.items()},
                "loop_lag": {"seconds": self.loop_lag[0], "count": self.loop_lag[1], "max": self.loop_lag[2]},
            },
            "rss_bytes": _process.memory_info().rss,
            "cpu_seconds": cpu.user + cpu.system, "read_at": read_at,
        }


STATS = ChatStats()
