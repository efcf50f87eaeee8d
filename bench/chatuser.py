"""The Locust chat member: joins a room, sends at a fixed rate with a random phase, reads everything.

Rooms live inside one load-generator process, so a room's ledger closes where it was
measured. Each room keeps one clock: it starts when its last member has connected, then
runs a warm-up, the measurement window (only messages sent inside it are counted) and a
drain, the same for every member. The ledger counts every message; the window scopes the
rates and latencies.

A member's task only sends: one Multiplexer greenlet per process (bench/wsclient.py) reads every
member's socket and hands each read to the member's Receiver (bench/receiver.py).
"""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.request
import uuid

import gevent
from gevent.event import Event
from locust import User, constant, task
from locust.runners import LocalRunner

from bench import wsclient
from bench.ledger import Member, account_room
from bench.message import encode_header, filler
from bench.receiver import Pending, Receiver
from bench.serverproc import sum_stats
from bench.tally import Tally

TALLY = Tally()  # this process's measurements; locustfile.py ships them to the master
PENDING = Pending(TALLY)  # what every member counted, handed to TALLY together (bench/receiver.py)
_MUX: wsclient.Multiplexer | None = None  # every member's reads, one greenlet per process
_PROCESS_TOKEN = uuid.uuid4().hex[:8]  # room names unique to this process
_NS = 1_000_000_000


class Room:
    """A room's members and its shared clock."""

    _numbers = itertools.count()

    def __init__(self, size: int, prefix: str) -> None:
        self.name = f"{prefix}{_PROCESS_TOKEN}-{next(self._numbers)}"
        self.size = size
        self.members: list[Member] = []
        self.seats_taken = 0  # taken when assigned, before the member's connect() yields
        self.full = Event()
        self.finished = 0
        self.window_start_ns = self.window_end_ns = self.drain_end_ns = 0

    def join(self, member: Member, warmup: float, window: float, drain: float) -> None:
        self.members.append(member)
        if len(self.members) == self.size:
            start = time.time_ns() + int(warmup * _NS)
            self.window_start_ns, self.window_end_ns = start, start + int(window * _NS)
            self.drain_end_ns = self.window_end_ns + int(drain * _NS)
            TALLY.saw_window(self.window_start_ns, self.window_end_ns)
            self.full.set()

    def finish(self) -> None:
        """Called once by each member after the drain; the last one settles the room."""
        self.finished += 1
        if self.finished == len(self.members):
            TALLY.counters.update(account_room(self.members))


def read_servers(hosts: list[str]) -> dict | None:
    """The servers' /stats summed, stamped with when it was read; None if one cannot be read (it died)."""
    at_ns = time.time_ns()
    try:
        snapshots = []
        for host in hosts:
            with urllib.request.urlopen(host + "/stats", timeout=5) as r:
                snapshots.append(json.load(r))
    except (OSError, ValueError):
        return None
    return {**sum_stats(snapshots), "at_ns": at_ns}


class RoomAssigner:
    """Fills rooms one after another, in the order users start in this process."""

    def __init__(self) -> None:
        self.current: Room | None = None
        self.members_finished = 0

    def next_room(self, size: int, prefix: str) -> Room:
        if self.current is None or self.current.seats_taken >= size:
            self.current = Room(size, prefix)
        self.current.seats_taken += 1
        return self.current


ROOMS = RoomAssigner()
_senders = itertools.count(1)


