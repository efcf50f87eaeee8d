"""The Django side's in-memory channel layer (django_chat/chat/layers.py), in-process: a race that a run
only hits under load, staged step by step on one event loop."""

from __future__ import annotations

import asyncio
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
django.setup()

from channels.layers import InMemoryChannelLayer  # noqa: E402

from django_chat.chat.layers import CLEAN_EVERY_S, CountingInMemoryChannelLayer  # noqa: E402  (needs the settings)


def test_a_member_that_leaves_while_a_group_send_fans_out_gets_no_queue_back():
    async def race() -> tuple[CountingInMemoryChannelLayer, str, str]:
        layer = CountingInMemoryChannelLayer(capacity=100, expiry=60)
        stays, leaves = await layer.new_channel(), await layer.new_channel()
        for channel in (stays, leaves):
            layer.register(channel)
            await layer.group_add("chat_r", channel)
        sending = asyncio.create_task(layer.group_send("chat_r", {"type": "chat.message", "size": 5}))
        await asyncio.sleep(0)  # group_send has listed the group and scheduled one send per member
        layer.forget(leaves)  # as the consumer's disconnect does, before its send has run
        await layer.group_discard("chat_r", leaves)
        await sending
        return layer, stays, leaves

    layer, stays, leaves = asyncio.run(race())
    assert leaves not in layer.channels and leaves not in layer.owed
    assert layer.fanning_out == 0
    assert layer.backlog_now() == 1 and layer.channels[stays].qsize() == 1


def test_expired_messages_are_looked_for_once_a_second_not_on_every_receive(monkeypatch):
    """Stock walks every channel and membership on every receive: a storm of N joins cost O(N^2) (CONTRACT.md,
    "Connection storms"). Hardened, it looks once a second, and still finds what expired."""
    walks = []
    stock = InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda self: walks.append(1) or stock(self))

    async def many_receives() -> CountingInMemoryChannelLayer:
        layer = CountingInMemoryChannelLayer(capacity=100, expiry=60)
        members = [await layer.new_channel() for _ in range(500)]
        for channel in members:
            layer.register(channel)
            await layer.group_add("chat_r", channel)
        for channel in members:
            await layer.send(channel, {"type": "chat.message", "size": 1})
            await layer.receive(channel)
        return layer

    layer = asyncio.run(many_receives())
    assert len(walks) == 1, len(walks)  # 500 receives within a second: one walk
    stale = "specific.inmemory!stale"
    layer.channels[stale] = asyncio.Queue()
    layer.channels[stale].put_nowait((time.time() - 1, {"type": "chat.message"}))  # expired a second ago
    layer._cleaned_at -= CLEAN_EVERY_S  # a second later
    asyncio.run(layer.send("specific.inmemory!other", {"type": "chat.message"}))
    asyncio.run(layer.receive("specific.inmemory!other"))
    assert len(walks) == 2 and stale not in layer.channels
