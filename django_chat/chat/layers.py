"""Channel layers that count what the stock layers drop silently."""

from contextvars import ContextVar

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from django_chat.chat.stats import STATS


class LayerUnavailable(Exception):
    """The channel layer's backing store (Redis) is unreachable: a member cannot join a group now."""


_in_group_send: ContextVar[bool] = ContextVar("in_group_send", default=False)


class CountsHandOver:
    """Layer mixin for the /stats backlog gauge: a consumer fetches its next message while it may
    still be busy with another event, so from `receive` until chat_message has handed it to
    daphne the message is in the consumer's hands. Counted per channel from `register` (the
    consumer joined) to `forget` (it left): what a leaving consumer held, or fetches as it
    leaves, goes with it."""

    @property
    def held(self) -> dict[str, int]:
        return self.__dict__.setdefault("_held", {})

    async def receive(self, channel):
        message = await self._receive(channel)
        if channel in self.held:
            self.held[channel] += 1
        return message

    async def _receive(self, channel):
        return await super().receive(channel)

    def register(self, channel) -> None:
        self.held[channel] = 0

    def handed_over(self, channel) -> None:
        if self.held.get(channel):
            self.held[channel] -= 1

    def forget(self, channel) -> None:
        self.held.pop(channel, None)

    def held_now(self) -> int:
        return sum(self.held.values())


class CountingInMemoryChannelLayer(CountsHandOver, InMemoryChannelLayer):
    """Channels' in-memory layer; its group_send swallows ChannelFull, so count it on the way."""

    layer_kind = "memory"
    fanning_out = 0  # sends group_send has scheduled (one task per member) that have not run yet

    def backlog_now(self) -> int:
        """Deliveries accepted but not yet handed to daphne: in a channel, scheduled, or in hand."""
        return sum(q.qsize() for q in self.channels.values()) + self.fanning_out + self.held_now()

    async def group_send(self, group, message):
        self.fanning_out += len(self.groups.get(group, ()))
        token = _in_group_send.set(True)  # the per-member send tasks inherit it
        try:
            await super().group_send(group, message)
        finally:
            _in_group_send.reset(token)

    async def send(self, channel, message):
        try:
            await super().send(channel, message)
        except ChannelFull:
            STATS.drops["backlog_full"] += 1
            raise
        finally:
            if _in_group_send.get():
                self.fanning_out -= 1

    def _remove_from_groups(self, channel):
        # The stock layer calls this once per message it discards for age (`expiry`); it also
        # drops the channel from every group, so that member silently stops receiving.
        STATS.drops["expired"] += 1
        super()._remove_from_groups(channel)
