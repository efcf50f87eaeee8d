"""The bench's message format: a fixed ASCII header, then filler.

The header is readable from the first HEADER_LEN bytes of any message, text or binary,
so a recipient never has to decode a multi-megabyte payload to account for it:

    "%08x%08x%016x|" % (sender, seq, sent_ns)   -> 33 bytes, then filler up to `size`
"""

from __future__ import annotations

import os
import time

HEADER_LEN = 33
_TEXT_FILLER = ("チャット-chat-" * 64).encode()  # valid UTF-8, multi-byte included


def encode_header(sender: int, seq: int, sent_ns: int) -> bytes:
    return b"%08x%08x%016x|" % (sender & 0xFFFFFFFF, seq & 0xFFFFFFFF, sent_ns)


def parse_header(prefix: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(sender, seq, sent_ns) from a message's first HEADER_LEN bytes; ValueError if not ours."""
    head = bytes(prefix[:HEADER_LEN])
    if len(head) != HEADER_LEN or head[32:33] != b"|":
        raise ValueError(f"not a bench message header: {head[:40]!r}")
    return int(head[0:8], 16), int(head[8:16], 16), int(head[16:32], 16)


def filler(size: int, binary: bool) -> bytes:
    """Payload body after the header, made once per size and reused (no per-message cost)."""
    body = max(0, size - HEADER_LEN)
    if binary:
        return os.urandom(min(body, 65536)) * (body // 65536) + os.urandom(body % 65536)
    reps = body // len(_TEXT_FILLER) + 1
    text = (_TEXT_FILLER * reps)[:body].decode(errors="ignore").encode()  # no half characters
    return text + b"." * (body - len(text))


def make_message(sender: int, seq: int, body: bytes) -> bytes:
    return encode_header(sender, seq, time.time_ns()) + body
