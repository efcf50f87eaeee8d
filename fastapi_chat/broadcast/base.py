"""The fan-out interface: how a member's message reaches every member of its room, in this process
and in the others. Implementations: memory.py (one process), redis.py (processes sharing Redis)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


class LocalFanout(Protocol):
    """This process's rooms and delivery mode (fastapi_chat.fanout: `queued` or `seed`)."""

    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None: ...


class Broadcast(ABC):
    layer: str  # /stats "layer"

    def __init__(self, local: LocalFanout) -> None:
        self.local = local

    @abstractmethod
    async def subscribe(self, room: str) -> bool:
        """A member is about to join `room` here. True once every message published to the room
        from now on will reach this process; False if that cannot be promised (Redis unreachable)."""

    @abstractmethod
    async def unsubscribe(self, room: str) -> None:
        """A member of `room` has left (after a successful subscribe)."""

    @abstractmethod
    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None:
        """Deliver an ASGI `websocket.send` message of `size` payload bytes to every member of `room`.
        `stored_id`: app mode's row id, so that a member just sent its history is not sent it twice
        (this process only: Redis carries the payload alone)."""
