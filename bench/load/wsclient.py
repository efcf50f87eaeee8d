"""Blocking WebSocket client for the load generator, on bench.load.framing, and a multiplexed reader.

It only uses the `socket` module, so under gevent's monkey-patching each client is a greenlet.
One `recv_batch()` is one `recv_into` of a preallocated buffer, parsed in one FrameReader.feed,
so per-message cost is a tuple, not a read call and a frame object.

At chat rates a read returns one or two messages, so what a read costs besides the messages
decides the load generator's capacity: `Multiplexer` reads every member's socket from one
greenlet (see its docstring).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from gevent import get_hub, sleep, spawn
from gevent.lock import Semaphore
from gevent.socket import wait_read

from bench.load.deflate import CHROMIUM_OFFER, Agreed, Deflate, NotOffered
from bench.load.framing import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Event,
    FrameError,
    FrameReader,
    HandshakeError,
    HandshakeRefused,
    check_handshake_response,
    close_payload,
    encode_control,
    encode_frame,
    handshake_request,
    retry_wait,
)
from bench.load.tls import Tls

RECV_BUFFER = 256 * 1024
_TURN_NS = 10_000_000  # the multiplexer yields to other greenlets after this long reading
_MAX_RESPONSE_HEAD = 65536


class WSClient:
    """One client connection. `close_code` is None while open, then the code the connection ended with
    (the server's close code, 1006 if the TCP connection ended without a close frame)."""

    def __init__(self, sock: socket.socket, reader: FrameReader, early: bytes = b"",
                 bufsize: int = RECV_BUFFER, tls: Tls | None = None, deflate: Deflate | None = None) -> None:
        self.sock = sock
        self.reader = reader
        self.tls = tls  # wss://: the socket carries TLS records, `early` is plaintext already
        self.deflate = deflate  # permessage-deflate agreed: every message sent is compressed, as a browser does
        self.close_code: int | None = None
        self.close_reason = ""
        self._fd = sock.fileno()
        self._early = early
        self._bufsize = bufsize
        self._view: memoryview | None = None  # allocated by the first recv_batch (a Multiplexer brings its own)
        self._close_sent = False
        # gevent lets one greenlet at a time write a socket: the member's sends take turns with the
        # replies (pong, close) the reading greenlet sends, and a reply never waits behind a send
        self._writing = Semaphore()
        self._pong_owed: bytes | None = None  # a ping that came while a send held the socket
        self.bytes_read = 0  # off the socket after the handshake's response, as they came (encrypted, compressed)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_text(self, data: bytes | str) -> None:
        self._send_message(TEXT, data.encode() if isinstance(data, str) else data)

    def send_binary(self, data: bytes) -> None:
        self._send_message(BINARY, data)

    def _send_message(self, opcode: int, payload: bytes) -> None:
        deflate = self.deflate
        if deflate is None:
            self._send(encode_frame(opcode, payload))
        else:  # compressed under the lock: with context takeover, messages go out in the order they were compressed
            self._send(lambda: encode_frame(opcode, deflate.compress(payload), compressed=True))

    def _send(self, frame: bytes | list[bytes] | Callable[[], bytes | list[bytes]]) -> None:
        """Write `frame` (or what `frame()` makes, once this client's turn to write has come)."""
        with self._writing:
            if callable(frame):
                frame = frame()
            if self.tls is not None:
                frame = self.tls.encrypt(frame if isinstance(frame, bytes) else b"".join(frame))
            if isinstance(frame, bytes):
                self.sock.sendall(frame)
            else:
                for part in frame:
                    self.sock.sendall(part)
            if self._pong_owed is not None:
                pong, self._pong_owed = self._pong_owed, None
                self.sock.sendall(pong if self.tls is None else self.tls.encrypt(pong))

    def _reply(self, frame: bytes, pong: bool = False) -> None:
        """A control reply from the reading side. While a send is under way (a 16 MiB message the server
        is refusing can take seconds) it does not wait: a pong goes out right after that send (a
        server that gets none closes the connection), and the server's close counts without an answer."""
        if self._writing.locked():
            if pong:
                self._pong_owed = frame
            return
        try:
            self._send(frame)
        except OSError:
            pass

    def recv_batch(self) -> list[Event]:
        """Events from one read; pings are answered, a server close is answered and ends the connection.

        A TCP end or reset without a close frame comes back as (CLOSE, 1006, ""). A socket timeout
        propagates. A FrameError fails the connection (close 1002) and propagates.
        """
        if self.close_code is not None:
            raise ConnectionError(f"WebSocket already closed with code {self.close_code}")
        if self._early:
            early, self._early = self._early, b""
            return self._events(early, plain=True)
        if self._view is None:
            self._view = memoryview(bytearray(self._bufsize))
        try:
            n = self.sock.recv_into(self._view)
        except (ConnectionResetError, BrokenPipeError):
            n = 0
        if not n:
            self._finish(1006, "")
            return [(CLOSE, 1006, "")]
        return self._events(self._view[:n])

    def read_ready(self, buf: memoryview) -> list[Event]:
        """Like recv_batch, but one non-blocking read into `buf` (the caller's, reusable once this
        returns: events hold copies); [] when there was nothing to read. The socket's descriptor
        must be non-blocking, as gevent's are."""
        if self._early:
            data, self._early = self._early, b""
            return self._events(data, plain=True)
        if self.close_code is not None:
            raise ConnectionError(f"WebSocket already closed with code {self.close_code}")
        try:
            n = os.readv(self._fd, (buf,))
        except BlockingIOError:
            return []
        except (ConnectionResetError, BrokenPipeError):
            n = 0
        if not n:
            self._finish(1006, "")
            return [(CLOSE, 1006, "")]
        return self._events(buf[:n])

    def _events(self, data: bytes | memoryview, plain: bool = False) -> list[Event]:
        if not plain:
            self.bytes_read += len(data)
        if self.tls is not None and not plain:
            data = self.tls.decrypt(data)
            if self.tls.closed:  # TLS close_notify: the stream ended, with or without a close frame
                events = self._events(data, plain=True) if data else []
                if self.close_code is None:
                    self._finish(1006, "")
                    events.append((CLOSE, 1006, ""))
                return events
        try:
            events = self.reader.feed(data)
        except FrameError:
            self._fail(1002)
            raise
        if self.reader.has_control:
            self._on_control(events)
        return events

    def _on_control(self, events: list[Event]) -> None:
        for op, code, payload in events:
            if op == PING and not self._close_sent:
                assert isinstance(payload, bytes)  # a ping's payload; only a close's third item is text
                self._reply(encode_control(PONG, payload), pong=True)
            elif op == CLOSE:
                assert isinstance(payload, str)  # the close reason
                if not self._close_sent:
                    self._close_sent = True
                    self._reply(encode_control(CLOSE, close_payload(code)))
                self._finish(code, payload)

    def close(self, code: int = 1000, reason: str = "", timeout: float = 2.0,
              take: Callable[[list[Event], int], object] | None = None) -> None:
        """Send a close frame and wait up to `timeout` s for the server's, reading data on the way:
        handed to `take(events, now_ns)` if given, else dropped."""
        if self.close_code is not None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._close_sent = True
            self._send(encode_control(CLOSE, close_payload(code, reason)))
            while self.close_code is None and (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                events = self.recv_batch()
                if take is not None:
                    take(events, time.time_ns())
        except (OSError, FrameError):
            pass
        if self.close_code is None:
            self._finish(1006, "")

    def _fail(self, code: int) -> None:
        self._reply(encode_control(CLOSE, close_payload(code)))
        self._finish(code, "")

    def _finish(self, code: int, reason: str) -> None:
        self.close_code = code
        self.close_reason = reason
        self.sock.close()


class _Watcher(Protocol):
    """What the multiplexer uses of a gevent io watcher (gevent ships no types)."""

    def stop(self) -> None: ...

    def close(self) -> None: ...


# a client the multiplexer reads, its member's `take(events, now_ns)` and `on_close(code)`
_Entry = tuple[WSClient, Callable[[list[Event], int], int | None], Callable[[int], None]]


class Multiplexer:
    """Reads many clients from one greenlet (gevent): a wake-up serves every socket that is ready.

    A greenlet per member blocked in recv pays, per read, for a second recv that fails (EAGAIN)
    and raises, an io watcher started and stopped, and two greenlet switches; at chat rates a read
    holds one or two messages, so that overhead was most of the load generator's CPU. Here each
    socket keeps one level-triggered io watcher whose callback only queues it; the reader greenlet
    runs once per event-loop turn, reads each queued socket once without blocking into one shared
    buffer (cache-warm, and 256 KiB per process instead of per member), and hands the events to
    the member's `take(events, now_ns)`, which returns a close code when the connection ended.
    Pings are answered and closes completed by WSClient as in recv_batch; sends stay with the
    members' own greenlets.
    """

    def __init__(self, bufsize: int = RECV_BUFFER) -> None:
        self._buf = memoryview(bytearray(bufsize))
        self._ready: list[_Entry] = []
        self._watchers: dict[WSClient, _Watcher] = {}
        self._hub = get_hub()
        self._parked = False  # the reader parks itself on its first turn
        self._reader = spawn(self._run)

    def add(self, client: WSClient, take: Callable[[list[Event], int], int | None],
            on_close: Callable[[int], None]) -> None:
        """Read `client` until it closes; then on_close(code) once (1006 for a TCP end, a reset or a
        frame error, as recv_batch's callers count them)."""
        if os.get_blocking(client.fileno()):
            raise ValueError("the multiplexer needs non-blocking sockets (gevent's)")
        watcher = self._hub.loop.io(client.fileno(), 1)
        self._watchers[client] = watcher
        entry: _Entry = (client, take, on_close)
        watcher.start(self._queue, entry)
        if client._early:
            self._queue(entry)  # frames that came with the handshake response

    def remove(self, client: WSClient) -> None:
        """Stop reading `client` (before closing it: its descriptor must not be watched once closed)."""
        watcher = self._watchers.pop(client, None)
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def close(self) -> None:
        for client in list(self._watchers):
            self.remove(client)
        self._reader.kill()

    def _queue(self, entry: _Entry) -> None:
        self._ready.append(entry)
        if self._parked:
            self._parked = False
            self._hub.loop.run_callback(self._reader.switch)  # after this turn's other callbacks

    def _run(self) -> None:
        ready, buf, clock, hub, watching = self._ready, self._buf, time.time_ns, self._hub, self._watchers
        while True:
            turn_end = clock() + _TURN_NS
            # entries queued while this greenlet is switched out (a pong or close reply that blocks,
            # the yield below) are appended to `ready` and served in this same loop
            for client, take, on_close in ready:
                if client not in watching:
                    continue  # removed, or closed earlier in this turn
                try:
                    events = client.read_ready(buf)
                except (OSError, ValueError):
                    events = [(CLOSE, 1006, "")]
                if events:
                    now = clock()
                    closed = take(events, now)
                    if closed is not None:
                        self.remove(client)
                        on_close(closed)
                    if now > turn_end:  # a long turn (big backlogs): let the members' senders run
                        sleep(0)
                        turn_end = clock() + _TURN_NS
            ready.clear()
            self._parked = True
            hub.switch()


SLOW_READ_CHUNK = 16 * 1024


def read_slowly(client: WSClient, take: Callable[[list[Event], int], int | None],
                on_close: Callable[[int], None], bytes_per_s: float) -> None:
    """Read `client` at `bytes_per_s` at most, one SLOW_READ_CHUNK at a time with a pause after each
    (a member on a slow link): the rest waits in the kernel's buffers and then the server's. Run it
    in its own greenlet; it returns when the connection closes (kill it to stop reading first)."""
    if bytes_per_s <= 0:
        raise ValueError(f"a slow reader needs a positive read rate, got {bytes_per_s}")
    buf, pause = memoryview(bytearray(SLOW_READ_CHUNK)), SLOW_READ_CHUNK / bytes_per_s
    while True:
        try:
            if not client._early:  # frames that came with the handshake response are there already
                wait_read(client.fileno())
            events = client.read_ready(buf)
        except (OSError, ValueError):
            events = [(CLOSE, 1006, "")]
        if events:
            closed = take(events, time.time_ns())
            if closed is not None:
                on_close(closed)
                return
        sleep(pause)


@dataclass(frozen=True)
class Manner:
    """How a member connects: as today's bench does (ws://, no extension offered), or as a browser does
    (`browser`: permessage-deflate offered as Chromium offers it) over wss:// (`tls`: trusting only the
    run's own CA)."""

    browser: bool = False
    tls: ssl.SSLContext | None = None


PLAIN = Manner()


def connect(url: str, origin: str | None = None, timeout: float = 10.0, keep_payload: bool = False,
            recv_timeout: float | None = None, cookie: str | None = None, manner: Manner = PLAIN) -> WSClient:
    """Open ws:// or wss://host:port/path (IPv4 or [IPv6]; wss needs `manner.tls`). `timeout` bounds the
    connect and handshakes; afterwards reads block (a quiet room is not an error) unless `recv_timeout` is
    given. The client's `deflate` is set when the server agreed to permessage-deflate."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"only ws:// and wss://host[:port]/path URLs are supported, got {url!r}")
    if (parts.scheme == "wss") != (manner.tls is not None):
        raise ValueError(f"{url}: a wss:// URL needs a TLS context (the run's CA), and only it")
    host, port = parts.hostname, parts.port or (443 if manner.tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    tls = None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if manner.tls is not None:
            tls = Tls(manner.tls, host)
            tls.handshake(sock)
        request, key = handshake_request(host, port, path, origin, cookie,
                                         CHROMIUM_OFFER if manner.browser else None)
        sock.sendall(request if tls is None else tls.encrypt(request))
        response = b""
        while (end := response.find(b"\r\n\r\n")) < 0:
            if len(response) > _MAX_RESPONSE_HEAD:
                raise HandshakeError("handshake response head too long")
            chunk = sock.recv(65536)
            if not chunk:
                raise HandshakeError(f"connection closed during the handshake after {response[:80]!r}")
            response += chunk if tls is None else tls.decrypt(chunk)
        extension = check_handshake_response(response[:end + 4], key, offered=manner.browser)
        deflate = Deflate(Agreed.parse(extension)) if extension else None
        sock.settimeout(recv_timeout)
    except NotOffered as e:
        sock.close()
        raise HandshakeError(str(e)) from None
    except BaseException:
        sock.close()
        raise
    reader = FrameReader(keep_payload, deflate.decompress if deflate else None)
    return WSClient(sock, reader, response[end + 4:], tls=tls, deflate=deflate)


RETRY_FOR_S = 30.0  # how long a member refused 503 with Retry-After keeps trying to get in


def admitted(url: str, cookie: str | None, on_retry: Callable[[int], None], retry_for: float = RETRY_FOR_S,
             manner: Manner = PLAIN) -> WSClient:
    """A member's connection, as a client should get it: a refusal it may try again (`retry_wait`) is tried again
    once that wait has passed, for up to `retry_for` s, telling `on_retry` the status of each refusal it retries.
    Any other refusal, or the last, is raised."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return connect(url, cookie=cookie, manner=manner)
        except HandshakeRefused as e:
            wait = retry_wait(e.status, e.header("retry-after"))
            if wait is None or time.monotonic() + wait > deadline:
                raise
            on_retry(e.status)
            sleep(wait)
