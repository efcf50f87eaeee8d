"""A reconnect storm (CONTRACT.md "As browsers connect"): what a server restart does to the members chatting on it.
`python -m bench.run.reconnect --targets django,fastapi --members 1000`.

`members` members chat in rooms of ROOM, each sending a message every 1/RATE s. The server is killed (SIGKILL: a
crash, or a deploy that does not drain) and started again on the same port, and every member reconnects at once,
by one of two policies:
- `immediate`: tries again as soon as an attempt fails (a client written without a backoff);
- `backoff`: waits a random time in [0, min(20, 0.5 × 2^attempt)] s before each attempt (exponential backoff with
  full jitter, centrifuge-js's defaults: 0.5 s to 20 s).
A 503 with Retry-After is waited out by both (bench/load/framing.py `retry_wait`), as the bench's members do.
Measured: seconds from the kill until the new server answered, until the first member and every member chatted
again, members back second by second, every failed attempt by cause, the new server's CPU and RSS until the last
was back, and every message sent accounted for: echoed to its sender (the server relayed it to the room), lost with
the killed server (no echo before its connection died), or unexplained (neither; it must be none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.record import Reconnect, ReconnectPolicy
from bench.run import database, machine, serverproc
from bench.run.hostile import Options, handshake
from bench.targets import STORMED, TARGETS

ROOM = 10  # members per room
RATE = 0.2  # messages per second per member: chat well within either stack's capacity; the storm is the load
CHAT_S = 2.0  # members chat this long before the kill, and again once every one is back
DRAIN_S = 10.0  # then wait at most this long for the last echoes
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 20.0  # centrifuge-js's defaults
POLICIES: tuple[ReconnectPolicy, ...] = ("immediate", "backoff")
MEMBERS = 1000  # make bench-full's storm: a server restarted behind a thousand members


def backoff_s(attempt: int) -> float:
    """Full jitter: a random wait up to the exponential bound of this attempt (the first is attempt 0)."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** attempt))


@dataclass
class Ledger:
    sent: int = 0
    echoed: int = 0
    lost_with_server: int = 0  # pending on the connection open when the server was killed
    lost_after_back: int = 0  # pending on a later connection that closed before the end
    lost: list[str] = field(default_factory=list)  # the messages lost with the server, to look for in the database
    failures: Counter[str] = field(default_factory=Counter)  # failed attempts to reconnect, by cause
    back_at: dict[str, float] = field(default_factory=dict)  # member -> when it first connected again (monotonic)

    @property
    def unexplained(self) -> int:
        """Sent, and neither echoed nor on a connection that died: still pending at the end, or with a member whose
        task was cancelled."""
        return self.sent - self.echoed - self.lost_with_server - self.lost_after_back


@dataclass
class End:
    """When the members stop sending: unknown (never) until every member is back, or the cap passed."""

    at: float = float("inf")
    known: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self, at: float) -> None:
        self.at = at
        self.known.set()  # a member waiting for its next send hears it now


