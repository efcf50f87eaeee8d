"""Hostile clients, measured at full size (CONTRACT.md, "Hostile clients"): what one client can make each
target hold or suffer, as the stack ships (CHAT_HARDENING=off) and with this project's limits, as
Results.hostile's record per target. `python -m bench.run.hostile --targets django,fastapi`.

Each mode runs on fresh servers with the default settings (the lifetimes with shorter timers, SETTINGS), under an
address-space cap (a server that buffers without bound dies instead of the machine: its figures read
`died`), loopback only, each figure bounded by `cap` seconds:
- `non_reader`: a member that never reads (SO_RCVBUF 4 KiB) while another sends `owed` 1 MiB messages,
  each after its echo: server RSS growth for it, what reached the reading member, what was dropped, and
  RSS 3 s after the non-reader closed, and who the server closed meanwhile (codes), the sender included;
- `idle_s` / `partial_s`: how long a TCP connection that sends nothing, or half a request line, lives
  (measured beside the non-reader, on its server);
- `zero_window_s`: how long that non-reader lives once a 1 MiB message is stuck behind its window;
- `fragments`: one message as 1-byte frames: the longest round trip of a pair chatting meanwhile, the
  close code, and server RSS growth;
- `storm`: `storm` handshakes at once, each member given three caps to get in and trying again after a 503's
  Retry-After: seconds until each was answered, every answer (by status, or timeout or reset), when the last
  member got in, how long a pair trying to join 1 s in took to chat, the server's CPU seconds, and its
  RSS growth at its peak (CONTRACT.md, "Connection storms");
- `fds_per_idle`: file descriptors the server holds per idle TCP connection;
- `server_errors`: exceptions the servers logged meanwhile, by name ({}: none; a stock server may live on
  broken).
A figure that reached its time cap reads as the cap. Stock servers run at the fd limit the bench was started
with (serverproc), hardened ones raise their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypedDict

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.load.framing import retry_wait
from bench.record import Died, Errored, Failed, Fragments, Hostile, HostileFigures, HostileSizes, NonReader, Storm
from bench.run import certs, database, machine, serverproc
from bench.targets import TARGETS

MiB = 1 << 20
MEMORY_CAP = 4096 * MiB  # address space a server may add to what it had when ready


class Options(TypedDict):
    """The websockets client's `connect` options every hostile client (and storm member) uses."""

    compression: str | None
    max_size: int | None
    ping_interval: float | None
    open_timeout: float | None
    close_timeout: float | None


OPTIONS = Options(compression=None, max_size=None, ping_interval=None, open_timeout=30, close_timeout=5)


def stats(server) -> dict:
    return server.stats()


async def pair(server, room: str):
    return [await connect(f"{server.ws_url}/ws/{room}", **OPTIONS) for _ in range(2)]


