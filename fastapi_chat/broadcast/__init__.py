"""Fan-out across processes, chosen by one URL (as encode/broadcaster picks its backend)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi_chat.broadcast.base import Broadcast, LocalFanout
from fastapi_chat.broadcast.memory import MemoryBroadcast


def create_broadcast(url: str, local: LocalFanout) -> Broadcast:
    """Empty URL: this process only. `redis://`, `rediss://`, `unix://`: rooms shared through Redis."""
    if not url:
        return MemoryBroadcast(local)
    if urlsplit(url).scheme in ("redis", "rediss", "unix"):
        from fastapi_chat.broadcast.redis import RedisBroadcast  # imports redis only when asked for

        return RedisBroadcast(url, local)
    raise ValueError(f"no broadcast backend for {url!r}")


__all__ = ["Broadcast", "create_broadcast"]
