"""This process's /stats counters (serving/stats.py), with what only the Django stack knows: which server
runs it, its settings, and its rooms (the members each group has)."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import channels
import daphne
from django.conf import settings

from serving.stats import ChatStats, Identity


def _server() -> str:
    """The ASGI server running this process: only uvicorn's launcher (serve_uvicorn.py) imports uvicorn."""
    if "uvicorn" in sys.modules:
        return f"uvicorn {sys.modules['uvicorn'].__version__}"
    return f"daphne {daphne.__version__}"


@dataclass
class ChannelsStats(ChatStats):
    members_by_room: Counter[str] = field(default_factory=Counter)

    def reading(self, layer: str, backlog: int, database: str | None, db_connections: int) -> dict[str, Any]:
        identity = Identity(
            backend="django", server=f"{_server()} (channels {channels.__version__})", fanout="channels",
            layer=layer,
            config={"max_message_bytes": settings.CHAT_MAX_MESSAGE_BYTES,
                    "member_backlog": settings.CHAT_MEMBER_BACKLOG,
                    "member_backlog_bytes": settings.CHAT_MEMBER_BACKLOG_BYTES,
                    "allowed_origins": settings.CHAT_ALLOWED_ORIGINS},
            mode=settings.CHAT_APP,
            wait_for="the database thread (database_sync_to_async: one thread per process)")
        rooms = sum(1 for n in self.members_by_room.values() if n > 0)
        return self.as_json(identity, rooms, backlog, database, db_connections, workers=1)


STATS = ChannelsStats()
