"""Blocking WebSocket client for the load generator, on bench.framing.

It only uses the `socket` module, so under gevent's monkey-patching each client is a greenlet.
One `recv_batch()` is one `recv_into` of a preallocated buffer, parsed in one FrameReader.feed,
so per-message cost is a tuple, not a read call and a frame object.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from bench.framing import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Event,
    FrameError,
    FrameReader,
    HandshakeError,
    check_handshake_response,
    close_payload,
    encode_frame,
    handshake_request,
)

RECV_BUFFER = 256 * 1024
_MAX_RESPONSE_HEAD = 65536


class WSClient:
    """One client connection. `close_code` is None while open, then the code the connection ended with
    (the server's close code, 1006 if the TCP connection ended without a close frame)."""

    def __init__(self, sock: socket.socket, reader: FrameReader, early: bytes = b"",
                 bufsize: int = RECV_BUFFER) -> None:
        self.sock = sock
        self.reader = reader
        self.close_code: int | None = None
        self.close_reason = ""
        self._early = early
        self._buf = bytearray(bufsize)
        self._view = memoryview(self._buf)
        self._close_sent = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_text(self, data: bytes | str) -> None:
        self._send(encode_frame(TEXT, data.encode() if isinstance(data, str) else data))

    def send_binary(self, data: bytes) -> None:
        self._send(encode_frame(BINARY, data))

    def _send(self, frame: bytes | list[bytes]) -> None:
        if isinstance(frame, bytes):
            self.sock.sendall(frame)
        else:
            for part in frame:
                self.sock.sendall(part)

    def recv_batch(self) -> list[Event]:
        """Events from one read; pings are answered, a server close is answered and ends the connection.

        A TCP end or reset without a close frame comes back as (CLOSE, 1006, ""). A socket timeout
        propagates. A FrameError fails the connection (close 1002) and propagates.
        """
        if self.close_code is not None:
            raise ConnectionError(f"WebSocket already closed with code {self.close_code}")
        if self._early:
            data, self._early = self._early, b""
        else:
            try:
                n = self.sock.recv_into(self._buf)
            except (ConnectionResetError, BrokenPipeError):
                n = 0
            if not n:
                self._finish(1006, "")
                return [(CLOSE, 1006, "")]
            data = self._view[:n]
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
                self._send(encode_frame(PONG, payload))
            elif op == CLOSE:
                if not self._close_sent:
                    self._close_sent = True
                    try:
                        self._send(encode_frame(CLOSE, close_payload(code)))
                    except OSError:
                        pass
                self._finish(code, payload)

    def close(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> None:
        """Send a close frame and wait up to `timeout` s for the server's, reading (and dropping) data."""
        if self.close_code is not None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._close_sent = True
            self._send(encode_frame(CLOSE, close_payload(code, reason)))
            while self.close_code is None and (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                self.recv_batch()
        except (OSError, FrameError):
            pass
        if self.close_code is None:
            self._finish(1006, "")

    def _fail(self, code: int) -> None:
        try:
            self._send(encode_frame(CLOSE, close_payload(code)))
        except OSError:
            pass
        self._finish(code, "")

    def _finish(self, code: int, reason: str) -> None:
        self.close_code = code
        self.close_reason = reason
        self.sock.close()


def connect(url: str, origin: str | None = None, timeout: float = 10.0, keep_payload: bool = False,
            recv_timeout: float | None = None) -> WSClient:
    """Open ws://host:port/path (IPv4 or [IPv6]). `timeout` bounds the connect and handshake;
    afterwards reads block (a quiet room is not an error) unless `recv_timeout` is given."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"only ws://host[:port]/path URLs are supported, got {url!r}")
    host, port = parts.hostname, parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, key = handshake_request(host, port, path, origin)
        sock.sendall(request)
        response = b""
        while (end := response.find(b"\r\n\r\n")) < 0:
            if len(response) > _MAX_RESPONSE_HEAD:
                raise HandshakeError("handshake response head too long")
            chunk = sock.recv(65536)
            if not chunk:
                raise HandshakeError(f"connection closed during the handshake after {response[:80]!r}")
            response += chunk
        check_handshake_response(response[:end + 4], key)
        sock.settimeout(recv_timeout)
    except BaseException:
        sock.close()
        raise
    return WSClient(sock, FrameReader(keep_payload), response[end + 4:])
