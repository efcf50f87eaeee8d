"""Hostile clients, measured at full size (CONTRACT.md, "Hostile clients"): what one client can make each
target hold or suffer, as a dict per target. `python -m bench.run.hostile --targets django,fastapi`.

Each figure is taken on a fresh server with the target's default settings, under an address-space cap
(so a server that buffers without bound dies instead of the machine), loopback only, bounded in time:
- `non_reader`: a member that never reads (SO_RCVBUF 4 KiB) while another sends `owed` 1 MiB messages,
  each after its echo: server RSS growth for it, what reached the reading member, what was dropped, and
  RSS 3 s after the non-reader closed, and who the server closed meanwhile (codes), the sender included;
- `idle_s` / `partial_s`: how long a TCP connection that sends nothing, or half a request line, lives;
- `zero_window_s`: how long that non-reader lives once a 1 MiB message is stuck behind its window;
- `fragments`: one message as 1-byte frames: the longest round trip of a pair chatting meanwhile, the
  close code, and server RSS growth;
- `storm`: `storm` handshakes at once: seconds until each was answered, and the answers by status;
- `fds_per_idle`: file descriptors the server holds per idle TCP connection.
A figure that reached its time cap reads as the cap with `capped` listed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.run import serverproc
from bench.targets import TARGETS

MiB = 1 << 20
MEMORY_CAP = 4096 * MiB  # address space a server may add to what it had when ready
OPTIONS = dict(compression=None, max_size=None, ping_interval=None, open_timeout=30, close_timeout=5)


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


async def non_reader(server, owed: int, cap: float) -> dict:
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
    closed = {code: n - before["close_codes"].get(code, 0) for code, n in stats(server)["close_codes"].items()
              if n - before["close_codes"].get(code, 0)}
    senders_close = a.close_code  # None: the sender is still connected
    slow.close()
    await asyncio.gather(a.close(), b.close())
    await asyncio.sleep(3)
    after = stats(server)
    return {"owed_bytes": owed * MiB, "rss_growth_bytes": mid["rss_bytes"] - before["rss_bytes"],
            "reached_reader": arrived, "seconds": seconds,
            "dropped": {k: mid["drops"][k] - before["drops"].get(k, 0) for k in mid["drops"]
                        if mid["drops"][k] - before["drops"].get(k, 0)},
            "rss_after_leaving_bytes": after["rss_bytes"] - before["rss_bytes"], "zero_window_s": zero_window,
            "closed_meanwhile": closed, "senders_close_code": senders_close}


async def connection_lifetime(server, data: bytes, cap: float) -> float:
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(data)
    try:
        return await lifetime(server, sock, cap)
    finally:
        sock.close()


async def fragments(server, count: int) -> dict:
    before = stats(server)
    sock = await asyncio.to_thread(raw_member, server, "fragments")
    a, b = await pair(server, "bystanders")
    frames = b"\x01\x81\0\0\0\0x" + b"\x00\x81\0\0\0\0x" * (count - 2) + b"\x80\x81\0\0\0\0x"  # masked, zero key
    sender = asyncio.create_task(asyncio.to_thread(sock.sendall, frames))
    answer = asyncio.create_task(asyncio.to_thread(read_until_closed, sock))
    worst, peak = 0.0, 0
    while not sender.done():
        started = time.monotonic()
        await a.send("ping")
        try:
            async with asyncio.timeout(30):
                await b.recv(), await a.recv()
        except TimeoutError:
            worst = 30.0
            break
        worst = max(worst, time.monotonic() - started)
        try:
            peak = max(peak, stats(server)["rss_bytes"] - before["rss_bytes"])
        except OSError:  # /stats waited more than 5 s for the loop
            worst = max(worst, 5.0)
        await asyncio.sleep(0.05)
    await asyncio.gather(sender, return_exceptions=True)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # the server has already reset it
        pass
    received = await answer
    sock.close()
    await asyncio.gather(a.close(), b.close())
    code = int.from_bytes(received[2:4]) if received[:1] == b"\x88" else None
    return {"frames": count, "bystander_worst_rtt_s": round(worst, 2), "rss_peak_growth_bytes": peak,
            "close_code": code}


def read_until_closed(sock: socket.socket, timeout: float = 60.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


async def storm(server, count: int, cap: float) -> dict:
    answers: list[int] = []
    open_ws = []

    async def one() -> None:
        try:
            open_ws.append(await connect(f"{server.ws_url}/ws/storm", **{**OPTIONS, "open_timeout": cap}))
            answers.append(101)
        except InvalidStatus as refused:
            answers.append(refused.response.status_code)
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):  # 0: no valid answer
            answers.append(0)

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    seconds = round(time.monotonic() - started, 1)
    await asyncio.gather(*(ws.close() for ws in open_ws), return_exceptions=True)
    return {"connections": count, "seconds": seconds, "answers": {str(s): answers.count(s) for s in set(answers)}}


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


async def measure_target(name: str, log_dir: Path, owed: int, cap: float, storm_size: int,
                         only: tuple[str, ...] = FIGURES) -> dict:
    figures: dict = {}

    async def on_fresh_server(key: str, measure) -> None:
        if key not in only:
            return
        server = serverproc.start(TARGETS[name], log_dir / key)[0]
        vms = psutil.Process(server.pid).memory_info().vms
        resource.prlimit(server.pid, resource.RLIMIT_AS, (vms + MEMORY_CAP, vms + MEMORY_CAP))
        try:
            figures[key] = await measure(server)
        except Exception as exc:  # a server that died or a client that failed: recorded, not fatal
            figures[key] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            if not server.alive():
                figures[key + "_server_died"] = server.log_tail(5)
            server.stop()

    await on_fresh_server("non_reader", lambda s: non_reader(s, owed, cap))
    await on_fresh_server("idle_s", lambda s: connection_lifetime(s, b"", cap))
    await on_fresh_server("partial_s", lambda s: connection_lifetime(s, b"GET /ws/r HTT", cap))
    await on_fresh_server("fragments", lambda s: fragments(s, 1_000_000))
    await on_fresh_server("storm", lambda s: storm(s, storm_size, cap))
    await on_fresh_server("fds_per_idle", lambda s: asyncio.to_thread(fds_per_idle, s, 200))
    figures["capped_at_s"] = cap
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(IN_MEMORY))
    parser.add_argument("--owed", type=int, default=256, help="1 MiB messages owed to the non-reader")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds any one figure may take")
    parser.add_argument("--storm", type=int, default=2000, help="handshakes at once")
    parser.add_argument("--figures", default=",".join(FIGURES), help="which to measure")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log_dir = Path(tempfile.mkdtemp(prefix="hostile-"))
    only = tuple(args.figures.split(","))
    results = {name: asyncio.run(measure_target(name, log_dir / name, args.owed, args.cap, args.storm, only))
               for name in args.targets.split(",")}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
