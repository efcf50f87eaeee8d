"""channels-redis layers that count what the stock ones drop, and keep their members through a Redis outage.

The stock layers of channels_redis 4.3.0, subclassed (CONTRACT.md, "Redis", has the measurements):
- every message the stock layer drops silently (or logs at INFO) is counted in /stats `drops`;
- Redis unreachable: `group_send` counts `redis_unavailable` and returns (stock: the exception
  reaches the consumer and daphne closes that member with 1011); `group_add` raises
  LayerUnavailable, so the consumer refuses the handshake with 403 (stock: HTTP 500); the core
  layer's `receive` waits for Redis to answer (stock: every member of the process closed with 1011);
- core, members leaving: what the inbox pop in flight had taken reaches the others (stock: lost
  silently), nothing is kept for a member that left, and a burst of commands waits for a pooled
  connection instead of failing as if Redis were down (redis-py 8's pool raises past 100).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections import Counter
from typing import Any

import redis
import redis.asyncio
from channels_redis.core import BoundedQueue, RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close
from django.core.exceptions import ImproperlyConfigured

from django_chat.chat.layers import CountsHandOver, LayerUnavailable
from django_chat.chat.stats import STATS
from serving.versions import require_versions

require_versions(__name__, {"channels-redis": "4.3.0", "redis": "8.1.0"})

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)
RETRY_INTERVAL = 0.2  # seconds between two probes of an unreachable Redis
POOL_SIZE = 100  # Redis connections per process and host (redis-py 8's default pool size)

# The stock group_send script (channels_redis/core.py), returning the 1-based indexes of the keys
# that were full instead of only how many: a key is a whole process's inbox, so the deliveries
# lost are the group's channels on those keys.
GROUP_SEND_LUA = """
    local full = {}
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            table.insert(full, i)
        end
    end
    return full
