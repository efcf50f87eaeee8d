"""The named ways to start a backend; the runner, the tests, `make ui` and the report share them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

Stack = Literal["Channels", "FastAPI", "reference"]  # what the report compares; "reference" is the floor
STACKS: dict[str, Stack] = {"django_chat": "Channels", "fastapi_chat": "FastAPI"}  # by the launcher's package


@dataclass(frozen=True)
class Target:
    name: str
    launcher: str  # module run with `python -m`
    env: dict[str, str] = field(default_factory=dict)
    processes: int = 1
    needs_redis: bool = False
    about: str = ""
    suite: str = ""  # which suite of bench/scenarios.toml it runs by default: "" = by its kind (see `kind`)
    tunes: str = ""  # a tuned target (CONTRACT.md "Tuned"): the stock target it changes; `about` says how
    breaks: str = ""  # the contract's rules it is known to break (tests/test_conformance.py BREAKS): not a result
    # As browsers connect (CONTRACT.md): the members offer permessage-deflate as Chromium does, and the server
    # compresses as it ships (env CHAT_COMPRESSION=shipped); `tls`: wss://, a certificate made for the run;
    # `base`: the same server met by the bench's plain ws:// members, which these are measured against
    browser: bool = False
    tls: bool = False
    base: str = ""

    @property
    def kind(self) -> str:
        """The suite it runs: "redis", "app" (a database), "floor" (what another target is measured
        against), "seed" (the blog's loop), "scale" (one process on Redis), "browser" (as browsers connect),
        "tuned" (a change over another in-memory target: what the ablation table needs) or "local" (in memory)."""
        return self.suite or ("redis" if self.needs_redis else "app" if self.database else "tuned" if self.tunes
                              else "local")

    @property
    def lineage(self) -> list[str]:
        """The targets a tuned target is made over, nearest first, down to the stock one ([] for a stock one)."""
        return [self.tunes, *TARGETS[self.tunes].lineage] if self.tunes else []

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def stack(self) -> Stack:
        """The stack it runs: its launcher's package says (a server that is neither stack is a reference)."""
        return STACKS.get(self.launcher.split(".")[0], "reference")

    @property
    def database(self) -> str | None:
        """App mode: the database it chats on ("postgresql" when the bench has one, else SQLite), or None."""
        if self.env.get("CHAT_APP") != "full":
            return None
        return "sqlite" if self.env.get("CHAT_DATABASE_URL") == "" else "postgresql"

    @property
    def reads_asgi_threads(self) -> bool:
        """daphne sizes its event loop's default thread pool from ASGI_THREADS (daphne/server.py)."""
        return self.launcher == "django_chat.serve"

    @property
    def patched(self) -> tuple[str, ...]:
        """This project's fixes to the stack the target runs on (each refuses other library versions)."""
        fixes = {"django_chat.serve": ("django_chat/daphne_fixes.py",),
                 "django_chat.serve_uvicorn": ("serving/uvicorn_fixes.py",),
                 "fastapi_chat.serve": ("serving/uvicorn_fixes.py",)}.get(self.launcher, ())
        return fixes + (("django_chat/chat/redis_layers.py",) if "CHAT_REDIS_LAYER" in self.env else ())

    def command(self, host: str, port: int) -> list[str]:
        return [sys.executable, "-m", self.launcher, "--host", host, "--port", str(port)]

    def server_env(self, redis_url: str | None = None) -> dict[str, str]:
        """The environment every server process of this target gets (over the runner's own):
        the target's settings, and CHAT_REDIS_URL when the target needs Redis."""
        if not self.needs_redis:
            return dict(self.env)
        if not redis_url:
            raise ValueError(f"target {self.name} needs Redis: pass its URL (bench.run.redisctl.redis_url())")
        return {**self.env, "CHAT_REDIS_URL": redis_url}


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("django", "django_chat.serve", about="Channels consumer on daphne, in-memory channel layer"),
        Target("django-uvicorn", "django_chat.serve_uvicorn", suite="floor",
               about="Channels consumer on uvicorn (same app as django), in-memory channel layer"),
        Target("reference", "reference_chat.server", suite="floor",
               about="websockets' own server and broadcast(): the floor"),
        # Tuned (CONTRACT.md "Tuned"): a documented change a team could copy, never in the stock figures
        Target("django-tuned", "django_chat.serve", {"CHAT_DISPATCH": "lean"}, tunes="django",
               about="tuned: deliveries skip Channels' per-event hop to its database thread"),
        Target("django-tuned-direct", "django_chat.serve", {"CHAT_DISPATCH": "lean", "CHAT_GROUP_SEND": "direct"},
               tunes="django-tuned", about="tuned: deliveries skip Channels' per-event database-thread hop, and "
                                           "group_send hands a room's message to each member's queue in turn, with "
                                           "no task or copy per member"),
        Target("django-uvicorn-tuned", "django_chat.serve_uvicorn", {"CHAT_DISPATCH": "lean"}, suite="floor",
               tunes="django-uvicorn", about="tuned: deliveries skip Channels' per-event hop to its database thread"),
        Target("fastapi", "fastapi_chat.serve", {"CHAT_FANOUT": "queued"},
               about="FastAPI receive loop on uvicorn, bounded per-member queues"),
        Target("fastapi-granian", "fastapi_chat.serve", {"CHAT_FANOUT": "queued", "CHAT_SERVER": "granian"},
               tunes="fastapi", about="tuned: the same FastAPI app on granian (a Rust ASGI server) instead of uvicorn",
               breaks="no message-size limit; bad UTF-8 and protocol errors close without a status (1005)"),
        Target("fastapi-seed", "fastapi_chat.serve", {"CHAT_FANOUT": "seed"}, suite="seed",
               about="FastAPI receive loop on uvicorn, the blog's sequential broadcast"),
        Target("django-redis", "django_chat.serve", {"CHAT_REDIS_LAYER": "core"}, processes=2, needs_redis=True,
               about="Channels consumer on daphne, channels-redis RedisChannelLayer, 2 processes"),
        Target("django-redis-pubsub", "django_chat.serve", {"CHAT_REDIS_LAYER": "pubsub"}, processes=2,
               needs_redis=True,
               about="Channels consumer on daphne, channels-redis RedisPubSubChannelLayer, 2 processes"),
        Target("django-redis-pubsub-tuned", "django_chat.serve",
               {"CHAT_REDIS_LAYER": "pubsub", "CHAT_DISPATCH": "lean"}, processes=2, needs_redis=True,
               tunes="django-redis-pubsub",
               about="tuned: django-redis-pubsub, deliveries skip Channels' per-event hop to its database thread"),
        Target("fastapi-redis", "fastapi_chat.serve", {"CHAT_FANOUT": "queued"}, processes=2, needs_redis=True,
               about="FastAPI receive loop on uvicorn, queued fan-out, rooms shared through Redis pub/sub, "
                     "2 processes"),
        # One process on Redis: what bench.plan predicts the two-process targets' capacity from (suite "scale")
        Target("django-redis-1", "django_chat.serve", {"CHAT_REDIS_LAYER": "core"}, needs_redis=True, suite="scale",
               about="Channels consumer on daphne, channels-redis RedisChannelLayer, 1 process"),
        Target("fastapi-redis-1", "fastapi_chat.serve", {"CHAT_FANOUT": "queued"}, needs_redis=True, suite="scale",
               about="FastAPI receive loop on uvicorn, queued fan-out, rooms through Redis pub/sub, 1 process"),
        # App mode (CONTRACT.md): Django's users and sessions, every message stored before fan-out, on the
        # migrated database CHAT_DATABASE_URL names (PostgreSQL when the runner provides one; default SQLite).
        Target("django-app", "django_chat.serve", {"CHAT_APP": "full"},
               about="app mode: Channels consumer on daphne, AuthMiddlewareStack, ORM via database_sync_to_async"),
        Target("fastapi-app", "fastapi_chat.serve", {"CHAT_APP": "full", "CHAT_FANOUT": "queued"},
               about="app mode: FastAPI receive loop on uvicorn, Django session dependency, SQLAlchemy asyncio"),
        Target("django-app-sqlite", "django_chat.serve", {"CHAT_APP": "full", "CHAT_DATABASE_URL": ""},
               about="app mode on SQLite (chat.sqlite3): Channels consumer on daphne"),
        Target("django-app-tuned", "django_chat.serve", {"CHAT_APP": "full", "CHAT_DISPATCH": "lean"},
               tunes="django-app", about="tuned: app mode, deliveries skip Channels' per-event database-thread hop"),
        Target("fastapi-app-tuned", "fastapi_chat.serve", {"CHAT_APP": "full", "CHAT_FANOUT": "queued",
                                                            "CHAT_STORE": "lean"}, tunes="fastapi-app",
               about="tuned: app mode, FastAPI stores each message in one round trip (no ping first, autocommit)"),
        # As browsers connect (CONTRACT.md): the same servers, met as browsers meet them
        Target("django-deflate", "django_chat.serve", {"CHAT_COMPRESSION": "shipped"}, browser=True, suite="browser",
               base="django",
               about="django, its members offering permessage-deflate as Chromium does (daphne declines it)"),
        Target("fastapi-deflate", "fastapi_chat.serve", {"CHAT_FANOUT": "queued", "CHAT_COMPRESSION": "shipped"},
               browser=True, suite="browser", base="fastapi",
               about="fastapi, its members offering permessage-deflate as Chromium does, uvicorn compressing as it "
                     "ships (windows of 12 bits, memLevel 5)"),
        Target("django-wss", "django_chat.serve", tls=True, suite="browser", base="django",
               about="django over wss://: daphne terminates TLS (Twisted, pyOpenSSL)"),
        Target("fastapi-wss", "fastapi_chat.serve", {"CHAT_FANOUT": "queued"}, tls=True, suite="browser",
               base="fastapi", about="fastapi over wss://: uvicorn terminates TLS (asyncio's ssl)"),
        Target("django-browser", "django_chat.serve", {"CHAT_COMPRESSION": "shipped"}, browser=True, tls=True,
               suite="browser", base="django",
               about="django as a browser meets it: wss://, permessage-deflate offered (daphne declines it)"),
        Target("fastapi-browser", "fastapi_chat.serve", {"CHAT_FANOUT": "queued", "CHAT_COMPRESSION": "shipped"},
               browser=True, tls=True, suite="browser", base="fastapi",
               about="fastapi as a browser meets it: wss://, permessage-deflate offered and agreed"),
        Target("fastapi-app-sqlite", "fastapi_chat.serve",
               {"CHAT_APP": "full", "CHAT_FANOUT": "queued", "CHAT_DATABASE_URL": ""},
               about="app mode on SQLite (chat.sqlite3): FastAPI receive loop on uvicorn"),
    ]
}

