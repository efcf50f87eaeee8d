"""The bench's message format: a fixed ASCII header, then filler.

The header is readable from the first HEADER_LEN bytes of any message, text or binary,
so a recipient never has to decode a multi-megabyte payload to account for it:

    "%08x%08x%016x|" % (sender, seq, sent_ns)   -> 33 bytes, then filler up to `size`

A member's messages take their filler from `bodies`: chat-like text, or random bytes, that differ from one
message to the next as real ones do, so that a server that compresses (permessage-deflate, with context
takeover) finds in them what it would find in a real chat, not one body repeated.
"""

from __future__ import annotations

import json
import os
import random
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


_WORDS = ("the standup moved to ten, see you there; did anyone deploy the fix yet? 👍 lunch at noon? "
          "チャット works again after the restart, thanks! the build is green, merging now. can you review my "
          "pull request when you have a minute? the meeting notes are in the doc. ok sounds good").split()
_VARIETY_BYTES = 64 * 1024  # more than any deflate window (32 KiB), so a body repeats only out of its reach


def bodies(size: int, binary: bool) -> list[bytes]:
    """Fillers for messages of `size` bytes, made once and then taken in turn (`body_for`): JSON-like chat text
    (valid UTF-8, multi-byte included), or random bytes for binary (incompressible); as many as make
    _VARIETY_BYTES of small ones, one for a body that large."""
    body = max(0, size - HEADER_LEN)
    count = max(1, min(1024, _VARIETY_BYTES // body)) if body else 1
    if binary:
        return [filler(size, binary=True) for _ in range(count)]
    pick = random.Random(size)
    made = []
    for _ in range(count):
        line = json.dumps({"user": f"member-{pick.randrange(100_000)}", "room": f"room-{pick.randrange(1000)}",
                           "text": " ".join(pick.choices(_WORDS, k=max(1, body // 5)))}, ensure_ascii=False)
        text = line.encode()[:body].decode(errors="ignore").encode()  # no half characters
        made.append(text + b" " * (body - len(text)))
    return made


def body_for(bodies: list[bytes], sender: int, seq: int) -> bytes:
    """The filler of a sender's seq-th message: senders in one room start at different places in the list."""
    return bodies[(sender * 7919 + seq) % len(bodies)]


def make_message(sender: int, seq: int, body: bytes) -> bytes:
    return encode_header(sender, seq, time.time_ns()) + body
