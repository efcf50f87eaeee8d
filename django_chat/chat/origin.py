from channels.security.websocket import OriginValidator
from django.conf import settings

from django_chat.chat.stats import STATS


class BrowserOriginValidator(OriginValidator):
    """Channels' OriginValidator over CHAT_ALLOWED_ORIGINS, letting through handshakes with no
    Origin header: browsers always send one, so only non-browser clients omit it (CONTRACT.md)."""

    def __init__(self, application):
        super().__init__(application, settings.CHAT_ALLOWED_ORIGINS)

    def valid_origin(self, parsed_origin):
        valid = parsed_origin is None or super().valid_origin(parsed_origin)
        if not valid:
            STATS.connections_refused += 1
        return valid