def raw_member(server, room: str) -> socket.socket:
    """A member that completes the handshake and then never reads (a tiny window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.sendall((f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def server_holds(server, sock: socket.socket) -> bool:
    """The server still has the TCP connection whose client end is `sock`."""
    port = sock.getsockname()[1]
    return any(c.raddr and c.raddr[1] == port for c in psutil.Process(server.pid).net_connections("tcp"))


async def lifetime(server, sock: socket.socket, cap: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 2 and not await asyncio.to_thread(server_holds, server, sock):
        await asyncio.sleep(0.05)  # until the server has accepted it
    while time.monotonic() - started < cap and await asyncio.to_thread(server_holds, server, sock):
        await asyncio.sleep(0.1)  # poll interval
    return round(time.monotonic() - started, 1)


async def non_reader(server, owed: int, cap: float) -> NonReader:
    before = stats(server)
    joined = time.monotonic()
    slow = await asyncio.to_thread(raw_member, server, "nonreader")
    a, b = await pair(server, "nonreader")
    body, arrived, started = os.urandom(MiB), 0, time.monotonic()
    for _ in range(owed):
        if time.monotonic() - started > cap:
            break
        try:
            await a.send(body)
            async with asyncio.timeout(5):
                await a.recv(), await b.recv()
        except (TimeoutError, ConnectionClosed):
            break
        arrived += 1
    mid, seconds = stats(server), round(time.monotonic() - started, 1)
    zero_window = round(time.monotonic() - joined + await lifetime(server, slow, cap), 1)
    closed = {int(code): n - before["close_codes"].get(code, 0) for code, n in stats(server)["close_codes"].items()
              if n - before["close_codes"].get(code, 0)}
    senders_close = a.close_code  # None: the sender is still connected
    slow.close()
    await asyncio.gather(a.close(), b.close())
    await asyncio.sleep(3)
    after = stats(server)
    return NonReader(owed_bytes=owed * MiB, rss_growth_bytes=mid["rss_bytes"] - before["rss_bytes"],
                     reached_reader=arrived, seconds=seconds,
                     dropped={k: mid["drops"][k] - before["drops"].get(k, 0) for k in mid["drops"]
                              if mid["drops"][k] - before["drops"].get(k, 0)},
                     rss_after_leaving_bytes=after["rss_bytes"] - before["rss_bytes"], zero_window_s=zero_window,
                     closed_meanwhile=closed, senders_close_code=senders_close)


async def connection_lifetime(server, data: bytes, cap: float) -> float:
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(data)
    try:
        return await lifetime(server, sock, cap)
    finally:
        sock.close()


async def fragments(server, count: int, cap: float) -> Fragments:
    before = stats(server)
    sock = await asyncio.to_thread(raw_member, server, "fragments")
    a, b = await pair(server, "bystanders")
    frames = b"\x01\x81\0\0\0\0x" + b"\x00\x81\0\0\0\0x" * (count - 2) + b"\x80\x81\0\0\0\0x"  # masked, zero key
    sender = asyncio.create_task(asyncio.to_thread(sock.sendall, frames))
    answer = asyncio.create_task(asyncio.to_thread(read_until_closed, sock, cap))
    worst, peak, pings, started = 0.0, 0, 0, time.monotonic()
    # until the server has taken the whole message in (one more than the pings), closed it, or the cap
    while time.monotonic() - started < cap and not answer.done():
        sent = time.monotonic()
        await a.send("ping")
        pings += 1
        try:
            async with asyncio.timeout(cap):
                await b.recv(), await a.recv()
        except TimeoutError:
            worst = cap
            break
        worst = max(worst, time.monotonic() - sent)
        try:
            now = stats(server)
        except OSError:  # /stats waited more than 5 s for the loop
            worst = max(worst, 5.0)
            continue
        peak = max(peak, now["rss_bytes"] - before["rss_bytes"])
        if sender.done() and now["messages_in"] - before["messages_in"] > pings:
            break
        await asyncio.sleep(0.05)
    try:
        sock.shutdown(socket.SHUT_WR if sender.done() else socket.SHUT_RDWR)  # RDWR: the cap ends the sending
    except OSError:  # the server has already reset it
        pass
    await asyncio.gather(sender, return_exceptions=True)
    received = await answer
    sock.close()
    await asyncio.gather(a.close(), b.close())
    code = int.from_bytes(received[2:4]) if received[:1] == b"\x88" else None
    return Fragments(frames=count, bystander_worst_rtt_s=round(worst, 2), rss_peak_growth_bytes=peak,
                     close_code=code, seconds=round(time.monotonic() - started, 1))


def read_until_closed(sock: socket.socket, timeout: float = 60.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


STORM_SIZE = 5000  # a server restarted behind a few thousand members meets this storm (make bench-full)
STORM_CAPS = 3  # a storm's members may take three caps to get in: a refused one tries again after Retry-After
PAIR_AFTER_S = 1.0  # into a storm, a pair of members tries to join a room and chat: the members it keeps out


async def handshake(url: str, options: Options, cookie: str | None = None
                    ) -> tuple[ClientConnection | None, str, float | None]:
    """One handshake as a storm's member makes it (the connection storms here, the reconnect storms in
    bench/run/reconnect.py): over wss:// trusting the run's CA, signed in with `cookie` on an app target. The
    connection, or None with the answer (an HTTP status, "timeout", "refused (nothing listening)", or "reset":
    closed unanswered) and the wait a refusal asks for (`retry_wait`; None: do not try again for it)."""
    context = certs.context_for(url)
    try:
        return await connect(url, ssl=context, additional_headers={"Cookie": cookie} if cookie else None,
                             **options), "101", None
    except InvalidStatus as refused:
        status = refused.response.status_code
        return None, str(status), retry_wait(status, refused.response.headers.get("Retry-After"))
    except TimeoutError:
        return None, "timeout", None
    except ConnectionRefusedError:
        return None, "refused (nothing listening)", None
    except (OSError, ConnectionClosed, InvalidHandshake):
        return None, "reset", None


async def member(url: str, until: float, answers: list[tuple[str, float]] | None = None, started: float = 0.0,
                 cookie: str | None = None) -> ClientConnection | None:
    """One member's way in, as a client should take it: a handshake (signed in with `cookie` on an app target),
    and after a refusal it may try again (`retry_wait`, as the bench's members: bench/load/wsclient.py
    `admitted`) another once that wait has passed, until the monotonic time `until`. Each answer goes to
    `answers` with when it came after `started`. The connection, or None."""
    while (left := until - time.monotonic()) > 0:
        ws, answer, wait = await handshake(url, {**OPTIONS, "open_timeout": left}, cookie)
        if answers is not None:
            answers.append((answer, time.monotonic() - started))
        if ws is not None or wait is None:
            return ws
        await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))
    return None


async def pair_joins(server, cap: float, cookies: list[str | None]) -> float | None:
    """Seconds from a pair's first handshake (signed in with the two `cookies`) to its first message back,
    PAIR_AFTER_S into a storm; None: not within `cap`."""
    await asyncio.sleep(PAIR_AFTER_S)
    tried = time.monotonic()
    a = b = None
    try:
        async with asyncio.timeout(cap):
            a = await member(f"{server.ws_url}/ws/storm-pair", tried + cap, cookie=cookies[0])
            b = await member(f"{server.ws_url}/ws/storm-pair", tried + cap, cookie=cookies[1])
            if a is None or b is None:
                return None
            await a.send("here")
            while await b.recv() != "here":
                pass
    except (TimeoutError, OSError, ConnectionClosed):
        return None
    finally:
        await asyncio.gather(*(ws.close() for ws in (a, b) if ws is not None), return_exceptions=True)
    return round(time.monotonic() - tried, 2)


async def storm(server, count: int, cap: float, cookies: list[str | None] | None = None) -> Storm:
    """`count` handshakes at once, each member given `cap` seconds to get in (a 503 with Retry-After is tried
    again after it: `member`): every answer, second by second, when the last member got in, whether a pair that
    tries to join meanwhile gets to chat, and the server's CPU seconds and memory at its peak. On an app target
    `cookies` signs in each member and then the pair (count + 2), so every handshake is a session looked up."""
    signed: list[str | None] = list(cookies) if cookies else [None] * (count + 2)
    answers: list[tuple[str, float]] = []  # every handshake's answer, and when into the storm it came
    started = time.monotonic()
    process = psutil.Process(server.pid)
    rss, cpu = [process.memory_info().rss], process.cpu_times()
    storming = asyncio.gather(*(member(f"{server.ws_url}/ws/storm", started + cap, answers, started, signed[i])
                                for i in range(count)))
    joined = asyncio.create_task(pair_joins(server, cap, signed[count:count + 2]))
    while not storming.done():
        await asyncio.wait([storming], timeout=0.1)
        rss.append(process.memory_info().rss)
    rss.append(process.memory_info().rss)  # every admitted member still connected: a storm over in 0.5 s peaks here
    seconds = round(time.monotonic() - started, 1)
    busy = sum(process.cpu_times()[:2]) - sum(cpu[:2])  # user and system
    pair_s = await joined
    await asyncio.gather(*(ws.close() for ws in storming.result() if ws is not None), return_exceptions=True)
    admitted_at = [at for answer, at in answers if answer == "101"]
    by_second: dict[int, Counter[str]] = {}
    for answer, at in answers:
        by_second.setdefault(int(at), Counter())[answer] += 1
    return Storm(connections=count, seconds=seconds, answers=dict(sorted(Counter(a for a, _ in answers).items())),
                 last_admitted_s=round(max(admitted_at), 2) if admitted_at else None, pair_join_s=pair_s,
                 pair_after_s=PAIR_AFTER_S, rss_growth_bytes=max(rss) - rss[0], retries=True,
                 cpu_s=round(busy, 1),
                 by_second={second: dict(sorted(c.items())) for second, c in sorted(by_second.items())})


def fds_per_idle(server, count: int) -> float:
    process = psutil.Process(server.pid)
    before = process.num_fds()
    socks = [socket.create_connection((server.host, server.port)) for _ in range(count)]
    time.sleep(0.5)
    held = process.num_fds() - before
    for sock in socks:
        sock.close()
    return round(held / count, 2)


FIGURES = ("non_reader", "idle_s", "partial_s", "fragments", "storm", "fds_per_idle")
IN_MEMORY = ("django", "django-uvicorn", "fastapi", "fastapi-seed", "reference")  # one process each
BENCH_STORM = 1000  # make bench's storm on bench.targets.STORMED (bench-full: STORM_SIZE, with every figure)
MODES = {"stock": {"CHAT_HARDENING": "off"}, "hardened": {"CHAT_HARDENING": "on"}}
# Short timers so that what they reap fits the cap and the whole run takes minutes (defaults: 20 s and 10 s);
# a lifetime scales with them, and a connection that nothing reaps outlives the cap whatever they are.
SETTINGS = {"CHAT_KEEPALIVE": "2", "CHAT_HANDSHAKE_TIMEOUT": "2"}


def modes(name: str) -> list[str]:
    """stock and hardened, or stock alone for a target with no limits of this project's (the floor)."""
    return list(MODES) if TARGETS[name].patched else ["stock"]


