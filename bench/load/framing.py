"""Sans-I/O client side of RFC 6455 framing, built for the load generator (permessage-deflate: bench/load/deflate.py).

The websockets library's parser builds a Frame object and copies every payload: at 100k+ small
messages/s on one core that, not the server, would be the bottleneck. FrameReader keeps per data
message only (opcode, total length, first HEADER_LEN payload bytes), which is all the bench needs
to account for a message (bench/message.py), and skips the rest of a large payload uncopied.

Text messages are not checked for UTF-8 validity here: the load generator only counts and times
messages, and the conformance tests check payload bytes with a reference client.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import struct
import sys
from collections.abc import Callable

from bench.message import HEADER_LEN

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
Event = tuple[int, int, "bytes | str"]
"""(TEXT|BINARY, total_length, prefix or payload) | (PING|PONG, length, payload) | (CLOSE, code, reason)"""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_U16 = struct.Struct("!H").unpack_from
_U64 = struct.Struct("!Q").unpack_from
_WINDOW = 8192
_JOIN_MAX = 16384
# Close codes a peer may send (same set as the websockets library accepts).
_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class FrameError(ValueError):
    """The server sent bytes that are not a valid frame stream: fail the connection, never guess."""


class HandshakeError(ValueError):
    """The server's handshake response is not a valid WebSocket upgrade."""


class HandshakeRefused(HandshakeError):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, raw: bytes = b"") -> None:
        super().__init__(f"handshake refused with HTTP {status}")
        self.status = status
        self.raw = raw

    def header(self, name: str) -> str | None:
        """A header of the refusal (`name` in lower case), or None."""
        for line in self.raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def retry_wait(status: int, retry_after: str | None) -> float | None:
    """Seconds a client refused with `status` waits before it tries again, or None: it does not. Only a 503 with
    Retry-After in seconds (a hardened server past its pending handshakes: CONTRACT.md, "Connection storms") is
    tried again, after that ×1–2 at random, so that a storm's refused members do not come back at once."""
    if status != 503 or not (retry_after or "").isdigit():
        return None
    return int(retry_after or 0) * random.uniform(1, 2)


def encode_frame(opcode: int, payload: bytes, fin: bool = True, compressed: bool = False) -> bytes | list[bytes]:
    """A masked client frame; large payloads come back as [header, masked payload] to skip a join.
    `compressed`: the payload is a permessage-deflate message (RSV1 set)."""
    n = len(payload)
    if opcode >= CLOSE and (n > 125 or not fin or compressed):
        raise ValueError("control frames carry <= 125 bytes and cannot be fragmented or compressed")
    b0 = (0x80 if fin else 0) | (0x40 if compressed else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0xFE, n)
    else:
        head = struct.pack("!BBQ", b0, 0xFF, n)
    key = os.urandom(4)
    masked = apply_mask(payload, key)
    if n <= _JOIN_MAX:
        return head + key + masked
    return [head + key, masked]


def encode_control(opcode: int, payload: bytes) -> bytes:
    """A ping, pong or close frame: one bytes object, as its payload (<= 125 bytes) is never split off."""
    frame = encode_frame(opcode, payload)
    assert isinstance(frame, bytes)  # only payloads over _JOIN_MAX come back as [header, payload]
    return frame


