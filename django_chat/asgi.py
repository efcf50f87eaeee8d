"""ASGI entry point: HTTP to Django (healthz, stats, login), WebSocket to the chat consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs settings)
from django.conf import settings  # noqa: E402

from django_chat.chat.origin import BrowserOriginValidator, RefuseWhenDatabaseDown  # noqa: E402
from django_chat.chat.routing import app_urlpatterns, websocket_urlpatterns  # noqa: E402

if settings.CHAT_APP == "full":  # the session's user in the scope, from Django's own sessions and auth
    from channels.auth import AuthMiddlewareStack

    chat = RefuseWhenDatabaseDown(AuthMiddlewareStack(URLRouter(app_urlpatterns())))
else:
    chat = URLRouter(websocket_urlpatterns)

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": BrowserOriginValidator(chat)})