class ChatUser(User):
    """Base chat member; concrete users set nothing, the scenario comes from Locust options."""

    abstract = True
    wait_time = constant(0)  # the one task runs the member's whole session

    def on_start(self) -> None:
        o = self.environment.parsed_options
        self.rate, self.kind, self.burst = o.chat_rate, o.chat_kind, o.chat_burst
        self.body = filler(o.chat_size, binary=o.chat_kind == "binary")
        self.room = ROOMS.next_room(o.chat_room_size, o.chat_room_prefix)
        # the first seats of a room never read and never send: the slow-consumer experiment
        self.reads = self.room.seats_taken > o.chat_nonreading
        self.member = Member(sender=next(_senders), reads=self.reads)
        self.hosts = [h.strip() for h in (o.chat_hosts or self.host).split(",") if h.strip()]
        base = self.hosts[self.member.sender % len(self.hosts)].replace("http://", "ws://", 1)
        self.done, self.client = False, None
        self.receiver = Receiver(self.member, self.room, TALLY, pending=PENDING,
                                 on_rtts=self._fire_round_trips if o.chat_locust_events else None)
        start = time.perf_counter()
        try:
            self.client = wsclient.connect(f"{base}/ws/{self.room.name}")
        except (OSError, ValueError) as e:
            # the member still takes its seat, closed from the start, so that its room fills
            self.member.closed_code, self.member.closed_ns = 1006, time.time_ns()
            TALLY.counters["connect_failed"] += 1
            self.environment.events.request.fire(
                request_type="WS", name="connect", response_time=(time.perf_counter() - start) * 1000,
                response_length=0, exception=e, context={})
        else:
            if self.reads:
                _mux().add(self.client, self.receiver.take, self._closed)
        self.room.join(self.member, o.chat_warmup, o.chat_window, o.chat_drain)

    @task
    def chat(self) -> None:
        room, member = self.room, self.member
        room.full.wait()
        if self.client is not None:
            send = self.client.send_binary if self.kind == "binary" else self.client.send_text
        # One clock pair maps the monotonic schedule to wall time: each message carries the time it
        # was due, not the time it got out, so a sender held up (a blocked send, a late wake-up)
        # shows in the latencies instead of being hidden by fresh timestamps (coordinated omission).
        mono0, wall0 = time.monotonic(), time.time_ns()
        window_end = mono0 + (room.window_end_ns - wall0) / _NS
        interval = 1.0 / self.rate if self.rate > 0 and self.reads else float("inf")
        # a member that never sends (rate 0, or not reading) skips straight to the drain, so the run
        # can end as soon as every room has settled instead of at --run-time
        next_send = time.monotonic() + random.uniform(0, interval) if interval < float("inf") else interval
        burst = self.burst if self.reads else 0
        seq = 0
        burst_due = wall0
        while member.closed_code is None and (burst or next_send < float("inf")):
            if burst:
                burst -= 1  # back-to-back: no pacing until the burst is out, all due at once
                due = burst_due
            else:
                # never sleep past the window's end: a rare sender (0.002/s) would hold its room open
                gevent.sleep(max(0.0, min(next_send, window_end) - time.monotonic()))
                due = wall0 + int((next_send - mono0) * _NS)
                next_send += interval
            now = time.time_ns()
            if now >= room.window_end_ns:
                break
            # counted as sent before the attempt: a message the server refuses mid-write (too big)
            # is still one the room expected, and the ledger must say where it went
            TALLY.counters["client_sent"] += 1
            member.sent_ns.append(now)
            try:
                send(encode_header(member.sender, seq, due) + self.body)
            except OSError:
                break  # the receive side records how the connection ended
            if now >= room.window_start_ns:
                TALLY.counters["window_sent"] += 1
            seq += 1
        gevent.sleep(max(0.0, (room.drain_end_ns - time.time_ns()) / _NS))
        self._finish()
        runner = self.environment.runner
        if isinstance(runner, LocalRunner) and ROOMS.members_finished >= runner.target_user_count:
            gevent.spawn(runner.quit)  # every room has settled: end the run now, not at --run-time
        gevent.sleep(3600)  # idle until Locust stops the run: the member's work is done

    def on_stop(self) -> None:
        self._finish()  # a run cut short still accounts for what was measured
        if self.client is not None:
            _mux().remove(self.client)
        self.receiver.flush()
        if self.client is not None:
            try:
                self.client.close()
            except OSError:
                pass

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.receiver.flush()
            self.room.finish()
            ROOMS.members_finished += 1
            if ROOMS.members_finished == self.environment.runner.target_user_count:
                TALLY.settle_stats = read_servers(self.hosts)  # before any member closes

    def _closed(self, code: int) -> None:
        """The connection ended (close frame, or 1006 for a TCP end): how, unless the member was done."""
        if not self.done:
            self.member.closed_code, self.member.closed_ns = code, time.time_ns()
            TALLY.counters[f"closed:{code}"] += 1

    def _fire_round_trips(self, rtts_us: list[int]) -> None:
        for rtt in rtts_us:
            self.environment.events.request.fire(
                request_type="WS", name=f"round trip {self.kind}", response_time=rtt / 1000,
                response_length=len(self.body), exception=None, context={})


def _mux() -> wsclient.Multiplexer:
    global _MUX
    if _MUX is None:
        _MUX = wsclient.Multiplexer()
    return _MUX


class ChatMember(ChatUser):
    """A chat member as the scenario options describe it."""
