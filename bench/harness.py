"""Harness self-benchmark ("firehose"): how many deliveries one load-generator core can account for.

A raw-socket server process (pinned to its own core when there are two) completes the handshake,
then writes pre-formatted chunks of small binary messages with bench/message.py headers as fast as
the socket takes them. A client process pinned to one core reads them with bench.wsclient and does
the Locust user's own per-message accounting (bench/receiver.py). The result is deliveries per client CPU second,
so it stays meaningful when the server or CPU steal slows the wall clock rate.

    python -m bench.harness [--seconds S] [--repeats N] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import re
import resource
import socket
import statistics
import struct
import time
from multiprocessing.connection import Connection
from types import SimpleNamespace

from bench.framing import accept_key
from bench.ledger import Member
from bench.message import HEADER_LEN, filler
from bench.receiver import Receiver
from bench.tally import Tally
from bench.wsclient import connect

MESSAGE_BYTES = 128
SENDERS = 16
CHUNK_MESSAGES = 512
_FOREVER = 1 << 62


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def _cpu_ticks(line_prefix: str) -> tuple[int, int]:
    """(steal, total) jiffies of one /proc/stat line ("cpu " for all cores, "cpu1 " for one)."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(line_prefix):
                    ticks = [int(x) for x in line.split()[1:9]]
                    return ticks[7], sum(ticks)
    except OSError:
        pass
    return 0, 0


def _steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


def _chunk(size: int) -> bytes:
    """A `%`-format template of CHUNK_MESSAGES frames; each takes (sender, seq, sent_ns)."""
    if size < HEADER_LEN:
        raise ValueError(f"messages carry a {HEADER_LEN}-byte header, {size} bytes is too small")
    if size < 126:
        head = struct.pack("!BB", 0x82, size)
    else:
        head = struct.pack("!BBH", 0x82, 126, size) if size < 65536 else struct.pack("!BBQ", 0x82, 127, size)
    frame = head.replace(b"%", b"%%") + b"%08x%08x%016x|" + filler(size, binary=True).replace(b"%", b"%%")
    return frame * CHUNK_MESSAGES


def _flood(conn: socket.socket, template: bytes) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        data = conn.recv(4096)
        if not data:
            return
        request += data
    key = re.search(rb"(?i)\r\nsec-websocket-key:\s*(\S+)", request)
    if key is None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(key[1].decode()).encode())
    per_sender = CHUNK_MESSAGES // SENDERS
    senders = range(SENDERS)
    for c in itertools.count():
        now = time.time_ns()
        first = c * per_sender
        args = [x for seq in range(first, first + per_sender) for s in senders for x in (s, seq, now)]
        conn.sendall(template % tuple(args))


def _server_main(core: int, conn: Connection, size: int) -> None:
    _pin(core)
    template = _chunk(size)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn.send(listener.getsockname()[1])
        while True:
            sock, _ = listener.accept()
            try:
                _flood(sock, template)
            except OSError:
                pass
            finally:
                sock.close()


def _client_main(core: int, conn: Connection, port: int, seconds: float, repeats: int) -> None:
    try:
        conn.send(_measure(core, port, seconds, repeats))
    except BaseException as exc:
        conn.send({"error": repr(exc)})
        raise


def _measure(core: int, port: int, seconds: float, repeats: int) -> list[dict]:
    _pin(core)
    samples = []
    for _ in range(repeats):
        ws = connect(f"ws://127.0.0.1:{port}/firehose", timeout=5.0, recv_timeout=seconds)
        member, tally = Member(sender=0), Tally()  # sender 0 never sends: every message is a delivery
        receiver = Receiver(member, SimpleNamespace(window_start_ns=0, window_end_ns=_FOREVER), tally)
        recv, add, clock, now = ws.recv_batch, receiver.take, time.monotonic, time.time_ns
        steal0 = _cpu_ticks(f"cpu{core} ")
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = clock()
        end = t0 + seconds
        try:
            while clock() < end:
                add(recv(), now())
        except TimeoutError:
            pass
        receiver.flush()
        t1 = clock()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        steal1 = _cpu_ticks(f"cpu{core} ")
        ws.sock.close()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        delivered = tally.counters["client_received"]
        samples.append({
            "deliveries": delivered, "wall_s": t1 - t0, "cpu_s": cpu,
            "per_core_s": delivered / cpu if cpu > 0 else 0.0,
            "per_wall_s": delivered / (t1 - t0),
            "gaps": sum(len(holes) for _, holes in member.book.by_sender.values()),
            "dups": member.book.duplicates, "foreign": tally.counters["foreign"],
            "p50_us": tally.histograms["latency"].get_value_at_percentile(50),
            "client_core_steal_pct": _steal_pct(steal0, steal1),
        })
    return samples


def run_harness(seconds: float = 3.0, repeats: int = 5, message_bytes: int = MESSAGE_BYTES) -> dict:
    """Measure; takes about seconds * repeats plus ~0.5 s of process start-up, at most twice that."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    client_core, server_core = cores[0], cores[1 % len(cores)]
    ctx = multiprocessing.get_context("spawn")
    server_end, server_conn = ctx.Pipe(duplex=False)
    server = ctx.Process(target=_server_main, args=(server_core, server_conn, message_bytes), daemon=True)
    server.start()
    client = None
    try:
        deadline = time.monotonic() + 30
        while not server_end.poll(0.1):
            if not server.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"firehose server did not start (exit code {server.exitcode})")
        port = server_end.recv()
        client_end, client_conn = ctx.Pipe(duplex=False)
        steal0 = _cpu_ticks("cpu ")
        client = ctx.Process(target=_client_main, args=(client_core, client_conn, port, seconds, repeats),
                             daemon=True)
        client.start()
        if not client_end.poll(2 * seconds * repeats + 30):
            raise RuntimeError("harness client did not report in time")
        samples = client_end.recv()
        if isinstance(samples, dict):
            raise RuntimeError(f"harness client failed: {samples['error']}")
        steal1 = _cpu_ticks("cpu ")
    finally:
        for proc in (client, server):
            if proc is not None and proc.is_alive():
                proc.terminate()
                proc.join(5)
    rates = [s["per_core_s"] for s in samples]
    return {
        "deliveries_per_core_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                                  "samples": rates},
        "deliveries_per_wall_s": statistics.median(s["per_wall_s"] for s in samples),
        "steal_pct": _steal_pct(steal0, steal1),
        "message_bytes": message_bytes, "seconds": seconds, "repeats": repeats,
        "cores": {"client": client_core, "server": server_core, "available": len(cores)},
        "runs": samples,
    }


def summary(result: dict) -> str:
    d = result["deliveries_per_core_s"]
    return (f"harness: {d['median']:,.0f} deliveries/s per client core (median of {result['repeats']}, "
            f"{d['min']:,.0f} .. {d['max']:,.0f}), {result['deliveries_per_wall_s']:,.0f}/s wall, "
            f"steal {result['steal_pct']:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--message-bytes", type=int, default=MESSAGE_BYTES)
    parser.add_argument("--json", help="also write the result as JSON to this path")
    args = parser.parse_args()
    result = run_harness(args.seconds, args.repeats, args.message_bytes)
    print(summary(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