"""


class CountingBoundedQueue(BoundedQueue):
    """The core layer's per-channel receive buffer: when full, the stock one drops its oldest message.

    A message for a channel whose consumer has left (it was in the process inbox when the member
    went) is not kept: stock, it stayed in a buffer created for it, which nobody reads or removes.
    It went with the member's connection, as in the other layers, so it is not a drop.
    """

    def __init__(self, layer: CountingRedisChannelLayer, channel: str):
        super().__init__(layer.capacity)
        self.layer, self.channel = layer, channel

    def put_nowait(self, item):
        if self.channel not in self.layer.held:  # left, or never joined a group
            if self.layer.receive_buffer.get(self.channel) is self:
                del self.layer.receive_buffer[self.channel]
            return
        if self.full():
            STATS.drops["backlog_full"] += 1
        super().put_nowait(item)


class ReceiveBuffers(dict):
    """The stock `receive_buffer` (a defaultdict) with each buffer knowing its channel, and deleting
    a buffer that is already gone a no-op (the stock receive deletes its channel's buffer when it
    ends; CountingBoundedQueue may have done so first)."""

    def __init__(self, layer: CountingRedisChannelLayer):
        super().__init__()
        self.layer = layer

    def __missing__(self, channel: str) -> CountingBoundedQueue:
        queue = self[channel] = CountingBoundedQueue(self.layer, channel)
        return queue

    def __delitem__(self, channel: str) -> None:
        self.pop(channel, None)


class CountingRedisChannelLayer(CountsHandOver, RedisChannelLayer):
    """channels_redis.core.RedisChannelLayer, counting its drops and surviving Redis restarts.

    What the stock layer drops silently: `group_send` skips a full inbox (it logs at INFO; the inbox
    is one sorted set per process, so `capacity` bounds a whole process, not a member), discards
    messages older than `expiry` while sending, and its receive buffer drops its oldest message
    when full. All three are counted. A Redis without persistence comes back empty, so this
    process's group memberships are re-added once it answers again; until then `group_send`
    counts `redis_unavailable` (the message would reach nobody here).
    """

    layer_kind = "redis"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receive_buffer = ReceiveBuffers(self)
        self.pending_pop: dict[str, asyncio.Future] = {}  # by inbox: a pop whose receiver was cancelled
        self.memberships: dict[str, set[str]] = collections.defaultdict(set)  # this process's, by group
        self.discard_later: set[tuple[str, str]] = set()  # discards that failed while Redis was down
        self.healthy = asyncio.Event()
        self.healthy.set()
        self._watcher: asyncio.Task | None = None

    def create_pool(self, index):
        """The stock pool (channels_redis.utils.create_pool) with two redis-py 8 defaults changed.

        - Its `ConnectionPool` raises MaxConnectionsError, a `redis.ConnectionError`, when a command
          finds all 100 connections busy, e.g. 500 members leaving at once; every such command
          failed and looked like Redis was down (counted `redis_unavailable`). Here a command
          waits for a connection instead (`BlockingConnectionPool`, no deadline).
        - Its 5 s `socket_timeout` races the layer's 5 s BZPOPMIN (`brpop_timeout`): an idle pop
          timed out on the client (twice in one conformance run) and took the connection down; had
          Redis popped a message for it at that moment, it would be gone, uncounted. And with a
          timeout set, redis-py sends through `asyncio.wait_for`, which on Python 3.11 swallows a
          cancellation arriving as the send completes: the consumer's receive task then outlives
          its member, and daphne kills the whole application instance after 10 s. No read timeout
          here (redis-py < 8's default): a Redis that dies closes the socket, failing the read at once.
        """
        host = dict(self.hosts[index])
        if "address" not in host:
            raise ImproperlyConfigured("the Redis channel layer needs an `address` (CHAT_REDIS_URL, a redis:// URL)")
        return redis.asyncio.BlockingConnectionPool.from_url(
            host.pop("address"), **{"max_connections": POOL_SIZE, "timeout": None, "socket_timeout": None,
                                    "socket_connect_timeout": 5, **host})

    def backlog_now(self) -> int:
        """Messages taken from Redis that consumers have not read yet. What still waits in Redis is
        left out: counting it would cost a round trip per key on every /stats read."""
        return sum(q.qsize() for q in self.receive_buffer.values())

    def _channel_key(self, channel: str) -> str:
        return self.prefix + (self.non_local_name(channel) if "!" in channel else channel)

    async def group_add(self, group, channel):
        try:
            await super().group_add(group, channel)
        except REDIS_DOWN as exc:
            self._lost_redis()
            raise LayerUnavailable(f"Redis unreachable: {exc}") from exc
        self.memberships[group].add(channel)

    async def group_discard(self, group, channel):
        members = self.memberships.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.memberships[group]
        try:
            await super().group_discard(group, channel)
        except REDIS_DOWN:
            self.discard_later.add((group, channel))
            self._lost_redis()

    async def group_send(self, group, message):
        if not self.healthy.is_set():  # Redis is down, or back without this process's memberships yet
            STATS.drops["redis_unavailable"] += 1
            return
        try:
            await self._group_send(group, message)
        except REDIS_DOWN:
            STATS.drops["redis_unavailable"] += 1
            self._lost_redis()

    async def _group_send(self, group, message):
        """The stock group_send, counting expired entries and the deliveries lost to full inboxes."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        await connection.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        channel_names = [x.decode("utf8") for x in await connection.zrange(key, 0, -1)]
        channels_on_key = Counter(self._channel_key(c) for c in channel_names)
        keys_by_index, key_message, key_capacity = self._map_channel_keys_to_connection(channel_names, message)
        for index, keys in keys_by_index.items():
            connection = self.connection(index)
            pipe = connection.pipeline()
            for k in keys:
                pipe.zremrangebyscore(k, min=0, max=int(time.time()) - int(self.expiry))
            STATS.drops["expired"] += sum(await pipe.execute())  # entries: one per message per process
            args = [key_message[k] for k in keys] + [key_capacity[k] for k in keys] + [time.time(), self.expiry]
            full = await connection.eval(GROUP_SEND_LUA, len(keys), *keys, *args)
            STATS.drops["backlog_full"] += sum(channels_on_key[keys[i - 1]] for i in full)

    def forget(self, channel) -> None:
        super().forget(channel)
        self.receive_buffer.pop(channel, None)  # what it holds went with the member

    async def receive_single(self, channel):
        """The stock receive_single, run so that cancelling the consumer that runs it loses nothing.

        The consumers of a process take turns popping its inbox (BZPOPMIN) for all of them. Stock,
        when the member whose task is popping leaves, its task is cancelled mid-pop: a message Redis
        has already popped is dropped with the connection, for every member of the process, silently
        (1 sender, 5 members aborting mid-burst of 300: the sender missed one message in 7 of 45
        rounds). Here the pop goes on, and the next consumer to pop this inbox takes its result over.
        """
        if "!" not in channel:
            return await super().receive_single(channel)
        pop = self.pending_pop.pop(channel, None) or asyncio.ensure_future(super().receive_single(channel))
        try:
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            if not pop.cancelled():
                self.pending_pop[channel] = pop
            raise

    async def receive(self, channel):
        while True:
            try:
                return await super().receive(channel)
            except redis.TimeoutError:
                continue  # connecting took too long (reads have no timeout): nothing was taken from Redis
            except REDIS_DOWN:
                self._lost_redis()
                await self.healthy.wait()

    def _lost_redis(self) -> None:
        self.healthy.clear()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._await_redis())

    async def _await_redis(self) -> None:
        """Probe Redis until it answers, then restore what a restart without persistence lost."""
        while True:
            await asyncio.sleep(RETRY_INTERVAL)
            try:
                for index in range(self.ring_size):
                    connection = self.connection(index)
                    # Idle pooled connections died with the old server; the stock pools do not retry,
                    # so each would fail one command after Redis is back.
                    await connection.connection_pool.disconnect(inuse_connections=False)
                    await connection.ping()
                for group, channels in list(self.memberships.items()):
                    key = self._group_key(group)
                    connection = self.connection(self.consistent_hash(group))
                    await connection.zadd(key, dict.fromkeys(channels, time.time()))
                    await connection.expire(key, self.group_expiry)
                for group, channel in list(self.discard_later):
                    await super().group_discard(group, channel)
                    self.discard_later.discard((group, channel))
            except REDIS_DOWN:
                continue
            self.healthy.set()
            return


