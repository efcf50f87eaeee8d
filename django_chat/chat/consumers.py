import re

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from django_chat.chat.layers import LayerUnavailable, OutboundFull
from django_chat.chat.stats import STATS

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Tuned (CHAT_DISPATCH=lean), decided once: the events that skip Channels' per-event database-thread hop, a
# delivery (it sends to the member's socket and touches no database); stock: none
LEAN_EVENTS = frozenset({"chat.message"}) if settings.CHAT_DISPATCH == "lean" else frozenset()


class ChatConsumer(AsyncWebsocketConsumer):
    """The Channels tutorial's chat consumer, relaying text and binary frames verbatim."""

    accepted = False

    async def dispatch(self, message):
        """Tuned (CHAT_DISPATCH=lean): a delivery goes straight to its handler. Channels' own dispatch first
        awaits aclose_old_connections(), a sync_to_async hop to the one thread-sensitive thread, before every
        event, each delivery of a room's message included; a delivery touches no database, and the database
        work that does (app mode's store and history) runs in database_sync_to_async, which closes stale
        connections itself, before and after."""
        if message["type"] in LEAN_EVENTS:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        STATS.watch_loop()
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


class RefuseConsumer(AsyncWebsocketConsumer):
    """Any path other than /ws/{room}: refused like a bad room."""

    async def connect(self):
        STATS.connections_refused += 1
        await self.close()
