"""One process: a message goes straight to this process's delivery mode."""

from __future__ import annotations

from fastapi_chat.broadcast.base import Broadcast


class MemoryBroadcast(Broadcast):
    layer = "memory"

    async def subscribe(self, room: str) -> bool:
        return True

    async def unsubscribe(self, room: str) -> None:
        pass

    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None:
        await self.local.publish(room, message, size, stored_id)
