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

# The Redis targets run this suite too (one process each on a private redis-server; delivery across
# processes is tests/test_redis.py's) when a redis-server can be started, as in CI.
REDIS_CONFORMING = ["django-redis", "django-redis-pubsub", "fastapi-redis"]
TARGET_NAMES = [t.strip() for t in os.environ.get("CHAT_TEST_TARGETS", "").split(",") if t.strip()] \
    or LOCAL_TARGETS + (REDIS_CONFORMING if redis_server_binary() else [])


class ServerPool:
    """The running servers of one target: the default configuration and named variants."""

    def __init__(self, target: str, log_dir: Path):
        self.target = target
        self.log_dir = log_dir
        self.running: dict[str, tuple[dict[str, str], ServerProcess]] = {}
        self.redis: RedisServer | None = None

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
        procs = serverproc.start(target, self.log_dir / name, env=env, redis_url=redis_url)
        assert len(procs) == 1, "conformance tests talk to single-process targets"
        self.running[name] = (env, procs[0])
        return procs[0]

    def stop_all(self) -> None:
        for _, proc in self.running.values():
            proc.stop()
        if self.redis is not None:
            self.redis.stop()

    def check_alive(self) -> None:
        for name, (_, proc) in self.running.items():
            assert proc.alive(), f"{self.target} server {name!r} died:\n{proc.log_tail()}"

    def log_tails(self) -> str:
        return "\n".join(f"--- {self.target} {name} (pid {proc.pid}) ---\n{proc.log_tail()}"
                         for name, (_, proc) in self.running.items())
