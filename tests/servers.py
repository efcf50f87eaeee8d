"""Real servers for the tests: each target's processes on loopback, started once per session
and configuration through bench.run.serverproc (free port, /healthz readiness)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from bench.run import serverproc
from bench.run.redisctl import RedisServer, redis_server_binary
from bench.run.serverproc import ServerProcess
from bench.targets import LOCAL_TARGETS, TARGETS
from tests.appsite import Site
from tests.clients import SESSION_COOKIES
from tests.postgres import bin_dir, external_url, postgres_for_tests

# The Redis targets run this suite too (one process each on a private redis-server; delivery across
# processes is tests/test_redis.py's) when a redis-server can be started, as in CI.
REDIS_CONFORMING = ["django-redis", "django-redis-pubsub", "django-redis-pubsub-tuned", "fastapi-redis"]
# Conforming, not (yet) in the bench's default targets: django on uvicorn, the floor, tuned Channels (~6 s each),
# and FastAPI on granian (the rules it breaks: tests/test_conformance.py BREAKS).
EXTRA_CONFORMING = ["django-uvicorn", "reference", "django-tuned", "django-tuned-direct", "django-uvicorn-tuned",
                    "fastapi-granian"]
TARGET_NAMES = [t.strip() for t in os.environ.get("CHAT_TEST_TARGETS", "").split(",") if t.strip()] \
    or LOCAL_TARGETS + EXTRA_CONFORMING + (REDIS_CONFORMING if redis_server_binary() else [])


# App mode (CONTRACT.md) holds the whole relay contract too: on SQLite always, on PostgreSQL when there is one.
APP_CONFORMING = ["django-app-sqlite", "fastapi-app-sqlite"] + (
    ["django-app", "fastapi-app", "django-app-tuned", "fastapi-app-tuned"] if bin_dir() or external_url() else [])
if not os.environ.get("CHAT_TEST_TARGETS"):
    TARGET_NAMES += APP_CONFORMING


class ServerPool:
    """The running servers of one target: the default configuration and named variants."""

    def __init__(self, target: str, log_dir: Path):
        self.target = target
        self.log_dir = log_dir
        self.running: dict[str, tuple[dict[str, str], ServerProcess]] = {}
        self.redis: RedisServer | None = None
        self.site: Site | None = None  # app targets: their database and users
        self.postgres = None

    def get(self, name: str = "default", **env: str) -> ServerProcess:
        """The server named `name`, started with `env` the first time it is asked for."""
        if name in self.running:
            known_env, proc = self.running[name]
            assert known_env == env, f"server {name!r} already runs with {known_env}, not {env}"
            return proc
        target, redis_url = TARGETS[self.target], None
        if target.needs_redis:  # one process on a private Redis: across processes is test_redis.py's job
            self.redis = self.redis or RedisServer(log_dir=self.log_dir / "redis").start()
            target, redis_url = replace(target, processes=1), self.redis.url
        database = {"CHAT_DATABASE_URL": self.app_site().url} if target.env.get("CHAT_APP") == "full" else {}
        procs = serverproc.start(target, self.log_dir / name, env={**database, **env}, redis_url=redis_url)
        assert len(procs) == 1, "conformance tests talk to single-process targets"
        if database:  # every client of an app server signs in, with one user's session (tests/clients.py)
            SESSION_COOKIES[procs[0].base_url] = f"sessionid={self.site.sessions[0]}"
        self.running[name] = (env, procs[0])
        return procs[0]

    def app_site(self) -> Site:
        """A migrated database with signed-in users for an app target's servers: a fresh SQLite file
        for `*-sqlite`, else PostgreSQL (tests/postgres.py)."""
        if self.site is None:
            if self.target.endswith("-sqlite"):
                url = f"sqlite:///{self.log_dir / 'chat.sqlite3'}"
            else:
                self.postgres, url = postgres_for_tests()
            self.site = Site(url)
        return self.site

    def stop_all(self) -> None:
        for _, proc in self.running.values():
            proc.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.remove()

    def check_alive(self) -> None:
        for name, (_, proc) in self.running.items():
            assert proc.alive(), f"{self.target} server {name!r} died:\n{proc.log_tail()}"

    def log_tails(self) -> str:
        return "\n".join(f"--- {self.target} {name} (pid {proc.pid}) ---\n{proc.log_tail()}"
                         for name, (_, proc) in self.running.items())
