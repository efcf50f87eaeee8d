"""A bare TCP server's half of a WebSocket handshake, for tests that script the server byte by byte."""

from __future__ import annotations

import re
import socket

from bench.load.framing import accept_key


def answer_handshake(conn: socket.socket, then: bytes = b"") -> None:
    """Read the client's upgrade request and accept it; `then` goes out in the same segment."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = re.search(rb"Sec-WebSocket-Key: (\S+)", request)[1].decode()
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(key).encode() + then)
