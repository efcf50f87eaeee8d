"""Channel layers that count what the stock layers drop silently."""

import asyncio
import contextlib
import time
from contextvars import ContextVar

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from django_chat.chat.stats import STATS
from serving.versions import require_versions

require_versions(__name__, {"channels": "4.3.2"})  # its in-memory layer's internals: channels, groups, cleanup

CLEAN_EVERY_S = 1.0  # how often, at most, the layer looks for expired messages and memberships (hardened)


class LayerUnavailable(Exception):
    """The channel layer's backing store (Redis) is unreachable: a member cannot join a group now."""


class OutboundFull(Exception):
    """The server already holds CHAT_MEMBER_BACKLOG_BYTES for this member (daphne's transport buffer,
    django_chat/daphne_fixes.py): the message is dropped for it and counted as `backlog_bytes`."""


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
        return await super().receive(channel)  # type: ignore[misc]  # a mixin: the layer it is mixed into has it

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
    """Channels' in-memory layer; its group_send swallows ChannelFull, so count it on the way.
    Each channel is bounded in payload bytes too (CHAT_MEMBER_BACKLOG_BYTES, counted as `backlog_bytes`),
    and a member's channel goes with it when it leaves, not when its messages expire."""

    layer_kind = "memory"
    fanning_out = 0  # sends group_send has scheduled (one task per member) that have not run yet

    @property
    def owed(self) -> dict[str, int]:
        """Payload bytes queued per channel."""
        return self.__dict__.setdefault("_owed", {})

    def backlog_now(self) -> int:
        """Deliveries accepted but not yet handed to daphne: in a channel, scheduled, or in hand."""
        return sum(q.qsize() for q in self.channels.values()) + self.fanning_out + self.held_now()

    async def group_send(self, group, message):
        self.fanning_out += len(self.groups.get(group, ()))
        token = _in_group_send.set(True)  # the per-member send tasks inherit it
        try:
            await (self._direct_group_send if self._direct else super().group_send)(group, message)
        finally:
            _in_group_send.reset(token)

    async def _direct_group_send(self, group, message):
        # Tuned (CHAT_GROUP_SEND=direct, CONTRACT.md "Tuned"): stock makes a task per member and awaits them as
        # they complete, though a send into an in-memory queue never waits; and each send deep-copies the event.
        # In turn, and one event shared by the members' queues: safe while no handler mutates the event it gets.
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    async def send(self, channel, message):
        size = message.get("size", 0)
        try:
            if _in_group_send.get() and channel not in self.held:
                # It left after group_send listed its group: the stock send would bring its queue back,
                # held in the backlog until it expired. The ledger counts the message as sent after it left.
                return
            bound = settings.CHAT_MEMBER_BACKLOG_BYTES  # None: CHAT_HARDENING=off
            if bound is not None and self.owed.get(channel, 0) + size > bound:
                STATS.drops["backlog_bytes"] += 1
                raise ChannelFull(channel)
            try:
                await (self._put if self._direct and _in_group_send.get() else super().send)(channel, message)
            except ChannelFull:
                STATS.drops["backlog_full"] += 1
                raise
            self.owed[channel] = self.owed.get(channel, 0) + size
        finally:
            if _in_group_send.get():
                self.fanning_out -= 1

    async def _receive(self, channel):
        message = await super()._receive(channel)
        owed = self.owed.get(channel, 0) - message.get("size", 0)
        if owed > 0 and channel in self.channels:
            self.owed[channel] = owed
        else:  # the stock layer drops an emptied channel, and with it any byte it expired unseen
            self.owed.pop(channel, None)
        return message

    def forget(self, channel) -> None:
        # Stock: a departed member's queue stays until its messages expire (60 s), up to
        # CHAT_MEMBER_BACKLOG messages of any size. Let it go with the member.
        super().forget(channel)
        self.channels.pop(channel, None)
        self.owed.pop(channel, None)

    _cleaned_at = float("-inf")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # read here, once: this module is imported (daphne_fixes) before Django's settings are
        self._clean_every_s = CLEAN_EVERY_S if settings.CHAT_HARDENING else 0.0  # stock: on every receive
        self._direct = settings.CHAT_GROUP_SEND == "direct"

    async def _put(self, channel, message):
        """The stock send without its deepcopy (CHAT_GROUP_SEND=direct; the checks are group_send's)."""
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    def _clean_expired(self):
        # Stock runs this on every receive, and it walks every channel and every group membership of the process:
        # a delivery cost O(members in the process), and N members joining at once O(N^2). 5,000 joining one
        # daphne: 34% of its samples here, 1 of 5,000 accepted (CONTRACT.md, "Connection storms"). Messages
        # expire after 60 s and memberships after a day: looking once a second finds them within a second.
        now = time.monotonic()
        if now - self._cleaned_at < self._clean_every_s:
            return
        self._cleaned_at = now
        super()._clean_expired()

    def _remove_from_groups(self, channel):
        # The stock layer calls this once per message it discards for age (`expiry`); it also
        # drops the channel from every group, so that member silently stops receiving.
        STATS.drops["expired"] += 1
        super()._remove_from_groups(channel)
