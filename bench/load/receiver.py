"""Accounting for what one member receives: the hot path of the load generator.

The Locust user and the harness self-benchmark both run this code, so the harness's figure
is the real client's capacity. Per message it reads only the 33-byte header (one int parse),
records the sequence number in the member's book and keeps the latency for a batched HDR
record; per batch it does everything else. At chat rates a batch is one or two messages, so
per batch it only adds to plain ints and dicts in a Pending, which hands the sums to the
Tally about once a second (see Pending).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol

from bench.ledger import Member
from bench.load.framing import BINARY, CLOSE, TEXT
from bench.load.tally import Tally
from bench.message import HEADER_LEN

_NS = 1_000_000_000
_SEQ = 0xFFFFFFFF
_NS64 = (1 << 64) - 1
_BAR = ord("|")


class Window(Protocol):
    window_start_ns: int
    window_end_ns: int


class Pending:
    """What Receivers counted and timed, not yet handed to their Tally; one per Receiver, or one shared
    by all of a process's Receivers.

    Handed over in batches because per batch (a read of one or two messages at chat rates) a Tally
    update costs more than the accounting itself: Counter updates on str keys, and one HDR
    record_value per distinct latency, where one member's few thousand latencies are mostly
    distinct but a process's tens of thousands fall in a narrow band and repeat. Handed over at
    LIMIT latencies, or by a take that sees MAX_AGE_NS passed, so what Locust ships or shows lags by
    about a second at most; a Receiver's flush() hands over everything.
    """

    __slots__ = ("tally", "rtts", "latencies", "received", "foreign", "in_window", "timeline", "rtt_timeline",
                 "due_ns")
    LIMIT = 1 << 16
    MAX_AGE_NS = _NS

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.rtts: list[int] = []  # µs
        self.latencies: list[int] = []
        self.received = self.foreign = 0
        self.in_window = 0  # deliveries that arrived while the room's window was open (throughput)
        self.timeline: dict[int, int] = {}  # whole second since the room's window opened -> deliveries arrived
        self.rtt_timeline: dict[int, list[int]] = {}  # the same seconds -> [sum of round trips µs, how many]
        self.due_ns = 0  # the next take at or after this hands over

    def hand_over(self, now: int) -> None:
        tally = self.tally
        tally.record_latencies("rtt", self.rtts)
        tally.record_latencies("latency", self.latencies)
        self.rtts.clear()  # cleared, never replaced: Receivers hold the lists' append methods
        self.latencies.clear()
        tally.counters["client_received"] += self.received
        if self.in_window:
            tally.counters["window_received"] += self.in_window
        if self.foreign:
            tally.counters["foreign"] += self.foreign
        for second, n in self.timeline.items():
            tally.timeline[str(second)] += n
        for second, (total_us, n) in self.rtt_timeline.items():
            tally.add_rtts(second, total_us, n)
        self.received = self.foreign = self.in_window = 0
        self.timeline.clear()
        self.rtt_timeline.clear()
        self.due_ns = now + self.MAX_AGE_NS


class Receiver:
    def __init__(self, member: Member, window: Window, tally: Tally,
                 on_rtts: Callable[[list[int]], None] | None = None, pending: Pending | None = None,
                 history_from_ns: int | None = None) -> None:
        self.member, self.window, self.tally = member, window, tally
        # app mode, ?history=N: the first frame is {"history": n}, then n stored messages, then live
        self.history_from_ns = history_from_ns  # when the member started to join: the history's latency
        self.history_left = -1 if history_from_ns is not None else None  # -1: the header has not come yet
        self.on_rtts = on_rtts  # e.g. to feed Locust's own statistics in the web UI
        self.pending = pending if pending is not None else Pending(tally)
        if self.pending.tally is not tally:
            raise ValueError("a Receiver's Pending must hand over to the Receiver's own Tally")
        self._rtt, self._lat = self.pending.rtts.append, self.pending.latencies.append
        self._book = member.book

    def take(self, events: list, now: int) -> int | None:
        """Account for one batch received at `now`; the close code if the connection closed."""
        if self.history_left is not None:
            events = self._past_history(events, now)
        book, me, window = self._book, self.member.sender, self.window
        by_sender = book.by_sender
        start, end = window.window_start_ns, window.window_end_ns
        rtt, lat = self._rtt, self._lat
        foreign = received = in_order = 0
        closed = None
        rtts_before = len(self.pending.rtts)
        for op, length, prefix in events:
            if op == TEXT or op == BINARY:
                if length < HEADER_LEN or prefix[32] != _BAR:
                    foreign += 1
                    continue
                head = int(prefix[:32], 16)
                sender, seq, sent = head >> 96, head >> 64 & _SEQ, head & _NS64
                received += 1
                expected = by_sender.get(sender)
                if expected is not None and expected[0] == seq:
                    expected[0] = seq + 1  # RecipientBook.record's common case, inlined
                    in_order += 1
                else:
                    book.record(sender, seq)
                if start <= sent < end:
                    (rtt if sender == me else lat)((now - sent) // 1000)
            elif op == CLOSE:
                closed = length
                break
        book.total += in_order  # record() counted the others
        pending = self.pending
        pending.received += received
        if foreign:
            pending.foreign += foreign
        if received and now >= start:  # throughput is counted when deliveries arrive, whenever they were sent
            timeline, second = pending.timeline, (now - start) // _NS
            timeline[second] = timeline.get(second, 0) + received
            if now < end:
                pending.in_window += received
            if len(pending.rtts) > rtts_before:
                mine = pending.rtts[rtts_before:]
                at = pending.rtt_timeline.setdefault(second, [0, 0])
                at[0] += sum(mine)
                at[1] += len(mine)
                if self.on_rtts:
                    self.on_rtts(mine)
        if closed is not None or now >= pending.due_ns or len(pending.latencies) >= pending.LIMIT:
            pending.hand_over(now)
        return closed

    def _past_history(self, events: list, now: int) -> list:
        """The events after the history the member asked for: its header, then n stored messages, which
        are not deliveries of this run; counted apart, with the time the whole history took to arrive."""
        live = []
        for event in events:
            op = event[0]
            if self.history_left is None or (op != TEXT and op != BINARY):
                live.append(event)
                continue
            if self.history_left < 0:
                self.history_left = json.loads(bytes(event[2]))["history"]  # short: whole in the prefix
            else:
                self.history_left -= 1
                self.tally.counters["history_received"] += 1
            if self.history_left == 0:
                assert self.history_from_ns is not None  # history_left is only ever set with it
                self.history_left = None
                self.tally.record_latencies("history", [(now - self.history_from_ns) // 1000])
        return live

    def flush(self) -> None:
        """Hand everything counted so far to the Tally."""
        self.pending.hand_over(time.time_ns())
