from channels.security.websocket import OriginValidator
from django.conf import settings
from django.db import DatabaseError

from django_chat.chat.stats import STATS


class BrowserOriginValidator(OriginValidator):
    """Channels' OriginValidator over CHAT_ALLOWED_ORIGINS, letting through handshakes with no
    Origin header: browsers always send one, so only non-browser clients omit it (CONTRACT.md)."""

    def __init__(self, application):
        super().__init__(application, settings.CHAT_ALLOWED_ORIGINS)

    def valid_origin(self, parsed_origin):
        valid = parsed_origin is None or super().valid_origin(parsed_origin)
        if not valid:
            STATS.refuse("origin")
        return valid


class RefuseWhenDatabaseDown:
    """App mode: AuthMiddlewareStack reads the session and user before the consumer runs; with the
    database unreachable that raises, and daphne would answer the handshake with a 500. Refuse it
    (403) and count it instead, as any other handshake the server cannot serve."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        answered = False

        async def send_answered(message):
            nonlocal answered
            answered = True
            await send(message)

        try:
            return await self.application(scope, receive, send_answered)
        except DatabaseError:
            if answered:
                raise
            STATS.refuse("database")
            await send({"type": "websocket.close"})
