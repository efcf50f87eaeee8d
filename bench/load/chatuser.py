"""The Locust chat member: joins a room, sends at a fixed rate with a random phase, reads everything.

Rooms live inside one load-generator process, so a room's ledger closes where it was
measured. Each room keeps one clock: it starts when its last member has connected, then
runs a warm-up, the measurement window (only messages sent inside it are counted) and a
drain, the same for every member. The ledger counts every message; the window scopes the
rates and latencies.

A member's task only sends: one Multiplexer greenlet per process (bench/load/wsclient.py) reads every
member's socket and hands each read to the member's Receiver (bench/load/receiver.py); a slow reader
has a greenlet of its own that reads a little at a time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from functools import cache, partial

import gevent
from gevent.event import Event
from locust import User, constant, task
from locust.runners import LocalRunner

from bench.ledger import Member, account_room
from bench.load import tls, wsclient
from bench.load.framing import HandshakeRefused
from bench.load.receiver import Pending, Receiver
from bench.load.tally import Tally
from bench.message import bodies, body_for, encode_header
from bench.stats import read_servers, wait_quiet

TALLY = Tally()  # this process's measurements; locustfile.py ships them to the master
PENDING = Pending(TALLY)  # what every member counted, handed to TALLY together (bench/load/receiver.py)
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

    def open(self, warmup: float, window: float, drain: float) -> None:
        """Its members start sending now; its window opens after the warm-up."""
        start = time.time_ns() + int(warmup * _NS)
        self.window_start_ns, self.window_end_ns = start, start + int(window * _NS)
        self.drain_end_ns = self.window_end_ns + int(drain * _NS)
        TALLY.saw_window(self.window_start_ns, self.window_end_ns)
        self.full.set()

    def finish(self) -> None:
        """Called once by each seat after the drain; the last one settles the room."""
        self.finished += 1
        if self.finished == self.size:
            TALLY.counters.update(account_room(self.members))


class RoomAssigner:
    """Fills rooms one after another, in the order users start in this process."""

    def __init__(self) -> None:
        self.current: Room | None = None
        self.members_finished = 0
        self.joined = 0
        self.full: list[Room] = []  # full, waiting for the process's last member
        self.opened = False

    def join(self, room: Room, member: Member, users: int, warmup: float, window: float, drain: float) -> None:
        """Every room of this process opens at one moment, once its last member has joined: windows that
        opened as each room filled would be staggered over the spawn, and the sum of the rooms' rates would
        then be a load the servers never carried all at once. Rooms that fill later (more users started from
        the web UI) open as they fill."""
        room.members.append(member)
        self.joined += 1
        if len(room.members) == room.size:
            self.full.append(room)
        if self.opened or self.joined >= users:
            self.opened = True
            for waiting in self.full:
                waiting.open(warmup, window, drain)
            self.full.clear()

    def next_room(self, size: int, prefix: str) -> Room:
        if self.current is None or self.current.seats_taken >= size:
            self.current = Room(size, prefix)
        self.current.seats_taken += 1
        return self.current


ROOMS = RoomAssigner()
SEND, BURST, REJOIN = "send", "burst", "rejoin"  # what a member's schedule holds
_senders = itertools.count(1)


class ChatUser(User):
    """Base chat member; concrete users set nothing, the scenario comes from Locust options.

    A room's seats, in the order members take them: the first `nonreading` never read, the next
    `slow_readers` read at `read_rate` bytes/s (neither sends), the last `churn` leave and join
    again as new members all through the run, and the rest chat."""

    abstract = True
    wait_time = constant(0)  # the one task runs the member's whole session

    def on_start(self) -> None:
        o = self.options = self.environment.parsed_options
        self.rate, self.kind = o.chat_rate, o.chat_kind
        self.bodies = _bodies(o.chat_size, o.chat_kind == "binary")
        self.room = ROOMS.next_room(o.chat_room_size, o.chat_room_prefix)
        seat = self.room.seats_taken
        self.reader = ("none" if seat <= o.chat_nonreading
                       else "slow" if seat <= o.chat_nonreading + o.chat_slow_readers else "all")
        self.churns = seat > o.chat_room_size - o.chat_churn
        hosts = o.chat_hosts or self.host
        if not hosts:  # Locust's web UI can start a run without one
            raise ValueError("no server to chat with: give --host or --chat-hosts")
        self.hosts = [h.strip() for h in hosts.split(",") if h.strip()]
        self.done = False
        self.client: wsclient.WSClient | None = None
        self.slow_reader: gevent.Greenlet | None = None
        self._connect()
        ROOMS.join(self.room, self.member, self.environment.runner.target_user_count, o.chat_warmup, o.chat_window,
                   o.chat_drain)

    def _connect(self) -> None:
        """Join the room as a new member, on its own connection (signed in, in app mode)."""
        member = self.member = Member(sender=next(_senders), reader=self.reader)
        self.seq = 0
        o = self.options
        start_ns = time.time_ns()
        self.receiver = Receiver(member, self.room, TALLY, pending=PENDING,
                                 on_rtts=self._fire_round_trips if o.chat_locust_events else None,
                                 history_from_ns=start_ns if o.chat_history else None)
        base = self.hosts[member.sender % len(self.hosts)].replace("http", "ws", 1)  # https:// -> wss://
        query = f"?history={o.chat_history}" if o.chat_history else ""
        manner = _manner(o)
        try:
            self.client = wsclient.admitted(f"{base}/ws/{self.room.name}{query}", _session_cookie(o), _retried,
                                            manner=manner)
        except (OSError, ValueError) as e:
            # the member still takes its seat, closed from the start, so that its room fills
            self.client = None
            member.closed_code, member.closed_ns = 1006, time.time_ns()
            member.joined_ns = member.closed_ns  # never in the room: owed nothing
            TALLY.counters["connect_failed"] += 1
            if isinstance(e, HandshakeRefused):
                TALLY.counters["refused", e.status] += 1
            self.environment.events.request.fire(
                request_type="WS", name="connect", response_time=(time.time_ns() - start_ns) / 1e6,
                response_length=0, exception=e, context={})
            return
        TALLY.record_latencies("connect", [(time.time_ns() - start_ns) // 1000])
        if manner.browser:
            TALLY.counters["negotiated", str(self.client.deflate.agreed) if self.client.deflate else "none"] += 1
        member.joined_ns = time.time_ns()
        on_close = partial(self._closed, member)
        if self.reader == "slow":
            self.slow_reader = gevent.spawn(wsclient.read_slowly, self.client, self.receiver.take, on_close,
                                            self.options.chat_read_rate)
        elif self.reader == "all":
            _mux().add(self.client, self.receiver.take, on_close)

    @task
    def chat(self) -> None:
        room = self.room
        room.full.wait()
        # One clock pair maps the monotonic schedule to wall time: each message carries the time it
        # was due, not the time it got out, so a sender held up (a blocked send, a late wake-up)
        # shows in the latencies instead of being hidden by fresh timestamps (coordinated omission).
        mono0, wall0 = time.monotonic(), time.time_ns()
        window_end = mono0 + (room.window_end_ns - wall0) / _NS
        back_at = mono0  # a churning member sends nothing that came due while it was away
        for due, what in self._schedule(mono0, wall0, window_end):
            delay = due - time.monotonic()
            if delay > 0 or what != BURST:  # a burst that is due goes out back to back, without yielding
                gevent.sleep(max(0.0, delay))
            if time.monotonic() >= window_end:
                break  # a sender that fell behind does not catch up into the drain
            if what == REJOIN:
                self._leave()
                self._connect()
                room.members.append(self.member)
                TALLY.counters["joined_again"] += 1
                back_at = time.monotonic()
            elif due < back_at:
                continue
            elif self.member.closed_code is not None or not self._send(wall0 + int((due - mono0) * _NS)):
                break  # the receive side records how the connection ended
        # a member with nothing more to send skips straight to the drain, so the run can end as soon
        # as every room has settled instead of at --run-time
        gevent.sleep(max(0.0, (room.drain_end_ns - time.time_ns()) / _NS))
        self._finish()
        runner = self.environment.runner
        if isinstance(runner, LocalRunner) and ROOMS.members_finished >= runner.target_user_count:
            gevent.spawn(_end_run, runner, self.hosts)  # every room has settled: end the run now, not at --run-time
        gevent.sleep(3600)  # idle until Locust stops the run: the member's work is done

    def _schedule(self, mono0: float, wall0: int, window_end: float) -> Iterator[tuple[float, str]]:
        """(monotonic time, SEND, BURST or REJOIN) in time order, until the room's window ends: the paced
        messages 1/rate apart from a random phase, the bursts (all due at once) and the churn."""
        o = self.options
        window_start = mono0 + (self.room.window_start_ns - wall0) / _NS
        streams = []
        if self.reader == "all":  # the others never send
            if self.rate > 0:
                streams.append(_every(mono0 + random.uniform(0, 1 / self.rate), 1 / self.rate, SEND))
            if o.chat_burst:
                starts = _every(window_start, o.chat_burst_every, BURST) if o.chat_burst_every > 0 else [(mono0, BURST)]
                streams.append(entry for entry in starts for _ in range(o.chat_burst))
            if self.churns:
                streams.append(_every(mono0 + random.uniform(0, o.chat_churn_stay), o.chat_churn_stay, REJOIN))
        # never past the window's end: a rare sender (0.002/s) would hold its room open
        return itertools.takewhile(lambda entry: entry[0] < window_end, heapq.merge(*streams))

    def _send(self, due_ns: int) -> bool:
        """Send the member's next message; False if the connection failed."""
        member = self.member
        now = time.time_ns()
        # counted as sent before the attempt: a message the server refuses mid-write (too big)
        # is still one the room expected, and the ledger must say where it went
        TALLY.counters["client_sent"] += 1
        member.sent_ns.append(now)
        client = self.client
        assert client is not None  # a member without one was closed from the start: chat() never sends
        send = client.send_binary if self.kind == "binary" else client.send_text
        try:
            send(encode_header(member.sender, self.seq, due_ns) + body_for(self.bodies, member.sender, self.seq))
        except OSError:
            return False
        if now >= self.room.window_start_ns:
            TALLY.counters["window_sent"] += 1
        self.seq += 1
        return True

    def _leave(self) -> None:
        """Stop sending, wait (up to the drain) for what the room sent before, then close with 1000."""
        member = self.member
        if member.closed_code is None:  # one the server closed is owed what was sent until then
            member.left_ns = time.time_ns()
            TALLY.counters["left"] += 1
        deadline = time.monotonic() + self.options.chat_drain
        while member.closed_code is None and member.still_owed(self.room.members) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self._disconnect()

    def _disconnect(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if self.slow_reader is not None:
            self.slow_reader.kill()
            self.slow_reader = None
        if self.reader == "all":
            _mux().remove(client)
        try:
            # what arrives before the server's close reply was delivered: the receiver counts it, so
            # that the servers' deliveries and what the members received stay comparable
            client.close(take=self.receiver.take if self.reader != "none" else None)
        except OSError:
            pass
        TALLY.counters["wire_bytes_read"] += client.bytes_read
        self.receiver.flush()

    def on_stop(self) -> None:
        self._finish()  # a run cut short still accounts for what was measured
        self._disconnect()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.receiver.flush()
            self.room.finish()
            ROOMS.members_finished += 1
            if ROOMS.members_finished == self.environment.runner.target_user_count:
                # before any member closes
                TALLY.settle_stats = read_servers(self.hosts, context=_manner(self.options).tls)

    def _closed(self, member: Member, code: int) -> None:
        """The connection ended (close frame, or 1006 for a TCP end): how, unless the member was done."""
        if not self.done:  # a close while it waits to leave counts too: it ends the wait, and names the loss
            member.closed_code, member.closed_ns = code, time.time_ns()
            TALLY.counters["closed", code] += 1

    def _fire_round_trips(self, rtts_us: list[int]) -> None:
        for rtt in rtts_us:
            self.environment.events.request.fire(
                request_type="WS", name=f"round trip {self.kind}", response_time=rtt / 1000,
                response_length=self.options.chat_size, exception=None, context={})


QUIET_CAP_S = 2.0  # at most this long (the old --stop-timeout) for the servers to finish after the rooms settled
QUIET_S = 0.5  # ... finished: their counters did not change for this long


def _end_run(runner: LocalRunner, hosts: list[str]) -> None:
    """Every room has settled: stop every member now. While a member still open misses
    deliveries, the servers may still be working through what the run sent, so the members
    first stay connected (and reading) until the servers' counters stop changing, at most
    QUIET_CAP_S, as they did while Locust's --stop-timeout ran out."""
    if TALLY.counters["missing_open"]:
        trust = _manner(runner.environment.parsed_options).tls
        wait_quiet(lambda: read_servers(hosts, context=trust), timeout=QUIET_CAP_S, quiet_s=QUIET_S, sleep=gevent.sleep)
    runner.environment.stop_timeout = 0  # every task only idles now: stop them at once, not after --stop-timeout
    runner.quit()


_SESSIONS: list[str] = []
_next_session = itertools.count()


def _session_cookie(options) -> str | None:
    """The next bench user's Django session, as a Cookie header value (app mode), or None (relay)."""
    if not options.chat_sessions:
        return None
    if not _SESSIONS:
        with open(options.chat_sessions) as f:  # python manage.py create_bench_users N --output FILE
            made = json.load(f)
        _SESSIONS.extend(f"{made['cookie']}={u['session']}" for u in made["users"])
    return _SESSIONS[next(_next_session) % len(_SESSIONS)]


_bodies = cache(bodies)  # made once per size and kind, shared by every member of the process


def _manner(options) -> wsclient.Manner:
    """How this process's members connect (--chat-browser, --chat-ca), and what its https:// readings trust."""
    return _manner_for(options.chat_browser, options.chat_ca)


@cache
def _manner_for(browser: bool, ca: str) -> wsclient.Manner:  # one TLS context for every member
    return wsclient.Manner(browser, tls.client_context(ca) if ca else None)


def _retried(status: int) -> None:
    """A refusal a member tried again after (bench/load/wsclient.py admitted): Run.handshakes_retried."""
    TALLY.counters["retried", status] += 1


def _every(start: float, period: float, what: str) -> Iterator[tuple[float, str]]:
    """(start, what), (start + period, what), ... without end."""
    for k in itertools.count():
        yield start + k * period, what


def _mux() -> wsclient.Multiplexer:
    global _MUX
    if _MUX is None:
        _MUX = wsclient.Multiplexer()
    return _MUX


class ChatMember(ChatUser):
    """A chat member as the scenario options describe it."""
