"""Processes sharing rooms through Redis pub/sub: every message goes through Redis, to every process.

A member's message is PUBLISHed to the room's channel `chat:{room}`; each process SUBSCRIBEs to
the rooms it has members in, and its subscriber task hands what arrives to the local delivery
mode, so members of one process get their messages the same way as members of another. One
subscriber connection per process: Redis pushes the messages of one room in publish order.

Redis unreachable: a message that cannot be published is counted in `drops.redis_unavailable`
and reaches nobody, as with channels-redis; a new member is refused (it would hear nothing).
Members already connected stay connected; the subscriber reconnects and resubscribes their
rooms when Redis answers again (CONTRACT.md, "Redis").
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys

from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from fastapi_chat.broadcast.base import Broadcast, LocalFanout
from fastapi_chat.stats import STATS

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
PREFIX = "chat:"
RETRY_INTERVAL = 0.2  # seconds between two reconnection attempts of the subscriber
SUBSCRIBE_TIMEOUT = 5.0  # longest a handshake waits for Redis to confirm its room's subscription
PUBLISH_CONNECTIONS = 100  # pooled publishing connections per process (redis-py 8's default pool size)
TEXT, BINARY = b"t", b"b"  # first byte of a published payload: the frame type

log = logging.getLogger("fastapi_chat.redis")
log.addHandler(logging.StreamHandler(sys.stderr))  # uvicorn runs at --log-level warning
log.propagate = False


def encode(message: dict) -> bytes:
    text = message.get("text")
    return TEXT + text.encode() if text is not None else BINARY + message["bytes"]


def decode(data: bytes) -> tuple[dict, int]:
    if data[:1] == TEXT:
        return {"type": "websocket.send", "text": data[1:].decode()}, len(data) - 1
    return {"type": "websocket.send", "bytes": data[1:]}, len(data) - 1


class RedisBroadcast(Broadcast):
    layer = "redis"

    def __init__(self, url: str, local: LocalFanout) -> None:
        super().__init__(local)
        # Fail fast rather than stall the sender's receive loop: one retry (a pooled connection
        # that died with a restarted Redis), no backoff. But a publish that finds all pooled
        # connections busy waits for one: redis-py 8's default pool raises MaxConnectionsError, a
        # ConnectionError, which would count a busy moment as Redis unreachable.
        self.publisher = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            url, max_connections=PUBLISH_CONNECTIONS, timeout=None, retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True))
        self.subscriber = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2,
                                                  socket_keepalive=True)
        self.members: collections.Counter[str] = collections.Counter()  # local members by room
        self.requested: set[str] = set()  # rooms whose last command on this connection was SUBSCRIBE
        self.confirming: dict[str, collections.deque[asyncio.Future]] = {}  # SUBSCRIBEs not confirmed yet
        self.pubsub: PubSub | None = None  # the subscriber's PubSub while it is connected
        self.up = asyncio.Event()  # the subscriber is connected and Redis confirmed every room's subscription
        self.tried = asyncio.Event()  # the subscriber's first connection attempt has ended
        self.failed_once = False  # a connection attempt failed since the last success
        self.task: asyncio.Task | None = None

    async def subscribe(self, room: str) -> bool:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._listen())
        await self.tried.wait()
        if not self.up.is_set():
            return False
        self.members[room] += 1
        try:
            if room not in self.requested:
                await self._send("subscribe", [room])
            pending = self.confirming.get(room)
            if pending:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                    if not await pending[-1]:
                        raise RedisConnectionError("the subscriber lost its connection")
            return True
        except (*REDIS_DOWN, TimeoutError):
            await self.unsubscribe(room)
            return False

    async def unsubscribe(self, room: str) -> None:
        self.members[room] -= 1
        if self.members[room] > 0:
            return
        del self.members[room]
        if room in self.requested:
            try:
                await self._send("unsubscribe", [room])
            except REDIS_DOWN:
                pass  # the subscriber starts over on a new connection with the rooms that have members

    async def publish(self, room: str, message: dict, size: int, stored_id: int | None = None) -> None:
        if not self.up.is_set():  # this process's members would not get it back: Redis is down for us
            STATS.drops["redis_unavailable"] += 1
            return
        try:
            await self.publisher.publish(PREFIX + room, encode(message))
        except REDIS_DOWN:
            STATS.drops["redis_unavailable"] += 1

    async def _send(self, command: str, rooms: list[str]) -> None:
        """SUBSCRIBE or UNSUBSCRIBE on the subscriber's connection; Redis confirms each room in order."""
        if self.pubsub is None:
            raise RedisConnectionError("the subscriber is not connected")
        if command == "subscribe":
            self.requested.update(rooms)
            for room in rooms:
                self.confirming.setdefault(room, collections.deque()).append(
                    asyncio.get_running_loop().create_future())
            await self.pubsub.subscribe(*(PREFIX + r for r in rooms))
        else:
            self.requested.difference_update(rooms)
            await self.pubsub.unsubscribe(*(PREFIX + r for r in rooms))

    def _confirmed(self, room: str) -> None:
        pending = self.confirming.get(room)
        if pending:
            future = pending.popleft()
            if not future.done():
                future.set_result(True)
            if not pending:
                del self.confirming[room]

    def _ready_when_confirmed(self) -> None:
        """Publishing resumes once Redis has confirmed every room this process resubscribed to."""
        if not self.up.is_set() and not self.confirming:
            self.up.set()
            self.tried.set()

    async def _listen(self) -> None:
        """The subscriber: deliver what Redis pushes; on a lost connection, start over until it answers."""
        while True:
            pubsub = self.subscriber.pubsub()
            try:
                await pubsub.connect()
                self.pubsub = pubsub
                if self.members:
                    await self._send("subscribe", list(self.members))
                if self.failed_once:
                    log.warning("redis subscriber reconnected; resubscribing %d rooms", len(self.members))
                self.failed_once = False
                self._ready_when_confirmed()
                while True:
                    item = await pubsub.get_message(timeout=None)
                    if item is None:
                        continue
                    kind = item["type"]
                    if kind == "message":
                        message, size = decode(item["data"])
                        await self.local.publish(item["channel"][len(PREFIX):].decode(), message, size)
                    elif kind == "subscribe":
                        self._confirmed(item["channel"][len(PREFIX):].decode())
                        self._ready_when_confirmed()
            except REDIS_DOWN as exc:
                if not self.failed_once:
                    log.warning("redis subscriber lost (%s); retrying every %.1fs", exc, RETRY_INTERVAL)
                self.failed_once = True
            except Exception:  # a bug must not leave the process deaf for good: log it, start over
                log.exception("redis subscriber failed; starting over")
            finally:
                self.up.clear()
                self.tried.set()
                self.pubsub = None
                self.requested.clear()
                for pending in self.confirming.values():
                    for future in pending:
                        if not future.done():
                            future.set_result(False)
                self.confirming.clear()
                await pubsub.aclose()
            await asyncio.sleep(RETRY_INTERVAL)