class CountingQueue(asyncio.Queue):
    """A member's queue in the pub/sub layer: bounded at `capacity` (stock: unbounded); a message
    that finds it full is dropped and counted, as in the in-memory layer."""

    def put_nowait(self, item):
        if self.full():
            STATS.drops["backlog_full"] += 1
            return
        super().put_nowait(item)


class BoundedPubSubLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, capacity: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = CountingQueue(self.capacity)
        try:
            await self._get_shard(channel).subscribe(channel)
        except REDIS_DOWN:
            pass  # only direct sends use the member's own channel; its groups are what it hears


class CountingRedisPubSubChannelLayer(CountsHandOver, RedisPubSubChannelLayer):
    """channels_redis.pubsub.RedisPubSubChannelLayer with bounded, counted member queues.

    Stock, it ignores `capacity` and `expiry` (queues are unbounded; nothing expires); its
    subscriber reconnects and resubscribes by itself after an outage (redis-py's PubSub).
    """

    layer_kind = "redis-pubsub"

    async def _receive(self, channel):
        return await self._get_layer().receive(channel)  # the stock layer proxies it via __getattr__

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = BoundedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer

    def backlog_now(self) -> int:
        layer = self._layers.get(asyncio.get_running_loop())
        return sum(q.qsize() for q in layer.channels.values()) if layer else 0

    def forget(self, channel) -> None:
        """The member left: drop its queue and unsubscribe its channel. Stock, its receive task does
        that when cancelled, but a task that has just taken a message is done, not cancelled, so the
        queue stayed for good with what the member was still owed (the backlog gauge never came
        back to 0) and its channel stayed subscribed."""
        super().forget(channel)
        layer = self._layers.get(asyncio.get_running_loop())
        if layer is not None and layer.channels.pop(channel, None) is not None:
            task = asyncio.get_running_loop().create_task(_unsubscribe(layer._get_shard(channel), channel))
            _UNSUBSCRIBING.add(task)
            task.add_done_callback(_UNSUBSCRIBING.discard)

    async def group_add(self, group, channel):
        try:
            await self._get_layer().group_add(group, channel)
        except REDIS_DOWN as exc:
            await self.group_discard(group, channel)
            raise LayerUnavailable(f"Redis unreachable: {exc}") from exc

    async def group_discard(self, group, channel):
        try:
            await self._get_layer().group_discard(group, channel)
        except REDIS_DOWN:
            pass  # the group was left locally; the stale subscription only costs ignored messages

    async def group_send(self, group, message):
        layer = self._get_layer()
        if not _subscriber_connected(layer._get_shard(layer._get_group_channel_name(group))):
            # This process's members would not get it back: Redis is down, or back but the stock
            # receive task (which retries once a second) has not resubscribed yet.
            STATS.drops["redis_unavailable"] += 1
            return
        try:
            await layer.group_send(group, message)
        except REDIS_DOWN:
            STATS.drops["redis_unavailable"] += 1


_UNSUBSCRIBING: set[asyncio.Task] = set()  # references to the running unsubscribe tasks


async def _unsubscribe(shard, channel) -> None:
    try:
        await shard.unsubscribe(channel)
    except REDIS_DOWN:
        pass  # as in group_discard: a stale subscription only costs ignored messages


def _subscriber_connected(shard) -> bool:
    pubsub = shard._pubsub
    return pubsub is not None and pubsub.connection is not None and pubsub.connection.is_connected
