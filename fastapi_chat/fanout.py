"""Who is in which room, and how a message reaches them: the `seed` or the `queued` fan-out."""

from __future__ import annotations

import asyncio
import math

from starlette.websockets import WebSocket

from fastapi_chat.stats import STATS

Outgoing = tuple[dict, int, int | None]  # (ASGI websocket.send message, payload bytes, stored id in app mode)


class Member:
    __slots__ = ("websocket", "room", "queue", "writer", "sending", "owed_bytes", "history_ids", "history_floor")
    queue: asyncio.Queue[Outgoing]  # the queued fan-out's (QueuedFanout.join); a seed member has none

    def __init__(self, websocket: WebSocket, room: str):
        self.websocket = websocket
        self.room = room
        self.writer: asyncio.Task | None = None
        self.sending = 0  # 1 while the writer waits for the transport to take a message
        self.owed_bytes = 0  # payload bytes queued or being sent (queued fan-out)
        self.history_ids: frozenset[int] = frozenset()  # app mode: what it was sent as history
        self.history_floor = 0

    def had(self, stored_id: int | None) -> bool:
        """App mode: the member got this message with its history, or it is older than its history."""
        return bool(self.history_ids) and stored_id is not None and (
            stored_id in self.history_ids or stored_id < self.history_floor)

    def got_history(self, ids: list[int]) -> None:
        self.history_ids = frozenset(ids)
        self.history_floor = min(ids, default=0)


class Rooms:
    def __init__(self) -> None:
        self.members: dict[str, set[Member]] = {}

    def join(self, room: str, websocket: WebSocket, start: bool = True) -> Member:
        """A member of `room`; with start=False (app mode's history) it hears nothing until start()."""
        member = Member(websocket, room)
        if start:
            self.start(member)
        return member

    def start(self, member: Member) -> None:
        self.members.setdefault(member.room, set()).add(member)
        STATS.rooms = len(self.members)

    def backlog_now(self) -> int:
        """Deliveries accepted for members but not yet handed to their transport, right now."""
        return 0

    def leave(self, member: Member) -> None:
        members = self.members.get(member.room)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[member.room]
        STATS.rooms = len(self.members)


class SeedFanout(Rooms):
    """The blog's loop: `for client in clients: await client.send_text(...)`, one member at a time.

    Kept faithful on purpose (the sender's receive loop waits for every send), with two
    fixes the blog needs to survive a benchmark: it iterates a snapshot of the room (the
    live set may change while a send is pending) and a send to a member that has gone is
    counted instead of crashing the sender's handler.
    """

    pending = 0  # deliveries of the message being broadcast that are not done yet

    def backlog_now(self) -> int:
        return self.pending

    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None:
        members = list(self.members.get(room, ()))
        self.pending += len(members)
        for member in members:
            if member.had(stored_id):
                self.pending -= 1
                continue
            try:
                await member.websocket.send(message)
            except Exception:  # the member has gone
                STATS.drops["send_failed"] += 1
            else:
                STATS.deliveries += 1
                STATS.bytes_out += size
            finally:
                self.pending -= 1


class QueuedFanout(Rooms):
    """A bounded outbound queue and a writer task per member; a full queue drops the new
    message for that member and counts it, like a Channels layer at `capacity`. Bounded in bytes
    too: a message that would take what the member is owed past `backlog_bytes` is dropped for it
    and counted as `backlog_bytes` (CONTRACT.md, "Hostile clients")."""

    def __init__(self, backlog: int, backlog_bytes: int | None) -> None:
        super().__init__()
        self.backlog = backlog
        self.backlog_bytes = math.inf if backlog_bytes is None else backlog_bytes  # None: CHAT_HARDENING=off

    def join(self, room: str, websocket: WebSocket, start: bool = True) -> Member:
        """The member's queue takes the room's messages from now on; with start=False its writer
        waits for start(), so that app mode sends the history first, and nothing is missed."""
        member = Member(websocket, room)
        member.queue = asyncio.Queue(maxsize=self.backlog)
        Rooms.start(self, member)
        if start:
            self.start(member)
        return member

    def start(self, member: Member) -> None:
        member.writer = asyncio.create_task(self._write(member))

    def backlog_now(self) -> int:
        return sum(m.queue.qsize() + m.sending for members in self.members.values() for m in members)

    def leave(self, member: Member) -> None:
        super().leave(member)
        if member.writer is not None:
            member.writer.cancel()
            # A writer cancelled inside `send` ends holding its frame (and so the member) in its
            # exception's traceback, while the member holds the task: a cycle that kept the whole
            # queue alive until the cyclic GC ran. Break it, and let the queued payloads go now.
            member.writer = None
        while not member.queue.empty():
            member.queue.get_nowait()
        member.owed_bytes = 0

    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None:
        for member in self.members.get(room, ()):
            if member.owed_bytes + size > self.backlog_bytes:
                STATS.drops["backlog_bytes"] += 1
                continue
            try:
                member.queue.put_nowait((message, size, stored_id))
            except asyncio.QueueFull:
                STATS.drops["backlog_full"] += 1
            else:
                member.owed_bytes += size

    async def _write(self, member: Member) -> None:
        send, queue = member.websocket.send, member.queue
        while True:
            message, size, stored_id = await queue.get()
            if member.had(stored_id):
                member.owed_bytes -= size
                continue
            member.sending = 1
            try:
                await send(message)
            except Exception:  # the member has gone: stop taking messages for it, counting what it had
                STATS.drops["send_failed"] += 1 + queue.qsize()
                super().leave(member)
                return
            finally:
                member.sending = 0
                member.owed_bytes -= size
            STATS.deliveries += 1
            STATS.bytes_out += size
