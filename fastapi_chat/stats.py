"""The process's /stats counters (schema in CONTRACT.md)."""

from collections import Counter
from dataclasses import dataclass, field

import fastapi
import psutil
import uvicorn

from fastapi_chat import config

_process = psutil.Process()


@dataclass
class ChatStats:
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    rooms: int = 0
    messages_in: int = 0
    bytes_in: int = 0
    deliveries: int = 0
    bytes_out: int = 0
    drops: Counter = field(
        default_factory=lambda: Counter(backlog_full=0, send_failed=0, expired=0, redis_unavailable=0)
    )
    close_codes: Counter = field(default_factory=Counter)

    def as_json(self, backlog: int) -> dict:
        cpu = _process.cpu_times()
        return {
            "backend": "fastapi",
            "server": f"uvicorn {uvicorn.__version__} (fastapi {fastapi.__version__})",
            "fanout": config.FANOUT,
            "layer": "redis" if config.REDIS_URL else "memory",
            "pid": _process.pid,
            "config": {
                "max_message_bytes": config.MAX_MESSAGE_BYTES,
                "member_backlog": config.MEMBER_BACKLOG,
                "allowed_origins": config.ALLOWED_ORIGINS,
            },
            "connections": {
                "open": self.connections_open,
                "total": self.connections_total,
                "refused": self.connections_refused,
            },
            "rooms": self.rooms,
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "deliveries": self.deliveries,
            "bytes_out": self.bytes_out,
            "drops": dict(self.drops),
            "backlog": backlog,
            "close_codes": {str(code): n for code, n in self.close_codes.items()},
            "rss_bytes": _process.memory_info().rss,
            "cpu_seconds": cpu.user + cpu.system,
        }


STATS = ChatStats()
