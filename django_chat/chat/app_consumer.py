"""The chat consumer in app mode (CHAT_APP=full); imported only then, with the site's apps installed."""

import json
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError

from django_chat.chat import store
from django_chat.chat.consumers import ChatConsumer
from django_chat.chat.stats import STATS

STORE_FAILED = 4503  # not stored, so sent to no one; try again later (CONTRACT.md, "App mode")
# (not 1011: autobahn lets an application close only with 1000 or 3000-4999)


class AppChatConsumer(ChatConsumer):
    """App mode (CHAT_APP=full): signed-in members only (AuthMiddlewareStack puts the session's user
    in the scope), every message stored through the ORM before it is fanned out, and `?history=N`."""

    history: list | tuple = ()
    history_ids: frozenset = frozenset()  # what this member was sent as history, and the oldest of it
    history_floor = 0
    store_failed = False

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:  # no, forged or expired session: 403 before accept
            STATS.refuse(await store.refusal_cause(self.scope["cookies"].get(settings.SESSION_COOKIE_NAME)))
            await self.close()
            return
        self.history_n = history_wanted(self.scope["query_string"])
        if self.history_n is False:
            STATS.connections_refused += 1
            await self.close()
            return
        await super().connect()

    async def admit(self) -> bool:
        """Fetch history after joining the group and before accept, so that a message stored from
        now on arrives live, one stored before is in history, and none is in both (chat_message)."""
        if self.history_n is None:
            return True
        try:
            self.history = await store.recent(self.room_name, self.history_n)
        except DatabaseError:
            STATS.handshakes_refused["database"] += 1
            return False
        self.history_ids = frozenset(m.pk for m in self.history)
        self.history_floor = min(self.history_ids, default=0)
        return True

    async def welcome(self) -> None:
        if self.history_n is None:
            return
        await self.send(text_data=json.dumps({"history": len(self.history)}))
        for message in self.history:
            await self.send(**message.frame())
        self.history = ()

    async def receive(self, text_data=None, bytes_data=None):
        if self.store_failed:  # what the sender had sent before it got the close: not delivered either
            return
        size = len(bytes_data) if bytes_data is not None else len(text_data.encode())
        STATS.messages_in += 1
        STATS.bytes_in += size
        try:
            pk = await store.store(self.room_name, self.scope["user"].pk, text_data, bytes_data)
        except DatabaseError:  # not stored, so not fanned out: the sender learns it from the close code
            self.store_failed = True
            await self.close(code=STORE_FAILED)
            return
        await self.fan_out(text_data, bytes_data, size, id=pk)

    async def chat_message(self, event):
        pk = event.get("id")
        if self.history_ids and (pk in self.history_ids or pk < self.history_floor):
            self._tell_layer("handed_over")  # this member got it with the history, or it is older
            return
        await super().chat_message(event)


def history_wanted(query_string: bytes) -> int | None | bool:
    """`?history=N` (0 ≤ N ≤ CHAT_HISTORY_MAX): N; absent: None; anything else: False (refused)."""
    values = parse_qs(query_string.decode("latin-1")).get("history")
    if values is None:
        return None
    if len(values) != 1 or not values[0].isdigit() or int(values[0]) > settings.CHAT_HISTORY_MAX:
        return False
    return int(values[0])
