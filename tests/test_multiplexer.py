"""The Locust user's multiplexed reader (bench.load.wsclient.Multiplexer) against a real websockets server.

Many gevent clients, one reader greenlet: every message is accounted for in its member's book,
pings are answered, and each member's close is seen exactly once with the right code.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import gevent
import gevent.socket
import pytest
from websockets.asyncio.server import serve

from bench.ledger import Member
from bench.load import wsclient
from bench.load.framing import CLOSE, FrameReader
from bench.load.receiver import Pending, Receiver
from bench.load.tally import Tally
from bench.message import encode_header
from tests.rawserver import answer_handshake

MESSAGES = 300  # per connection, from SENDERS senders with consistent seqs
SENDERS = 3
BIG = 200_000  # one message larger than a read, mid-stream


class Broadcaster:
    """A websockets server in a thread; how each connection ends depends on its path:
    /close/<n>: a close frame 4001; /drop/<n>: TCP end without a close frame; /stay/<n>: open."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.pongs = 0
        self.finished: list[str] = []
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _handler(self, ws) -> None:
        path = ws.request.path
        for i in range(MESSAGES):
            body = b"x" * (BIG if i == MESSAGES // 2 else 95)
            data = encode_header(1000 + i % SENDERS, i // SENDERS, time.time_ns()) + body
            await ws.send(data if i % 2 else data.decode())  # binary and text frames
            if i % 50 == 0:
                await asyncio.sleep(0.005)  # reads of various sizes
            if i == MESSAGES // 3:
                await asyncio.wait_for(await ws.ping(b"are you there"), 5)
                self.pongs += 1
        if path.startswith("/close/"):
            await ws.close(4001, "bye")
        elif path.startswith("/drop/"):
            await asyncio.sleep(0.2)  # let the messages drain first: only the close frame is missing
            ws.transport.close()
        else:
            await ws.wait_closed()
        self.finished.append(path)

    async def _main(self) -> None:
        async with serve(self._handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.loop = asyncio.get_running_loop()
            self.stop = self.loop.create_future()
            self.started.set()
            await self.stop

    def __enter__(self) -> Broadcaster:
        self.thread.start()
        assert self.started.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(5)


@pytest.fixture
def gevent_sockets(monkeypatch):
    """wsclient.connect on gevent's sockets, as under Locust's monkey-patching."""
    monkeypatch.setattr(wsclient, "socket", gevent.socket)


def test_many_members_are_read_by_one_greenlet(gevent_sockets) -> None:
    tally = Tally()
    pending = Pending(tally)
    window = SimpleNamespace(window_start_ns=0, window_end_ns=2**63)
    ends = ["close"] * 8 + ["drop"] * 8 + ["stay"] * 8
    closes: dict[int, list[int]] = {}
    members, clients = [], []
    with Broadcaster() as server:
        mux = wsclient.Multiplexer()
        for n, end in enumerate(ends):
            member = Member(sender=n + 1)
            receiver = Receiver(member, window, tally, pending=pending)
            client = wsclient.connect(f"ws://127.0.0.1:{server.port}/{end}/{n}", timeout=5)
            mux.add(client, receiver.take, lambda code, n=n: closes.setdefault(n, []).append(code))
            members.append(member)
            clients.append(client)
        with gevent.Timeout(20):
            while len(closes) < 16 or sum(m.book.total for m in members) < MESSAGES * len(ends):
                gevent.sleep(0.01)
        for client in clients[16:]:
            mux.remove(client)  # the members' own close, as ChatUser.on_stop does
            client.close()
        mux.close()
        deadline = time.monotonic() + 5
        while len(server.finished) < len(ends) and time.monotonic() < deadline:
            time.sleep(0.01)
    for n, member in enumerate(members):
        book = member.book
        assert book.total == MESSAGES and book.duplicates == book.reordered == 0, n
        assert all(expected == MESSAGES // SENDERS and not holes for expected, holes in book.by_sender.values()), n
        assert sorted(book.by_sender) == [1000 + s for s in range(SENDERS)]
    assert closes == {**{n: [4001] for n in range(8)}, **{n: [1006] for n in range(8, 16)}}
    assert [c.close_code for c in clients] == [4001] * 8 + [1006] * 8 + [1000] * 8
    assert server.pongs == len(ends), "every ping was answered"
    assert sorted(server.finished) == sorted(f"/{end}/{n}" for n, end in enumerate(ends))
    pending.hand_over(time.time_ns())
    assert tally.counters["client_received"] == MESSAGES * len(ends) and tally.counters["foreign"] == 0
    assert tally.histograms["latency"].get_total_count() == MESSAGES * len(ends)
    assert sum(tally.timeline.values()) == MESSAGES * len(ends)


def test_a_member_removed_is_not_read_and_frames_with_the_handshake_are(gevent_sockets) -> None:
    """Frames that arrive in the handshake's segment are taken at add(); after remove() nothing is read."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve_once() -> None:
            conn, _ = listener.accept()
            with conn:
                answer_handshake(conn, then=b"\x82\x21" + encode_header(7, 0, time.time_ns()))
                time.sleep(0.3)
                conn.sendall(b"\x82\x21" + encode_header(7, 1, time.time_ns()))
                time.sleep(0.3)

        thread = threading.Thread(target=serve_once, daemon=True)
        thread.start()
        client = wsclient.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", timeout=5)
        batches: list[list] = []
        mux = wsclient.Multiplexer()
        mux.add(client, lambda events, now: batches.append(events), lambda code: batches.append([(CLOSE, code)]))
        with gevent.Timeout(5):
            while not batches:
                gevent.sleep(0.01)
        mux.remove(client)
        gevent.sleep(0.5)  # the second frame and the TCP end arrive, unread
        mux.close()
        thread.join(5)
    assert [[(op, n, prefix[:16]) for op, n, prefix in batch] for batch in batches] == [
        [(2, 33, b"0000000700000000")]]
    assert client.close_code is None


def test_blocking_sockets_are_refused() -> None:
    a, b = socket.socketpair()
    with a, b:
        client = wsclient.WSClient(a, FrameReader())
        with pytest.raises(ValueError, match="non-blocking"):
            wsclient.Multiplexer().add(client, lambda events, now: None, lambda code: None)


def test_a_close_that_arrives_while_the_member_is_mid_send_does_not_kill_the_reader(gevent_sockets) -> None:
    """The server refuses a message it is still receiving (1009 while a big send blocks): the reading
    greenlet sees the close without writing a reply over the blocked send (gevent allows one writer
    per socket, so a reply would kill the reader and with it every member's reading), and the
    member's send ends with an OSError."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small buffers fill up completely
        def refuse_without_reading() -> None:
            conn, _ = listener.accept()
            with conn:
                answer_handshake(conn)
                time.sleep(0.3)  # the client is blocked in its send by now: nothing here reads
                conn.sendall(b"\x88\x02\x03\xf1")  # close 1009
                time.sleep(0.5)

        thread = threading.Thread(target=refuse_without_reading, daemon=True)
        thread.start()
        client = wsclient.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", timeout=5)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        closes: list[int] = []
        mux = wsclient.Multiplexer()
        close_code = lambda events, now: next((n for op, n, _ in events if op == CLOSE), None)  # noqa: E731
        mux.add(client, close_code, closes.append)
        with gevent.Timeout(10), pytest.raises(OSError):
            client.send_binary(b"\0" * (64 << 20))  # far more than the socket buffers hold
        with gevent.Timeout(5):
            while not closes:
                gevent.sleep(0.01)
        assert not mux._reader.dead, "the reading greenlet survived"
        mux.close()
        thread.join(5)
    assert closes == [1009] and client.close_code == 1009