class Member:
    """One member: chats on its connection; when the connection dies, counts what it sent that never came back,
    and reconnects by its policy."""

    def __init__(self, name: str, url: str, options: Options, ledger: Ledger, end: End, cookie: str | None = None
                 ) -> None:
        self.name, self.url, self.options, self.ledger, self.end = name, url, options, ledger, end
        self.cookie = cookie  # app mode: signed in, as a browser is, with its Django session cookie
        self.pending: set[int] = set()  # sent on this connection, not echoed yet
        self.answered = asyncio.Event()  # set while nothing is pending
        self.seq = 0

    async def reconnect(self, policy: ReconnectPolicy, until: float) -> ClientConnection | None:
        attempt = 0
        while time.monotonic() < until:
            if policy == "backoff":
                await asyncio.sleep(backoff_s(attempt))
            ws, answer, wait = await handshake(self.url, self.options, self.cookie)
            if ws is not None:
                return ws
            self.ledger.failures[answer] += 1
            attempt += 1
            await asyncio.sleep(wait or 0)  # immediate: only a yield to the loop (and a 503's Retry-After)
        return None

    async def chat(self, ws: ClientConnection) -> None:
        """Send every 1/RATE s until the end, reading echoes, until the connection closes; then wait up to DRAIN_S
        for the last echoes."""
        reading = asyncio.create_task(self.read(ws))
        try:
            while time.monotonic() < self.end.at and not reading.done():
                self.seq += 1
                self.pending.add(self.seq)  # before the send: its echo may be read while the send waits
                self.answered.clear()
                self.ledger.sent += 1
                try:
                    await ws.send(f"{self.name}:{self.seq}")
                except ConnectionClosed:
                    break
                told = asyncio.create_task(self.end.known.wait())
                await asyncio.wait([reading, told], timeout=1 / RATE, return_when=asyncio.FIRST_COMPLETED)
                told.cancel()
        finally:
            if self.pending and not reading.done():  # the last echoes, or the connection's end, for DRAIN_S at most
                answered = asyncio.create_task(self.answered.wait())
                await asyncio.wait([reading, answered], timeout=DRAIN_S, return_when=asyncio.FIRST_COMPLETED)
                answered.cancel()
            reading.cancel()

    async def read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                sender, _, seq = str(message).partition(":")
                if sender == self.name and int(seq) in self.pending:
                    self.pending.discard(int(seq))
                    self.ledger.echoed += 1
                    if not self.pending:
                        self.answered.set()
        except ConnectionClosed:
            pass

    async def run(self, first: ClientConnection, policy: ReconnectPolicy, killed: asyncio.Event, back_by: float
                  ) -> None:
        ws: ClientConnection | None = first
        while ws is not None:
            await self.chat(ws)
            if time.monotonic() >= self.end.at:  # the run's end: what is still pending stays unexplained
                await ws.close()
                return
            if self.name in self.ledger.back_at:  # a later connection died: not the kill's
                self.ledger.lost_after_back += len(self.pending)
            else:  # the connection the kill closed, with them unanswered
                self.ledger.lost_with_server += len(self.pending)
                self.ledger.lost += [f"{self.name}:{seq}" for seq in self.pending]
            self.pending.clear()
            await killed.wait()
            ws = await self.reconnect(policy, back_by)
            if ws is not None:
                self.ledger.back_at.setdefault(self.name, time.monotonic())


def client_options(target_name: str) -> Options:
    """What every member's connect gets (over wss://, `handshake` adds the run's CA): a browser's compression for
    the browser-like targets."""
    return Options(compression="deflate" if TARGETS[target_name].browser else None, max_size=None,
                   ping_interval=None, open_timeout=10, close_timeout=2)


def room_prefix() -> str:
    """This storm's rooms: their own names, so that a database an earlier storm wrote to holds none of theirs."""
    return f"reconnect-{uuid.uuid4().hex[:8]}-"