def close_payload(code: int, reason: str = "") -> bytes:
    return b"" if code == 1005 else struct.pack("!H", code) + reason.encode()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def handshake_request(host: str, port: int, path: str, origin: str | None = None,
                      cookie: str | None = None, extensions: str | None = None) -> tuple[bytes, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    authority = f"[{host}]" if ":" in host else host
    if port != 80:
        authority += f":{port}"
    lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {authority}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if cookie is not None:  # app mode: the member's Django session (sessionid=...)
        lines.append(f"Cookie: {cookie}")
    if extensions is not None:  # a browser-like member: bench/load/deflate.py CHROMIUM_OFFER
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def check_handshake_response(raw: bytes, key: str, offered: bool = False) -> str | None:
    """Raise unless `raw` (the response head, up to the blank line) accepts the upgrade for `key`; the extension
    the server selected (Sec-WebSocket-Extensions), if `offered` one, else None."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HandshakeError(f"not an HTTP response: {status_line[:80]!r}")
    if int(parts[1]) != 101:
        raise HandshakeRefused(int(parts[1]), raw)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HandshakeError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(f"Upgrade header is {headers.get('upgrade')!r}")
    if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
        raise HandshakeError(f"Connection header is {headers.get('connection')!r}")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
        if name in headers and not (offered and name == "sec-websocket-extensions"):
            raise HandshakeError(f"server selected {name} {headers[name]!r} that was not offered")
    return headers.get("sec-websocket-extensions")


class FrameReader:
    """Incremental parser of a server->client frame stream: `feed(chunk)` -> events it completed.

    Events are plain tuples (see Event), in stream order. A data message's third item is its first
    HEADER_LEN payload bytes (the whole payload with keep_payload=True), across fragments too.
    Frames are parsed from a bytes copy of at most _WINDOW bytes of the chunk at a time, so a
    chunk of small frames costs one memcpy and one tuple per message, while a large payload is
    skipped by arithmetic (`_left`) and only its prefix is ever copied.
    `has_control` tells whether the last feed produced a ping, pong or close, so a caller can skip
    scanning the events for them.
    With `inflate` (permessage-deflate was agreed: Deflate.decompress) a message whose first frame has RSV1 set
    is kept whole and inflated when it completes; its event carries the inflated length and prefix.
    """

    def __init__(self, keep_payload: bool = False, inflate: Callable[[bytes], bytes] | None = None) -> None:
        self.keep_payload = keep_payload
        self._inflate = inflate
        self._compressed = False
        self.has_control = False
        self.closed = False
        self._cap = sys.maxsize if keep_payload else HEADER_LEN
        self._pending = b""
        self._op = 0
        self._len = 0
        self._parts: list[bytes] = []
        self._want = 0
        self._left = 0
        self._fin = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        mv = data if isinstance(data, memoryview) else memoryview(data)
        if mv.nbytes <= _WINDOW and not (self._pending or self._left or self._op or self.closed):
            # The common case at chat rates, a read of one or two small whole data frames with nothing in
            # progress, in one pass (about half the general loop's cost per read); from the first frame
            # that is anything else (control, cut by the read, fragmented, longer, invalid) the general loop.
            w = mv.tobytes()
            e = len(w)
            cap = self._cap
            out: list[Event] = []
            p = 0
            while e - p > 1:
                b0 = w[p]
                n = w[p + 1]
                if n < 126:
                    q = p + 2
                elif n == 126 and e - p > 3:
                    q = p + 4
                    n = _U16(w, p + 2)[0]
                else:
                    break
                if (b0 != 0x82 and b0 != 0x81) or q + n > e:
                    break
                out.append((b0 & 15, n, w[q:q + n if n < cap else q + cap]))
                p = q + n
            if p == e:
                self.has_control = False
                return out
            return out + self._feed(memoryview(w)[p:])
        return self._feed(mv)

    def _feed(self, mv: memoryview) -> list[Event]:
        if mv.ndim != 1 or mv.format != "B":
            mv = mv.cast("B")
        e = mv.nbytes
        out: list[Event] = []
        app = out.append
        self.has_control = False
        if self.closed:
            if e:
                raise FrameError("data after a close frame")
            return out
        cap = self._cap
        pend, self._pending = self._pending, b""
        p = 0
        while True:
            if self._left:
                p = self._payload(mv, p, e, out)
                if self._left:
                    break
            if p >= e and not pend:
                break
            w = pend + mv[p:p + _WINDOW] if pend else mv[p:p + _WINDOW].tobytes()
            base = p - len(pend)
            pend = b""
            we = len(w)
            tail = base + we >= e
            mop = self._op
            i = 0
            while we - i > 1:
                b0 = w[i]
                n = w[i + 1]
                if n < 126:
                    q = i + 2
                elif n == 126:
                    q = i + 4
                    if q > we:
                        break
                    n = _U16(w, i + 2)[0]
                elif n == 127:
                    q = i + 10
                    if q > we:
                        break
                    n = _U64(w, i + 2)[0]
                    if n >> 63:
                        raise FrameError("64-bit payload length with its most significant bit set")
                else:
                    raise FrameError("masked frame from the server")
                if (b0 == 0x82 or b0 == 0x81) and not mop and q + n <= we:
                    app((b0 & 15, n, w[q:q + n if n < cap else q + cap]))
                    i = q + n
                    continue
                op = b0 & 15
                if b0 & 0x70 and (b0 & 0x70 != 0x40 or self._inflate is None or op not in (TEXT, BINARY)):
                    raise FrameError(f"reserved bits {b0 & 0x70:#04x} set but no extension was negotiated for them")
                if op >= CLOSE:
                    if op > PONG:
                        raise FrameError(f"unknown opcode {op:#x}")
                    if n > 125:
                        raise FrameError(f"control frame (opcode {op:#x}) with a {n}-byte payload (> 125)")
                    if not b0 & 0x80:
                        raise FrameError(f"fragmented control frame (opcode {op:#x})")
                    if q + n > we:
                        break
                    self._control(op, w[q:q + n], out)
                    i = q + n
                    if self.closed:
                        break
                    continue
                if op > BINARY:
                    raise FrameError(f"unknown opcode {op:#x}")
                if op == CONT and not mop:
                    raise FrameError("continuation frame with no fragmented message in progress")
                if op != CONT and mop:
                    raise FrameError("new data frame while a fragmented message is in progress")
                if q + n > we and not tail and n <= _WINDOW - 14:
                    break
                self._begin(op, b0 & 0x80, n, b0 & 0x40)
                if q + n <= we:
                    i = self._payload(w, q, we, out)
                    mop = self._op
                    continue
                i = q
                break
            p = base + i
            if self.closed:
                if p < e:
                    raise FrameError("data after a close frame")
                break
            if self._left:
                continue
            if tail:
                self._pending = w[i:]
                break
        return out

    def _begin(self, op: int, fin: int, n: int, compressed: int) -> None:
        if op:
            self._op = op
            self._len = 0
            self._parts = []
            self._compressed = bool(compressed)
            self._want = sys.maxsize if compressed else self._cap  # only a whole deflated message inflates
        self._len += n
        self._left = n
        self._fin = fin

    def _payload(self, buf: bytes | memoryview, p: int, e: int, out: list[Event]) -> int:
        left = self._left
        take = left if left <= e - p else e - p
        want = self._want
        if want:
            k = take if take < want else want
            self._parts.append(bytes(buf[p:p + k]))
            self._want = want - k
        self._left = left - take
        if not self._left and self._fin:
            payload = b"".join(self._parts)
            if self._compressed:
                assert self._inflate is not None  # _feed lets RSV1 through only with it
                try:
                    payload = self._inflate(payload)
                except ValueError as e:
                    raise FrameError(str(e)) from None
                self._len = len(payload)
                payload = payload[:self._cap]
            out.append((self._op, self._len, payload))
            self._op = 0
            self._parts = []
        return p + take

    def _control(self, op: int, payload: bytes, out: list[Event]) -> None:
        self.has_control = True
        if op != CLOSE:
            out.append((op, len(payload), payload))
            return
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise FrameError("close frame with a 1-byte payload")
        else:
            code = _U16(payload)[0]
            if code not in _CLOSE_CODES and not 3000 <= code < 5000:
                raise FrameError(f"invalid close code {code}")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise FrameError("close reason is not valid UTF-8") from None
        self.closed = True
        out.append((CLOSE, code, reason))
