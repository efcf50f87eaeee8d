from django.urls import re_path

from django_chat.chat import consumers

# Every /ws/... path reaches the consumer, which validates the room itself so that a bad
# name is refused with 403 exactly as on the FastAPI backend; anything else is refused too.
websocket_urlpatterns = [
    re_path(r"^ws/(?P<room_name>.*)$", consumers.ChatConsumer.as_asgi()),
    re_path(r"", consumers.RefuseConsumer.as_asgi()),
]
app_urlpatterns = [  # CHAT_APP=full
    re_path(r"^ws/(?P<room_name>.*)$", consumers.AppChatConsumer.as_asgi()),
    re_path(r"", consumers.RefuseConsumer.as_asgi()),
]
