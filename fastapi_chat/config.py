"""The one place the FastAPI backend reads its environment (names and defaults: CONTRACT.md)."""

from pathlib import Path
from urllib.parse import urlsplit

from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings

config = Config()

MAX_MESSAGE_BYTES = config("CHAT_MAX_MESSAGE_BYTES", cast=int, default=16 * 1024 * 1024)
MEMBER_BACKLOG = config("CHAT_MEMBER_BACKLOG", cast=int, default=100)
# The limits against hostile clients (CONTRACT.md, "Hostile clients"); `off`: uvicorn as it ships, for the
# bench's stock-vs-hardened figures (the contract's own rules stay).
_hardening = config("CHAT_HARDENING", default="on")
if _hardening not in ("on", "off"):
    raise SystemExit(f"CHAT_HARDENING must be 'on' or 'off', not {_hardening!r}")
HARDENING = _hardening == "on"
BACKLOG_BYTES_BOUND = config("CHAT_MEMBER_BACKLOG_BYTES", cast=int, default=64 * 1024 * 1024)
MEMBER_BACKLOG_BYTES = BACKLOG_BYTES_BOUND if HARDENING else None  # None: not bounded in bytes
MAX_FRAGMENTS = config("CHAT_MAX_FRAGMENTS", cast=int, default=4096)  # frames per message
HANDSHAKE_TIMEOUT = config("CHAT_HANDSHAKE_TIMEOUT", cast=float, default=10.0)
KEEPALIVE = config("CHAT_KEEPALIVE", cast=float, default=20.0)  # ping interval, and the time a pong may take
MAX_CONNECTIONS = config("CHAT_MAX_CONNECTIONS", cast=int, default=0)  # 0: from the process's fd limit
MAX_PENDING_HANDSHAKES = config("CHAT_MAX_PENDING_HANDSHAKES", cast=int, default=500)  # past it: 503, Retry-After
COMPRESSION = config("CHAT_COMPRESSION", default="off")  # `shipped`: permessage-deflate as uvicorn ships it
TLS_CERT = config("CHAT_TLS_CERT", default="")  # with TLS_KEY: serve wss:// (a PEM chain and its key)
TLS_KEY = config("CHAT_TLS_KEY", default="")
ALLOWED_ORIGINS = list(config("CHAT_ALLOWED_ORIGINS", cast=CommaSeparatedStrings,
                              default="localhost,127.0.0.1,[::1]"))
FANOUT = config("CHAT_FANOUT", default="queued")
SERVER = config("CHAT_SERVER", default="uvicorn")  # `granian`: the same app on granian (CONTRACT.md "Tuned")
REDIS_URL = config("CHAT_REDIS_URL", default="")  # empty: one process; redis://...: rooms shared through Redis

# App mode (CONTRACT.md, "App mode"): Django's users, sessions and message table, on the database
# Django's settings name (django_chat/settings.py reads the same variables with the same defaults).
APP = config("CHAT_APP", default="relay")
DATABASE_URL = (config("CHAT_DATABASE_URL", default="")
                or f"sqlite:///{Path(__file__).resolve().parent.parent / 'chat.sqlite3'}")
DB_POOL_SIZE = config("CHAT_DB_POOL_SIZE", cast=int, default=5)  # SQLAlchemy's default; 10 more overflow
STORE = config("CHAT_STORE", default="stock")  # `lean`: no ping before, no BEGIN/COMMIT around (CONTRACT "Tuned")
SECRET_KEY = config("DJANGO_SECRET_KEY", default="chat-bench-not-secret")  # Django signs sessions with it
SESSION_COOKIE = "sessionid"  # Django's SESSION_COOKIE_NAME
HISTORY_MAX = 1000  # the most ?history=N may ask for

if APP not in ("relay", "full"):
    raise SystemExit(f"CHAT_APP must be 'relay' or 'full', not {APP!r}")
if COMPRESSION not in ("off", "shipped"):
    raise SystemExit(f"CHAT_COMPRESSION must be 'off' or 'shipped', not {COMPRESSION!r}")
if bool(TLS_CERT) != bool(TLS_KEY):
    raise SystemExit("CHAT_TLS_CERT and CHAT_TLS_KEY go together: a certificate (PEM chain) and its key, or neither")
if STORE not in ("stock", "lean"):
    raise SystemExit(f"CHAT_STORE must be 'stock' or 'lean', not {STORE!r}")
if SERVER not in ("uvicorn", "granian"):
    raise SystemExit(f"CHAT_SERVER must be 'uvicorn' or 'granian', not {SERVER!r}")
if FANOUT not in ("queued", "seed"):
    raise SystemExit(f"CHAT_FANOUT must be 'queued' or 'seed', not {FANOUT!r}")
if REDIS_URL and urlsplit(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise SystemExit(f"CHAT_REDIS_URL must be empty or a redis://, rediss:// or unix:// URL, not {REDIS_URL!r}")
