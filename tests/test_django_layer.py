"""The Django side's in-memory channel layer (django_chat/chat/layers.py), in-process: a race that a run
only hits under load, staged step by step on one event loop."""

from __future__ import annotations

import asyncio
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
django.setup()

from django_chat.chat.layers import CountingInMemoryChannelLayer  # noqa: E402  (needs the settings)


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
