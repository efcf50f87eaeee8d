"""Accounting for what one member receives: the hot path of the load generator.

The Locust user and the harness self-benchmark both run this code, so the harness's figure
is the real client's capacity. Per message it reads only the 33-byte header (one int parse),
records the sequence number in the member's book and keeps the latency for a batched HDR
record; per batch it does everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bench.framing import BINARY, CLOSE, TEXT
from bench.ledger import Member
from bench.message import HEADER_LEN
from bench.tally import Tally

_NS = 1_000_000_000
_SEQ = 0xFFFFFFFF
_NS64 = (1 << 64) - 1
_BAR = ord("|")


class Window(Protocol):
    window_start_ns: int
    window_end_ns: int


class Receiver:
    def __init__(self, member: Member, window: Window, tally: Tally,
                 on_rtts: Callable[[list[int]], None] | None = None) -> None:
        self.member, self.window, self.tally = member, window, tally
        self.on_rtts = on_rtts  # e.g. to feed Locust's own statistics in the web UI
        self.rtts: list[int] = []
        self.latencies: list[int] = []

    def take(self, events: list, now: int) -> int | None:
        """Account for one batch received at `now`; the close code if the connection closed."""
        record, me = self.member.book.record, self.member.sender
        start, end = self.window.window_start_ns, self.window.window_end_ns
        rtt, lat = self.rtts.append, self.latencies.append
        in_window = foreign = received = 0
        closed = None
        rtts_before = len(self.rtts)
        for op, length, prefix in events:
            if op == TEXT or op == BINARY:
                if length < HEADER_LEN or prefix[32] != _BAR:
                    foreign += 1
                    continue
                head = int(prefix[:32], 16)
                sender, sent = head >> 96, head & _NS64
                record(sender, head >> 64 & _SEQ)
                received += 1
                if start <= sent < end:
                    in_window += 1
                    (rtt if sender == me else lat)((now - sent) // 1000)
            elif op == CLOSE:
                closed = length
                break
        counters = self.tally.counters
        counters["client_received"] += received
        if foreign:
            counters["foreign"] += foreign
        if in_window:
            self.tally.timeline[str((now - start) // _NS)] += in_window
            if self.on_rtts and len(self.rtts) > rtts_before:
                self.on_rtts(self.rtts[rtts_before:])
        if len(self.latencies) + len(self.rtts) >= 4096 or closed is not None:
            self.flush()
        return closed

    def flush(self) -> None:
        self.tally.record_latencies("rtt", self.rtts)
        self.tally.record_latencies("latency", self.latencies)
        self.rtts.clear()
        self.latencies.clear()