LOCAL_TARGETS = ["django", "fastapi", "fastapi-seed"]
# `make bench`: the answer's targets in about ten minutes; `make bench-full` runs all (the Redis ones too)
# (the floors, django-uvicorn and reference, and fastapi-seed's payload sweep are in bench-full: the browser rows
# took their minutes)
# and the best tuned target of Channels (its capacity search alone); FastAPI's best is stock: granian breaks the
# contract, fastapi-app-tuned raised no capacity (CONTRACT.md "Tuned")
BENCH_TARGETS = LOCAL_TARGETS + ["django-app", "fastapi-app", "django-browser", "fastapi-browser",
                                 "django-tuned-direct"]
# `make bench-quick`: the headline's four in under five minutes, each capacity held once
QUICK_TARGETS = ["django", "fastapi", "django-app", "fastapi-app"]
# Each stack as a relay and signed in: the connection storms (bench/run/hostile.py; make bench at 1,000, bench-full at
# 5,000) and the reconnect storms (bench/run/reconnect.py, bench-full)
STORMED = ["django", "fastapi", "django-app", "fastapi-app"]
# bench-full searches each capacity an ablation table compares (`ablated`) this many times: the gains' spread
ABLATION_SEARCHES = 3


def ablated(names: list[str]) -> list[str]:
    """Of `names`, the targets an ablation table compares (CONTRACT.md "Tuned"): each tuned one, and the ones
    it is made over."""
    return [n for n in names if TARGETS[n].tunes or any(n in TARGETS[m].lineage for m in names)]


# the Redis targets compose deploys and the Redis tests run (a one-process twin runs the same servers, fewer; a tuned
# one holds the conformance suite: tests/servers.py)
REDIS_TARGETS = [name for name, t in TARGETS.items() if t.kind == "redis" and not t.tunes]
