"""The firehose: servers cheaper than the client they feed, for the harness self-benchmark.

After the WebSocket handshake they write pre-built frames of small bench messages (bench/message.py
headers) as fast as the socket takes them, or, for many members, one message per write at a fixed
total rate, each connection in turn, as a chat server writes each delivery. Each runs in its own
process, pinned to its own core when there are two.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import selectors
import socket
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from bench.load.framing import accept_key
from bench.message import HEADER_LEN, filler

SENDERS = 16
CHUNK_MESSAGES = 512
FAKE_SENDER = 0x40000000  # the Locust mode's senders: never a member's own id (those count up from 1)
FAKE_SENDERS = 4
_CLOSE_1000 = b"\x88\x02\x03\xe8"



def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def _frame(size: int) -> bytes:
    """A `%`-format template of one binary frame; it takes (sender, seq, sent_ns)."""
    if size < HEADER_LEN:
        raise ValueError(f"messages carry a {HEADER_LEN}-byte header, {size} bytes is too small")
    if size < 126:
        head = struct.pack("!BB", 0x82, size)
    else:
        head = struct.pack("!BBH", 0x82, 126, size) if size < 65536 else struct.pack("!BBQ", 0x82, 127, size)
    return head.replace(b"%", b"%%") + b"%08x%08x%016x|" + filler(size, binary=True).replace(b"%", b"%%")


def _chunk(size: int) -> bytes:
    """A `%`-format template of CHUNK_MESSAGES frames; each takes (sender, seq, sent_ns)."""
    return _frame(size) * CHUNK_MESSAGES


def _handshake(conn: socket.socket) -> bool:
    """Answer a WebSocket upgrade on any path; anything else (e.g. Locust's GET /stats) gets a 404."""
    request = b""
    while b"\r\n\r\n" not in request:
        data = conn.recv(4096)
        if not data:
            return False
        request += data
    key = re.search(rb"(?i)\r\nsec-websocket-key:\s*(\S+)", request)
    if key is None:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return False
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(key[1].decode()).encode())
    return True


def _flood(conn: socket.socket, template: bytes) -> None:
    if not _handshake(conn):
        return
    per_sender = CHUNK_MESSAGES // SENDERS
    senders = range(SENDERS)
    for c in itertools.count():
        now = time.time_ns()
        first = c * per_sender
        args = [x for seq in range(first, first + per_sender) for s in senders for x in (s, seq, now)]
        conn.sendall(template % tuple(args))


def serve_one(core: int, conn: Connection, size: int) -> None:
    pin(core)
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


class _Stream:
    """One member's connection on the Locust-mode server: its message counter and unsent bytes."""

    __slots__ = ("sock", "count", "pending")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.count, self.pending = sock, 0, b""


def serve_members(core: int, conn: Connection, size: int, rate: float) -> None:
    """Many members: one message per write, to one connection after another, `rate` writes/s in all.

    Message n of a connection comes from fake sender FAKE_SENDER + n % FAKE_SENDERS with seq
    n // FAKE_SENDERS, so every member's book sees consistent sequences (no gaps, the normal
    accounting path). A connection whose socket is full loses its turn, never a sequence number.
    Members never send (--chat-rate 0), so anything a connection sends is its close frame.
    """
    pin(core)
    frame = _frame(size)
    streams: list[_Stream] = []
    select = selectors.DefaultSelector()
    with socket.create_server(("127.0.0.1", 0), backlog=4096) as listener:
        listener.setblocking(False)
        select.register(listener, selectors.EVENT_READ)
        conn.send(listener.getsockname()[1])
        t0, written, turn = time.monotonic(), 0, 0
        most = max(1, int(rate / 100))  # at most 10 ms of writes at once after a stall
        while True:
            elapsed = time.monotonic() - t0
            due = int(elapsed * rate) - written
            for key, _ in select.select(0 if due > 0 else min(0.05, (written + 1) / rate - elapsed)):
                if key.fileobj is listener:
                    _accept(listener, select, streams)
                else:
                    _hang_up(key.data, select, streams)
            if not streams:
                t0, written = time.monotonic(), 0
                continue
            if due <= 0:
                continue
            written += due
            wall, n = time.time_ns(), len(streams)
            for _ in range(min(due, most)):
                s = streams[turn % n]
                turn += 1
                try:
                    if s.pending:
                        sent = s.sock.send(s.pending)
                        s.pending = s.pending[sent:]
                        continue
                    c = s.count
                    data = frame % (FAKE_SENDER + c % FAKE_SENDERS, c // FAKE_SENDERS, wall)
                    sent = s.sock.send(data)
                except BlockingIOError:
                    continue
                except OSError:
                    continue  # reset: the read side hangs it up
                s.count = c + 1
                if sent < len(data):
                    s.pending = data[sent:]


def _accept(listener: socket.socket, select: selectors.BaseSelector, streams: list[_Stream]) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        try:
            sock.settimeout(5)
            if not _handshake(sock):
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each write its own segment
        except OSError:
            sock.close()
            continue
        stream = _Stream(sock)
        select.register(sock, selectors.EVENT_READ, stream)
        streams.append(stream)


def _hang_up(stream: _Stream, select: selectors.BaseSelector, streams: list[_Stream]) -> None:
    """The member closed: finish the frame in progress, answer its close frame, drop the connection."""
    select.unregister(stream.sock)
    streams.remove(stream)
    try:
        if stream.sock.recv(65536):
            stream.sock.settimeout(1)
            stream.sock.sendall(stream.pending + _CLOSE_1000)
    except OSError:
        pass
    stream.sock.close()


def start_server(target: Callable, args: tuple, core: int) -> tuple[multiprocessing.process.BaseProcess, int]:
    """Start a firehose server process pinned to `core`; it and the port it listens on."""
    ctx = multiprocessing.get_context("spawn")
    server_end, server_conn = ctx.Pipe(duplex=False)
    server = ctx.Process(target=target, args=(core, server_conn, *args), daemon=True)
    server.start()
    deadline = time.monotonic() + 30
    while not server_end.poll(0.1):
        if not server.is_alive() or time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError(f"firehose server did not start (exit code {server.exitcode})")
    return server, server_end.recv()
