"""Redis for the scaled-out targets: where it is, whether it answers, and a private one for tests.

The runner calls `check(redis_url())` before it starts a target with `needs_redis`, and passes
the URL to the servers as CHAT_REDIS_URL. Tests and fault injection use `RedisServer`: a
`redis-server` of their own on a free loopback port, which they may kill and restart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.run.procs import free_port, stop_process

DEFAULT_URL = "redis://127.0.0.1:6379/0"
HOW_TO_GET_REDIS = (
    "Start one with `docker compose up -d redis` (compose.yaml at the repo root), or install it "
    "(`sudo apt-get install redis-server`) and run `redis-server --port 6379 --save '' --appendonly no`; "
    "or point CHAT_REDIS_URL at a Redis you have."
)


class RedisUnavailable(RuntimeError):
    """No Redis answers at the URL; the message says how to get one."""


def redis_url() -> str:
    """The Redis the Redis targets use: CHAT_REDIS_URL, or a local default."""
    return os.environ.get("CHAT_REDIS_URL") or DEFAULT_URL


def ping(url: str, timeout: float = 1.0) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                  retry=None)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def check(url: str) -> None:
    """Return if Redis answers PING at `url`; otherwise raise RedisUnavailable saying how to get one."""
    if not ping(url, timeout=2.0):
        raise RedisUnavailable(f"no Redis answers at {url}. {HOW_TO_GET_REDIS}")




# What Redis says about its pub/sub subscribers, for a run's evidence (snapshot()).
SNAPSHOT_INFO = (
    "total_connections_received",  # grows when a subscriber reconnects
    "client_recent_max_output_buffer",  # the largest output buffer of a client lately, bytes
    "client_output_buffer_limit_disconnections",  # Redis >= 7.2 only: clients closed for it
    "pubsub_channels",
)


def snapshot(url: str) -> dict:
    """Redis's own view of the pub/sub leg, which no server process counts: each subscriber connection
    (`id` changes when it reconnects; `omem`: bytes Redis holds for it, not yet written to its socket),
    the INFO fields above, and the pub/sub `client-output-buffer-limit` past which Redis closes a
    subscriber and discards what it held. {"reachable": False} if Redis does not answer."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, retry=None)
    try:
        info = client.info("everything")
        clients = client.client_list()
        limit = client.config_get("client-output-buffer-limit").get("client-output-buffer-limit") or ""
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return {"reachable": False}
    finally:
        client.close()
    words = limit.split()
    return {
        "reachable": True,
        "version": info.get("redis_version"),
        "subscribers": [{k: c.get(k) for k in ("id", "addr", "age", "sub", "omem", "tot-mem")}
                        for c in clients if int(c.get("sub", 0)) + int(c.get("psub", 0)) > 0],
        **{k: info.get(k) for k in SNAPSHOT_INFO},
        "pubsub_output_buffer_limit": " ".join(words[words.index("pubsub") + 1:][:3]) if "pubsub" in words else None,
    }


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """A private `redis-server` on loopback (no persistence), controlled by its PID only.

    `kill()` is a crash (SIGKILL), `stop()` a clean shutdown, `start()` after either starts it again on the
    same port with an empty data set, as a Redis without persistence comes back.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_dir: Path | None = None,
                 cpus: set[int] | None = None, on: list[str] | None = None):
        binary = redis_server_binary()
        if binary is None:
            raise RedisUnavailable("`redis-server` is not on PATH: install it (`sudo apt-get install redis-server`)")
        self.binary = binary
        self.host = host
        self.port = port or free_port(host)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="chat-redis-"))
        self.cpus = cpus  # kept across restarts (an outage starts a new process)
        self.on = on or []  # a command prefix that runs it on another host (bench/run/netns.py Hosts.command)
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"redis-{self.port}.log"

    def output_buffer_closures(self) -> list[str]:
        """Redis's log lines for clients it closed for exceeding their output buffer limit (a
        subscriber that fell behind): each names the client and the bytes discarded with it (`omem=`)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if "output buffer limits" in line]

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.alive():
            return self
        command = [
            *self.on, self.binary, "--bind", self.host, "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.log_dir), "--logfile", "",
            # on another host its clients come over a bridge only it and they are on, not loopback
            *(["--protected-mode", "no"] if self.on else []),
        ]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cpus = self.cpus
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(  # own session: the bench, not the terminal's Ctrl-C, stops it
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        deadline = time.monotonic() + timeout
        while not ping(self.url, timeout=0.5):
            if not self.alive():
                raise RedisUnavailable(f"redis-server exited with {self.popen.returncode}: "
                                       f"see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise RedisUnavailable(f"redis-server on port {self.port} not answering after {timeout:.0f}s")
            time.sleep(0.02)  # poll interval of the readiness probe
        return self

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown, every client connection reset."""
        if self.popen is not None:
            if self.popen.poll() is None:  # alive()
                self.popen.kill()
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is not None:
            stop_process(self.popen, timeout)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisOutage:
    """Fault injection: `server` is killed at `start` (time.monotonic()) and started again on the
    same port `seconds` later. The runner calls `tick()` from its polling loop; `events` says when."""

    def __init__(self, server: RedisServer, start: float, seconds: float = 3.0):
        self.server, self.start, self.seconds = server, start, seconds
        self.events: list[tuple[str, float]] = []  # ("killed" | "restarted", time.time())

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        done = {name for name, _ in self.events}
        if "killed" not in done and now >= self.start:
            self.server.kill()
            self.events.append(("killed", time.time()))
        elif "killed" in done and "restarted" not in done and now >= self.start + self.seconds:
            self.server.start()
            self.events.append(("restarted", time.time()))
