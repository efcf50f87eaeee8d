"""Django settings: the one place the Django backend reads its environment (see CONTRACT.md)."""

import os

CHAT_MAX_MESSAGE_BYTES = int(os.environ.get("CHAT_MAX_MESSAGE_BYTES", 16 * 1024 * 1024))
CHAT_MEMBER_BACKLOG = int(os.environ.get("CHAT_MEMBER_BACKLOG", 100))
CHAT_ALLOWED_ORIGINS = [h.strip() for h in os.environ.get(
    "CHAT_ALLOWED_ORIGINS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CHAT_REDIS_URL = os.environ.get("CHAT_REDIS_URL", "")
CHAT_LAYER_EXPIRY = int(os.environ.get("CHAT_LAYER_EXPIRY", 60))
CHAT_REDIS_LAYER = os.environ.get("CHAT_REDIS_LAYER", "core")  # with CHAT_REDIS_URL: `core` or `pubsub`
if CHAT_REDIS_LAYER not in ("core", "pubsub"):
    raise SystemExit(f"CHAT_REDIS_LAYER must be 'core' or 'pubsub', not {CHAT_REDIS_LAYER!r}")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "chat-bench-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]  # the benchmark binds loopback only; browsers are checked by Origin
INSTALLED_APPS = ["channels", "django_chat.chat"]
MIDDLEWARE = []
ROOT_URLCONF = "django_chat.urls"
ASGI_APPLICATION = "django_chat.asgi.application"
DATABASES = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}

# The stock layers, subclassed to count what they drop and (Redis) to outlive an outage: chat/*layers.py.
_LAYERS = {
    "memory": "django_chat.chat.layers.CountingInMemoryChannelLayer",
    "core": "django_chat.chat.redis_layers.CountingRedisChannelLayer",
    "pubsub": "django_chat.chat.redis_layers.CountingRedisPubSubChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _LAYERS[CHAT_REDIS_LAYER if CHAT_REDIS_URL else "memory"],
        "CONFIG": {"capacity": CHAT_MEMBER_BACKLOG, "expiry": CHAT_LAYER_EXPIRY,
                   **({"hosts": [CHAT_REDIS_URL]} if CHAT_REDIS_URL else {})},
    }
}
