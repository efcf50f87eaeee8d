import json
import re
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from django_chat.chat import store
from django_chat.chat.layers import LayerUnavailable, OutboundFull
from django_chat.chat.stats import STATS

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
STORE_FAILED = 4503  # app mode: not stored, so sent to no one; try again later (CONTRACT.md, "App mode")
# (not 1011: autobahn lets an application close only with 1000 or 3000-4999)


class ChatConsumer(AsyncWebsocketConsumer):
    """The Channels tutorial's chat consumer, relaying text and binary frames verbatim."""

    accepted = False

    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        if not ROOM_NAME.fullmatch(self.room_name):
            STATS.connections_refused += 1
            await self.close()  # before accept: daphne answers the handshake with 403
            return
        self.room_group_name = f"chat_{self.room_name}"
        self._tell_layer("register")
        try:
            await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        except LayerUnavailable:  # Redis is down: refuse, rather than accept a member who would hear nothing
            self._tell_layer("forget")
            STATS.connections_refused += 1
            await self.close()
            return
        if not await self.admit():
            self._tell_layer("forget")
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)
            STATS.connections_refused += 1
            await self.close()
            return
        await self.accept()
        self.accepted = True
        STATS.connections_open += 1
        STATS.connections_total += 1
        STATS.members_by_room[self.room_group_name] += 1
        await self.welcome()

    async def admit(self) -> bool:
        """Last word before accept, once the member is in its group (app mode: history)."""
        return True

    async def welcome(self) -> None:
        """Right after accept, before any live message (app mode: history)."""

    async def disconnect(self, code):
        if not self.accepted:
            return
        self._tell_layer("forget")
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)
        STATS.connections_open -= 1
        STATS.members_by_room[self.room_group_name] -= 1
        if not STATS.members_by_room[self.room_group_name]:
            del STATS.members_by_room[self.room_group_name]
        STATS.close_codes[code] += 1

    async def receive(self, text_data=None, bytes_data=None):
        size = len(bytes_data) if bytes_data is not None else len(text_data.encode())  # once, not per member
        STATS.messages_in += 1
        STATS.bytes_in += size
        await self.fan_out(text_data, bytes_data, size)

    async def fan_out(self, text_data, bytes_data, size, **extra):
        await self.channel_layer.group_send(
            self.room_group_name,
            {"type": "chat.message", "text": text_data, "bytes": bytes_data, "size": size, **extra},
        )

    async def chat_message(self, event):
        text, data = event["text"], event["bytes"]
        try:
            await self.send(text_data=text, bytes_data=data)
        except OutboundFull:  # daphne holds CHAT_MEMBER_BACKLOG_BYTES for this member already
            STATS.drops["backlog_bytes"] += 1
            return
        except OSError:  # uvicorn: the member went while this send waited for its transport
            STATS.drops["send_failed"] += 1  # (stock: the consumer died with it, never left its group,
            return  # and its inbox filled for the layer's 60 s expiry); its disconnect is next
        finally:
            self._tell_layer("handed_over")
        STATS.deliveries += 1
        STATS.bytes_out += event["size"]

    def _tell_layer(self, event: str) -> None:
        """Keep the counting layers' backlog gauge (layers.CountsHandOver) exact; a stock layer, as
        tests/stock_channels_redis.py runs, has no such gauge."""
        hook = getattr(self.channel_layer, event, None)
        if hook is not None:
            hook(self.channel_name)


class AppChatConsumer(ChatConsumer):
    """App mode (CHAT_APP=full): signed-in members only (AuthMiddlewareStack puts the session's user
    in the scope), every message stored through the ORM before it is fanned out, and `?history=N`."""

    history: list = ()
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


class RefuseConsumer(AsyncWebsocketConsumer):
    """Any path other than /ws/{room}: refused like a bad room."""

    async def connect(self):
        STATS.connections_refused += 1
        await self.close()
