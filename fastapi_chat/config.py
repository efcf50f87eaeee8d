"""The one place the FastAPI backend reads its environment (names and defaults: CONTRACT.md)."""

from urllib.parse import urlsplit

from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings

config = Config()

MAX_MESSAGE_BYTES = config("CHAT_MAX_MESSAGE_BYTES", cast=int, default=16 * 1024 * 1024)
MEMBER_BACKLOG = config("CHAT_MEMBER_BACKLOG", cast=int, default=100)
ALLOWED_ORIGINS = list(config("CHAT_ALLOWED_ORIGINS", cast=CommaSeparatedStrings,
                              default="localhost,127.0.0.1,[::1]"))
FANOUT = config("CHAT_FANOUT", default="queued")
REDIS_URL = config("CHAT_REDIS_URL", default="")  # empty: one process; redis://...: rooms shared through Redis

if FANOUT not in ("queued", "seed"):
    raise SystemExit(f"CHAT_FANOUT must be 'queued' or 'seed', not {FANOUT!r}")
if REDIS_URL and urlsplit(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise SystemExit(f"CHAT_REDIS_URL must be empty or a redis://, rediss:// or unix:// URL, not {REDIS_URL!r}")
