"""Django settings: the one place the Django backend reads its environment (see CONTRACT.md)."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

CHAT_MAX_MESSAGE_BYTES = int(os.environ.get("CHAT_MAX_MESSAGE_BYTES", 16 * 1024 * 1024))
CHAT_MEMBER_BACKLOG = int(os.environ.get("CHAT_MEMBER_BACKLOG", 100))
# The limits against hostile clients (CONTRACT.md, "Hostile clients"); `off`: the server as it ships, for
# the bench's stock-vs-hardened figures (the contract's own rules stay).
_hardening = os.environ.get("CHAT_HARDENING", "on")
if _hardening not in ("on", "off"):
    raise SystemExit(f"CHAT_HARDENING must be 'on' or 'off', not {_hardening!r}")
CHAT_HARDENING = _hardening == "on"
CHAT_MEMBER_BACKLOG_BYTES = int(os.environ.get("CHAT_MEMBER_BACKLOG_BYTES", 64 * 1024 * 1024)) \
    if CHAT_HARDENING else None  # None: not bounded in bytes
CHAT_MAX_FRAGMENTS = int(os.environ.get("CHAT_MAX_FRAGMENTS", 4096))  # frames per message
CHAT_HANDSHAKE_TIMEOUT = float(os.environ.get("CHAT_HANDSHAKE_TIMEOUT", 10.0))  # from accept to a request head
CHAT_KEEPALIVE = float(os.environ.get("CHAT_KEEPALIVE", 20.0))  # ping interval, and the time a pong may take
CHAT_MAX_CONNECTIONS = int(os.environ.get("CHAT_MAX_CONNECTIONS", 0))  # 0: from the process's fd limit
CHAT_MAX_PENDING_HANDSHAKES = int(os.environ.get("CHAT_MAX_PENDING_HANDSHAKES", 500))  # past it: 503, Retry-After
# As browsers connect (CONTRACT.md "As browsers connect"): `shipped` lets each server compress as it ships
# (daphne never negotiates permessage-deflate, so on daphne it changes nothing); both TLS paths: wss://
CHAT_COMPRESSION = os.environ.get("CHAT_COMPRESSION", "off")
if CHAT_COMPRESSION not in ("off", "shipped"):
    raise SystemExit(f"CHAT_COMPRESSION must be 'off' or 'shipped', not {CHAT_COMPRESSION!r}")
CHAT_TLS_CERT = os.environ.get("CHAT_TLS_CERT", "")
CHAT_TLS_KEY = os.environ.get("CHAT_TLS_KEY", "")
if bool(CHAT_TLS_CERT) != bool(CHAT_TLS_KEY):
    raise SystemExit("CHAT_TLS_CERT and CHAT_TLS_KEY go together: a certificate (PEM chain) and its key, or neither")
CHAT_ALLOWED_ORIGINS = [h.strip() for h in os.environ.get(
    "CHAT_ALLOWED_ORIGINS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CHAT_REDIS_URL = os.environ.get("CHAT_REDIS_URL", "")
CHAT_LAYER_EXPIRY = int(os.environ.get("CHAT_LAYER_EXPIRY", 60))
CHAT_REDIS_LAYER = os.environ.get("CHAT_REDIS_LAYER", "core")  # with CHAT_REDIS_URL: `core` or `pubsub`
if CHAT_REDIS_LAYER not in ("core", "pubsub"):
    raise SystemExit(f"CHAT_REDIS_LAYER must be 'core' or 'pubsub', not {CHAT_REDIS_LAYER!r}")

# `relay`: transport only, no database, no middleware, no contrib apps. `full`: signed-in members,
# stored messages, history (CONTRACT.md, "App mode"); manage.py always runs the site in `full`.
# `lean` (a tuned target, CONTRACT.md "Tuned"): a channel-layer event skips Channels' per-event hop to its
# database thread (AsyncConsumer.dispatch's aclose_old_connections); `stock`: every event makes it
CHAT_DISPATCH = os.environ.get("CHAT_DISPATCH", "stock")
if CHAT_DISPATCH not in ("stock", "lean"):
    raise SystemExit(f"CHAT_DISPATCH must be 'stock' or 'lean', not {CHAT_DISPATCH!r}")
# `direct` (tuned, in-memory layer only): group_send hands a room's message to each member's queue in turn, where
# stock makes a task and a deepcopy per member; `stock`: as Channels ships it
CHAT_GROUP_SEND = os.environ.get("CHAT_GROUP_SEND", "stock")
if CHAT_GROUP_SEND not in ("stock", "direct"):
    raise SystemExit(f"CHAT_GROUP_SEND must be 'stock' or 'direct', not {CHAT_GROUP_SEND!r}")
if CHAT_GROUP_SEND == "direct" and CHAT_REDIS_URL:
    raise SystemExit("CHAT_GROUP_SEND=direct changes the in-memory layer only: unset it, or CHAT_REDIS_URL")
CHAT_APP = os.environ.get("CHAT_APP", "relay")
if CHAT_APP not in ("relay", "full"):
    raise SystemExit(f"CHAT_APP must be 'relay' or 'full', not {CHAT_APP!r}")
CHAT_DATABASE_URL = os.environ.get("CHAT_DATABASE_URL") or f"sqlite:///{BASE_DIR / 'chat.sqlite3'}"
CHAT_HISTORY_MAX = 1000  # the most ?history=N may ask for

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "chat-bench-not-secret")
DEBUG = False
# /healthz and /stats check Host (DNS rebinding) against the Origin allow-list, plus loopback (the bench).
ALLOWED_HOSTS = [*CHAT_ALLOWED_ORIGINS, "127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = ["channels", "django_chat.chat"]
MIDDLEWARE = []
DATABASES = {}
if CHAT_APP == "full":  # the site: Django's users and sessions, the HTTP side's POST /login
    INSTALLED_APPS[:0] = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
    MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
                  "django.contrib.auth.middleware.AuthenticationMiddleware"]
    # Persistent connections with a health check: database_sync_to_async closes a broken one after
    # each call, so the chat reconnects by itself when the database comes back.
    DATABASES["default"] = dj_database_url.parse(CHAT_DATABASE_URL, conn_max_age=600, conn_health_checks=True)
ROOT_URLCONF = "django_chat.urls"
ASGI_APPLICATION = "django_chat.asgi.application"
if DATABASES and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL: readers do not block the writer, so both backends can share the file; a writer waits
    # up to `timeout` seconds for the lock, then the store fails (CONTRACT.md, "App mode").
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 5,
                                       "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SESSION_ENGINE = "django.contrib.sessions.backends.db"  # the FastAPI backend reads these rows too
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