def exceptions(server) -> list[str]:
    """The exceptions a server logged (tracebacks' last lines), by name, in order."""
    return [line.split(":")[0].strip() for line in server.log_since(0, limit=1 << 20)
            if re.match(r"[\w.]+(Error|Exception)\b", line.strip())]  # dotted: asyncio.exceptions.CancelledError


def death(server) -> str:
    """Why a server process died: its last exception, else its exit status."""
    found = exceptions(server)
    return found[-1] if found else f"exit status {server.popen.returncode}"


HostileFigure = NonReader | Fragments | Storm | float | Failed  # one of HostileFigures' measures
TakeFigure = Callable[[serverproc.ServerProcess], Awaitable[HostileFigure]]


class Capped:
    """A fresh server of `name` under an address-space cap (a server that buffers without bound dies
    there, not the machine), whose figures read Died, and why, when it did not survive them."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.server = serverproc.start(TARGETS[name], log_dir, env=env)[0]
        try:
            vms = psutil.Process(self.server.pid).memory_info().vms
            resource.prlimit(self.server.pid, resource.RLIMIT_AS, (vms + MEMORY_CAP, vms + MEMORY_CAP))
        except BaseException:  # uncapped, it must not run on
            self.server.stop()
            raise

    async def measure(self, measures: dict[str, Awaitable[HostileFigure]]) -> dict[str, HostileFigure]:
        """Each figure of `measures` (name -> coroutine), taken at the same time."""
        taken = await asyncio.gather(*measures.values(), return_exceptions=True)
        if not self.server.alive():
            return dict.fromkeys(measures, Died(died=death(self.server)))
        return {key: Errored(error=f"{type(v).__name__}: {v}"[:300]) if isinstance(v, BaseException) else v
                for key, v in zip(measures, taken, strict=True)}

    def stop(self) -> None:
        self.server.stop()


async def measure_mode(name: str, env: dict[str, str], log_dir: Path, owed: int, cap: float, storm_size: int,
                       frames: int, only: tuple[str, ...], cookies: list[str | None] | None = None) -> HostileFigures:
    """The figures of one target in one mode, on two fresh servers: what it holds for a non-reader while an
    idle and a partial connection wait beside it; then fds per idle connection, a storm (its members signed in
    with `cookies` on an app target), and fragments (last: a stock server may not survive them)."""
    figures: dict[str, HostileFigure] = {}
    logged: Counter[str] | None = None  # exceptions the servers logged; None: no server ran to look at
    holding: dict[str, TakeFigure] = {"non_reader": lambda s: non_reader(s, owed, cap),
                                   "idle_s": lambda s: connection_lifetime(s, b"", cap),
                                   "partial_s": lambda s: connection_lifetime(s, b"GET /ws/r HTT", cap)}
    loading: dict[str, TakeFigure] = {"fds_per_idle": lambda s: asyncio.to_thread(fds_per_idle, s, 200),
                                   "storm": lambda s: storm(s, storm_size, STORM_CAPS * cap, cookies),
                                   "fragments": lambda s: fragments(s, frames, cap)}
    # the short timers only for the lifetimes they decide: at a 2 s handshake timeout the storm measured its one
    # client process, which connects all 5,000 before it writes most heads (CONTRACT.md, "Connection storms")
    for batch, together, settings in ((holding, True, SETTINGS), (loading, False, {})):
        wanted = {k: m for k, m in batch.items() if k in only}
        if not wanted:
            continue
        try:
            capped = Capped(name, {**settings, **env}, log_dir / next(iter(wanted)))
        except serverproc.ServerFailed as failed:
            figures.update(dict.fromkeys(wanted, Errored(error=str(failed)[:300])))
            continue
        try:
            if together:
                figures.update(await capped.measure({k: m(capped.server) for k, m in wanted.items()}))
            else:
                for key, measure in wanted.items():
                    figures.update(await capped.measure({key: measure(capped.server)}))
                    if not capped.server.alive():
                        break
        finally:
            capped.stop()
        # a server that lived on broken says so here; {}: looked, and found none
        logged = (logged or Counter()) + Counter(exceptions(capped.server))
    return HostileFigures.model_validate({**figures, "capped_at_s": cap,
                                          "server_errors": None if logged is None else dict(logged)})


async def measure_target(name: str, log_dir: Path, owed: int = 128, cap: float = 10.0, storm_size: int = STORM_SIZE,
                         frames: int = 500_000, only: tuple[str, ...] = FIGURES) -> Hostile:
    """Results.hostile[name]: each figure stock and hardened; an app target's members signed in, each its own
    session, on a fresh database."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with database.for_storm(TARGETS[name], storm_size + 2, log_dir) as (db, cookies):  # + the pair
        on = {"CHAT_DATABASE_URL": db.url} if db else {}
        figures = {mode: await measure_mode(name, {**MODES[mode], **on}, log_dir / mode, owed, cap, storm_size, frames,
                                            only, cookies) for mode in modes(name)}
    return Hostile(stock=figures.get("stock"), hardened=figures.get("hardened"), settings=SETTINGS,
                   sizes=HostileSizes(owed_bytes=owed * MiB, frames=frames, storm=storm_size),
                   stock_fd_limit=machine.shipped_fd_limit())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(IN_MEMORY))
    parser.add_argument("--owed", type=int, default=128, help="1 MiB messages owed to the non-reader")
    parser.add_argument("--cap", type=float, default=10.0, help="seconds any one figure may take")
    parser.add_argument("--storm", type=int, default=STORM_SIZE, help="handshakes at once")
    parser.add_argument("--frames", type=int, default=500_000, help="1-byte frames of the fragmented message")
    parser.add_argument("--figures", default=",".join(FIGURES), help="which to measure")
    args = parser.parse_args(argv)
    machine.raise_fd_limit()  # for the storm's client ends; stock servers get the limit it had back
    log_dir = Path(tempfile.mkdtemp(prefix="hostile-"))
    only = tuple(args.figures.split(","))
    results = {name: asyncio.run(measure_target(name, log_dir / name, args.owed, args.cap, args.storm,
                                                args.frames, only)).model_dump(mode="json")
               for name in args.targets.split(",")}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
