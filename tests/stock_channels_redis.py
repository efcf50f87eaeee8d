"""Django settings for tests/test_redis.py: the stock channels-redis layers, to measure what they do.

The layer classes below are channels_redis' own plus the two read-only attributes /stats reads.
"""

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from django_chat.settings import *  # noqa: F403
from django_chat.settings import CHAT_LAYER_EXPIRY, CHAT_MEMBER_BACKLOG, CHAT_REDIS_LAYER, CHAT_REDIS_URL


class StockCore(RedisChannelLayer):
    layer_kind = "redis (stock)"

    def backlog_now(self) -> int:
        return 0


class StockPubSub(RedisPubSubChannelLayer):
    layer_kind = "redis-pubsub (stock)"

    def backlog_now(self) -> int:
        return 0


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": f"tests.stock_channels_redis.{'StockCore' if CHAT_REDIS_LAYER == 'core' else 'StockPubSub'}",
        "CONFIG": {"hosts": [CHAT_REDIS_URL], "capacity": CHAT_MEMBER_BACKLOG, "expiry": CHAT_LAYER_EXPIRY},
    }
}