async def storm(target_name: str, members: int, policy: ReconnectPolicy, log_dir: Path, cap: float = 60.0,
                chat_s: float = CHAT_S) -> Reconnect:
    """Members chatting on a fresh server of `target_name` for `chat_s`; the server killed and started again; each
    member back by `policy`, within `cap` seconds of the kill, then chatting `chat_s` more. An app target's members
    sign in (each its own Django session), on the bench's own PostgreSQL or an SQLite file (bench/run/database.py)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with database.for_storm(TARGETS[target_name], members, log_dir) as (db, cookies):
        return await restarted_under(target_name, members, policy, log_dir, cap, chat_s, db, cookies)


async def restarted_under(target_name: str, members: int, policy: ReconnectPolicy, log_dir: Path, cap: float,
                          chat_s: float, db: database.Database | None, cookies: list[str | None]) -> Reconnect:
    target, env = TARGETS[target_name], {"CHAT_DATABASE_URL": db.url} if db else {}
    (server,) = serverproc.start(target, log_dir / "before", env=env)
    ledger, killed, end = Ledger(), asyncio.Event(), End()
    options = client_options(target_name)
    rooms = room_prefix()
    crowd = [Member(f"m{i}", f"{server.ws_url}/ws/{rooms}{i // ROOM}", options, ledger, end, cookies[i])
             for i in range(members)]
    restarted: serverproc.ServerProcess | None = None
    try:
        tried = await asyncio.gather(*(m.reconnect("backoff", time.monotonic() + cap) for m in crowd))
        first = [ws for ws in tried if ws is not None]
        if len(first) < members:
            raise RuntimeError(f"{target_name}: only {len(first)} of {members} members connected before the storm")
        ledger.failures.clear()  # what it took to connect the first time is not the storm's
        kill_at = time.monotonic() + chat_s
        chatting = [asyncio.create_task(m.run(ws, policy, killed, kill_at + cap))
                    for m, ws in zip(crowd, first, strict=True)]
        await asyncio.sleep(max(0.0, kill_at - time.monotonic()))
        os.kill(server.pid, signal.SIGKILL)
        server.popen.wait()
        killed_at = time.monotonic()
        killed.set()
        restarted = (await asyncio.to_thread(serverproc.start, target, log_dir / "after", env=env,
                                             port=server.port))[0]
        ready_s = time.monotonic() - killed_at
        cpu, rss = await watch(restarted, lambda: len(ledger.back_at) >= members, killed_at + cap)
        await asyncio.sleep(chat_s)  # every member back (or the cap passed): chat a little, then stop
        end.set(time.monotonic())
        await asyncio.wait(chatting, timeout=chat_s + DRAIN_S + 10)
        for task in chatting:
            task.cancel()
    finally:
        for proc in (server, restarted):
            if proc is not None:
                proc.stop()
    back = sorted(at - killed_at for at in ledger.back_at.values())
    stored = db.stored(rooms) if db else None  # of the messages lost with the server, those it had kept
    return Reconnect(target=target_name, policy=policy, members=members, capped_at_s=cap,
                     restart_s=round(ready_s, 2), first_back_s=round(back[0], 2) if back else None,
                     back_s=round(back[-1], 2) if len(back) == members else None,
                     back=len(back), back_by_second=dict(sorted(Counter(int(s) for s in back).items())),
                     failures=dict(ledger.failures.most_common()), server_cpu_s=cpu[0],
                     server_cpu_peak_pct=cpu[1], server_rss_peak_bytes=rss, sent=ledger.sent, echoed=ledger.echoed,
                     lost_with_server=ledger.lost_with_server, lost_after_back=ledger.lost_after_back,
                     unexplained=ledger.unexplained,
                     lost_but_stored=sum(m.encode() in stored for m in ledger.lost) if stored is not None else None)


async def watch(server: serverproc.ServerProcess, done, until: float) -> tuple[tuple[float, float | None], int]:
    """The new server's CPU seconds from its start (its own start-up included) until `done()` or `until`, its
    busiest 0.25 s meanwhile in % of a core (None: done before one passed), and its peak RSS."""
    process = psutil.Process(server.pid)
    last, at = sum(process.cpu_times()[:2]), time.monotonic()
    peak_pct: float | None = None
    rss = process.memory_info().rss
    while not done() and time.monotonic() < until:
        await asyncio.sleep(0.25)  # the members share this loop: it may wake late, so the interval is measured
        now, then = sum(process.cpu_times()[:2]), time.monotonic()
        peak_pct, last, at = max(peak_pct or 0.0, 100 * (now - last) / (then - at)), now, then
        rss = max(rss, process.memory_info().rss)
    return (round(sum(process.cpu_times()[:2]), 2), None if peak_pct is None else round(peak_pct, 1)), rss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(STORMED))
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--cap", type=float, default=60.0, help="seconds after the kill every member may take")
    args = parser.parse_args(argv)
    machine.raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="reconnect-"))
    found = [asyncio.run(storm(name, args.members, policy, log_dir / f"{name}-{policy}", args.cap))
             .model_dump(mode="json") for name in args.targets.split(",") for policy in args.policies.split(",")]
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
