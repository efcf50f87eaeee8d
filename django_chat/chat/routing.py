from django.urls import re_path

from django_chat.chat import consumers

# Every /ws/... path reaches the consumer, which validates the room itself so that a bad
# name is refused with 403 exactly as on the FastAPI backend; anything else is refused too.
websocket_urlpatterns = [
    re_path(r"^ws/(?P<room_name>.*)$", consumers.ChatConsumer.as_asgi()),
    re_path(r"", consumers.RefuseConsumer.as_asgi()),
]


def app_urlpatterns() -> list:
    """CHAT_APP=full: the same paths to the app consumer (which needs the site's apps installed)."""
    from django_chat.chat.app_consumer import AppChatConsumer

    return [
        re_path(r"^ws/(?P<room_name>.*)$", AppChatConsumer.as_asgi()),
        re_path(r"", consumers.RefuseConsumer.as_asgi()),
    ]
