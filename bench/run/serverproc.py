"""Start a target's server processes on loopback, wait for /healthz, stop them by PID."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import ROOT
from bench.run import certs, machine
from bench.run.procs import free_port, stop_process
from bench.run.redisctl import redis_url as default_redis_url
from bench.targets import Target


class ServerFailed(RuntimeError):
    """A server process exited or never became ready; the message carries its log tail."""


# what makes a target what it is comes from the target and the caller alone, never from an exported variable;
# nor does a test process's own DJANGO_SETTINGS_MODULE (set to import Django in-process) reach a server, which
# must configure itself as it does when the bench starts it
NOT_INHERITED = ("CHAT_REDIS_URL", "CHAT_APP", "CHAT_DATABASE_URL", "CHAT_HARDENING", "CHAT_DISPATCH", "ASGI_THREADS",
                 "DJANGO_SETTINGS_MODULE")


def child_setup(cpus: set[int] | None, env: dict[str, str]):
    """What a server process does before it runs: its CPUs; and a stock server (CHAT_HARDENING=off) gets back
    the fd limit the bench was started with, since the stack as it ships raises none (the bench raised its own)."""
    fd_limit = machine.shipped_fd_limit() if env.get("CHAT_HARDENING") == "off" else None
    if not cpus and fd_limit is None:
        return None

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return setup


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """GET `url`; an https:// one (a wss:// target's) trusting only this run's CA."""
    with urllib.request.urlopen(url, timeout=timeout, context=certs.context_for(url)) as r:
        return r.read()


@dataclass
class ServerProcess:
    """One running server process of a target."""

    target: Target
    host: str
    port: int
    popen: subprocess.Popen
    log_path: Path
    command: list[str] = field(default_factory=list)
    ready_stats: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"{self.target.scheme}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)  # https:// -> wss://

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stats(self) -> dict:
        return json.loads(http_get(self.base_url + "/stats"))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def exit_text(self) -> str:
        return f"server process {self.pid} of {self.target.name} exited with code {self.popen.returncode}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_since(self, offset: int, limit: int = 40) -> list[str]:
        """Lines the server logged after byte `offset` (its first `limit`): evidence for a run."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace").splitlines()[:limit]
        except OSError:
            return []

    @property
    def config(self) -> dict:
        """The limits the server reported when it became ready (CONTRACT.md /stats `config`)."""
        return self.ready_stats["config"]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerFailed(
                    f"{self.target.name} exited with {self.popen.returncode} before it was ready:\n"
                    + self.log_tail()
                )
            try:
                if http_get(self.base_url + "/healthz", timeout=1.0).strip() == b"ok":
                    self.ready_stats = self.stats()
                    return
            except OSError:
                pass
            time.sleep(0.05)  # poll interval of the readiness probe, not a wait for readiness
        raise ServerFailed(f"{self.target.name} not ready after {timeout:.0f}s:\n" + self.log_tail())

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.popen, timeout)


@dataclass
class RemoteServer:
    """A server process the bench did not start (another machine, a compose replica): known by its URL,
    measured through its /stats only (its CPU and RSS as it reports them)."""

    target: Target
    base_url: str
    ready_stats: dict = field(default_factory=dict)
    pid = None
    popen = None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port or 80

    @property
    def config(self) -> dict:
        return self.ready_stats["config"]

    def stats(self) -> dict:
        return json.loads(http_get(self.base_url + "/stats"))

    def alive(self) -> bool:
        try:
            return http_get(self.base_url + "/healthz", timeout=2.0).strip() == b"ok"
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> RemoteServer:
        deadline = time.monotonic() + timeout
        while not self.alive():
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.base_url} did not answer /healthz within {timeout:.0f}s")
            time.sleep(0.1)  # poll interval of the readiness probe
        self.ready_stats = self.stats()
        return self

    def log_size(self) -> int:
        return 0

    def exit_text(self) -> str:
        return f"server {self.base_url} of {self.target.name} stopped answering"

    def log_tail(self, lines: int = 30) -> str:
        return ""

    def log_since(self, offset: int, limit: int = 40) -> list[str]:
        return []

    def stop(self, timeout: float = 10.0) -> None:
        """Not ours to stop."""


Server = ServerProcess | RemoteServer  # what a run measures: started here, or elsewhere (no pid, no popen)


def replicas(url: str) -> list[str]:
    """A server's base URL, or for "dns+URL" one URL per IPv4 address its host name resolves to (a
    compose service scaled to N replicas resolves to N)."""
    if not url.startswith("dns+"):
        return [url]
    parts = urlsplit(url.removeprefix("dns+"))
    found = sorted({info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port, socket.AF_INET)})
    return [f"{parts.scheme}://{address}:{parts.port or 80}" for address in found]


def start(
    target: Target,
    log_dir: Path,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
    redis_url: str | None = None,
    port: int | None = None,
    on: list[str] | None = None,
) -> list[ServerProcess]:
    """Start every process of `target`, each on its own free port (or a one-process target on `port`: a server
    started again where its members knew it), and wait until all are ready. `on`: a command prefix that runs them
    on another host (bench/run/netns.py Hosts.command), reached from here at `host`.

    A target that needs Redis gets CHAT_REDIS_URL = `redis_url`, else bench.run.redisctl.redis_url()
    (`python -m bench` runs its own Redis; `make ui` checks with bench.run.redisctl.check); the others
    never inherit one, so an exported CHAT_REDIS_URL cannot turn an in-memory target into a Redis one; nor
    does an exported CHAT_HARDENING or ASGI_THREADS reach a server: the target's env and `env` decide.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    if target.needs_redis and not redis_url:
        redis_url = default_redis_url()
    target_env = target.server_env(redis_url if target.needs_redis else None)
    if target.tls:
        target_env |= certs.for_this_run().server_env()
    procs: list[ServerProcess] = []
    try:
        for index in range(target.processes):
            if port is not None and target.processes > 1:
                raise ValueError(f"{target.name} runs {target.processes} processes: they cannot share port {port}")
            listen = port or free_port(host)
            command = [*(on or []), *target.command(host, listen)]
            log_path = log_dir / f"{target.name}-{index}.log"
            full_env = {**inherited, **target_env, **(env or {}), "PYTHONUNBUFFERED": "1"}
            with open(log_path, "wb") as log:
                popen = subprocess.Popen(  # own session: the runner, not the terminal's Ctrl-C, stops it
                    command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=child_setup(cpus, full_env),
                )
            procs.append(ServerProcess(target, host, listen, popen, log_path, command))
        for proc in procs:
            proc.wait_ready()
    except BaseException:
        for proc in procs:
            proc.stop()
        raise
    return procs
