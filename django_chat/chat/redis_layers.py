"""channels-redis layers that count what the stock ones drop, and keep their members through a Redis outage.

The stock layers of channels_redis 4.3.0, subclassed (CONTRACT.md, "Redis", has the measurements):
- every message the stock layer drops silently (or logs at INFO) is counted in /stats `drops`;
- Redis unreachable: `group_send` counts `redis_unavailable` and returns (stock: the exception
  reaches the consumer and daphne closes that member with 1011); `group_add` raises
  LayerUnavailable, so the consumer refuses the handshake with 403 (stock: HTTP 500); the core
  layer's `receive` waits for Redis to answer (stock: every member of the process closed with 1011).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections import Counter

import redis
from channels_redis.core import BoundedQueue, RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close

from django_chat.chat.layers import CountsHandOver, LayerUnavailable
from django_chat.chat.stats import STATS

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)
RETRY_INTERVAL = 0.2  # seconds between two probes of an unreachable Redis

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
    """The core layer's per-channel receive buffer: when full, the stock one drops its oldest message."""

    def put_nowait(self, item):
        if self.full():
            STATS.drops["backlog_full"] += 1
        super().put_nowait(item)


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.receive_buffer = collections.defaultdict(functools.partial(CountingBoundedQueue, self.capacity))
        self.memberships: dict[str, set[str]] = collections.defaultdict(set)  # this process's, by group
        self.discard_later: set[tuple[str, str]] = set()  # discards that failed while Redis was down
        self.healthy = asyncio.Event()
        self.healthy.set()
        self._watcher: asyncio.Task | None = None

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

    async def receive(self, channel):
        while True:
            try:
                return await super().receive(channel)
            except redis.TimeoutError:
                continue  # a slow answer, not an outage: nothing was taken from Redis
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


def _subscriber_connected(shard) -> bool:
    pubsub = shard._pubsub
    return pubsub is not None and pubsub.connection is not None and pubsub.connection.is_connected
