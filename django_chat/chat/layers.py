"""Channel layers that count what the stock layers drop silently."""

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from django_chat.chat.stats import STATS


class LayerUnavailable(Exception):
    """The channel layer's backing store (Redis) is unreachable: a member cannot join a group now."""


class CountingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer; its group_send swallows ChannelFull, so count it on the way."""

    layer_kind = "memory"

    def backlog_now(self) -> int:
        """Messages waiting in consumers' channels right now."""
        return sum(q.qsize() for q in self.channels.values())

    async def send(self, channel, message):
        try:
            await super().send(channel, message)
        except ChannelFull:
            STATS.drops["backlog_full"] += 1
            raise

    def _remove_from_groups(self, channel):
        # The stock layer calls this once per message it discards for age (`expiry`); it also
        # drops the channel from every group, so that member silently stops receiving.
        STATS.drops["expired"] += 1
        super()._remove_from_groups(channel)
