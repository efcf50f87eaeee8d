"""bench.load.framing / bench.load.wsclient against the websockets library as the reference implementation."""

from __future__ import annotations

import asyncio
import http
import os
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from bench.harness import run_harness, summary
from bench.ledger import Member
from bench.load.framing import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameReader,
    HandshakeRefused,
    encode_frame,
)
from bench.load.receiver import Pending, Receiver
from bench.load.tally import Tally
from bench.load.wsclient import admitted, connect
from bench.message import HEADER_LEN, encode_header
from serving.process_limits import PendingHandshakes
from tests.rawserver import answer_handshake

MIB = 1 << 20


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """A parser that stops making progress must fail the test, not hang the suite."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("test took more than 20 s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 20)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def frame(op: Opcode, data: bytes = b"", fin: bool = True) -> bytes:
    return Frame(op, data, fin).serialize(mask=False)


def parse_all(stream: bytes, mask: bool = False) -> list[Frame]:
    """Every frame in `stream`, parsed by websockets' own parser (raises ProtocolError if malformed)."""
    reader = StreamReader()
    reader.feed_data(stream)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=mask)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("reference parser wanted more bytes than the stream has")
    return frames


def reference_events(stream: bytes, keep_payload: bool) -> list[tuple]:
    """What FrameReader must produce, assembled from the reference parser's frames."""
    events: list[tuple] = []
    message: list[Frame] = []
    for f in parse_all(stream):
        if f.opcode in (Opcode.PING, Opcode.PONG):
            events.append((int(f.opcode), len(f.data), bytes(f.data)))
        elif f.opcode is Opcode.CLOSE:
            close = Close.parse(bytes(f.data))
            events.append((CLOSE, close.code, close.reason))
        else:
            message.append(f)
            if f.fin:
                payload = b"".join(bytes(m.data) for m in message)
                events.append((int(message[0].opcode), len(payload),
                               payload if keep_payload else payload[:HEADER_LEN]))
                message = []
    return events


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i:i + 1]


def random_chunks(data: bytes, seed: int = 1, top: int = 300_000) -> Iterator[memoryview]:
    """Chunks of random size written into one reused buffer, as a client's recv_into would: any
    reference FrameReader kept into a previous chunk would see it overwritten."""
    rng = random.Random(seed)
    buf = bytearray(top)
    view = memoryview(buf)
    p = 0
    while p < len(data):
        n = min(rng.choice((1, 2, 3, 7, 13, 100, 4096, 9000, rng.randint(1, top))), len(data) - p)
        buf[:n] = data[p:p + n]
        yield view[:n]
        buf[:n] = b"\xff" * n
        p += n


def decode(chunks: Iterator, keep_payload: bool) -> list[tuple]:
    reader = FrameReader(keep_payload=keep_payload)
    events: list[tuple] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    assert reader._left == 0 and not reader._pending and reader._op == 0, "stream ended mid-frame"
    return events


def header(i: int) -> bytes:
    return b"%08x%08x%016x|" % (i, i * 7, 10**18 + i)


SMALL_STREAMS = {
    "text": frame(Opcode.TEXT, "héllo wörld チャット".encode()),
    "binary": frame(Opcode.BINARY, bytes(range(256)) * 2),
    "empty": frame(Opcode.TEXT) + frame(Opcode.BINARY),
    "header_exactly": frame(Opcode.BINARY, header(1)) + frame(Opcode.TEXT, header(2)[:32]),
    "lengths": b"".join(frame(Opcode.BINARY, os.urandom(n)) for n in (1, 125, 126, 127, 128, 65535, 65536)),
    "fragmented_with_control": (
        frame(Opcode.TEXT, b"frag-one-", fin=False) + frame(Opcode.PING, b"are you there")
        + frame(Opcode.CONT, b"", fin=False) + frame(Opcode.PONG)
        + frame(Opcode.CONT, header(3), fin=False) + frame(Opcode.PING)
        + frame(Opcode.CONT, b"end", fin=True) + frame(Opcode.BINARY, b"after")),
    "fragmented_binary_tiny_pieces": (
        frame(Opcode.BINARY, b"a", fin=False)
        + b"".join(frame(Opcode.CONT, bytes([i]), fin=False) for i in range(40))
        + frame(Opcode.CONT, b"z")),
    "empty_fragments": frame(Opcode.BINARY, b"", fin=False) + frame(Opcode.CONT, b""),
    "many_small": b"".join(frame(Opcode.BINARY if i % 3 else Opcode.TEXT, header(i) + b"x" * (i % 200))
                           for i in range(3000)),
    "window_edges": b"".join(frame(Opcode.BINARY, os.urandom(n))
                             for n in (*range(8150, 8200), 3, *range(16370, 16390), 1, 2)),
    "close_with_reason": frame(Opcode.TEXT, b"last") + frame(Opcode.CLOSE, Close(4001, "bye ✓").serialize()),
    "close_empty": frame(Opcode.CLOSE),
}
BIG = os.urandom(5 * MIB + 3)
LARGE_STREAMS = {
    "five_mib": frame(Opcode.BINARY, BIG) + frame(Opcode.TEXT, b"small after big"),
    "five_mib_fragmented": (frame(Opcode.BINARY, BIG[:3 * MIB], fin=False) + frame(Opcode.PING, b"mid")
                            + frame(Opcode.CONT, BIG[3 * MIB:]) + frame(Opcode.BINARY, header(9))),
    "mixed_sizes": b"".join(frame(Opcode.BINARY, os.urandom(n))
                            for n in (10, 70_000, 3, 1_000_000, 200, 9000)),
}


@pytest.mark.parametrize("keep_payload", [False, True])
@pytest.mark.parametrize(("name", "chunking"), [
    (name, chunking) for name in sorted(SMALL_STREAMS) for chunking in (whole, bytewise, random_chunks)
    if chunking is not bytewise or len(SMALL_STREAMS[name]) <= 100_000  # one byte at a time: small ones
])
def test_small_streams_match_reference(name: str, chunking: Callable, keep_payload: bool) -> None:
    stream = SMALL_STREAMS[name]
    assert decode(chunking(stream), keep_payload) == reference_events(stream, keep_payload)


@pytest.mark.parametrize("keep_payload", [False, True])
@pytest.mark.parametrize("name", sorted(LARGE_STREAMS))
@pytest.mark.parametrize("chunk", [None, 256 * 1024, 1000, 7001])
def test_large_streams_match_reference(name: str, chunk: int | None, keep_payload: bool) -> None:
    stream = LARGE_STREAMS[name]
    if chunk is None:
        chunks: Iterator = random_chunks(stream, seed=7)
    else:
        chunks = (memoryview(stream)[i:i + chunk] for i in range(0, len(stream), chunk))
    assert decode(chunks, keep_payload) == reference_events(stream, keep_payload)


def test_large_payload_is_not_copied() -> None:
    """Only the prefix of a big payload is ever materialised: a 5 MiB frame yields a 33-byte prefix."""
    reader = FrameReader()
    events = []
    for chunk in random_chunks(LARGE_STREAMS["five_mib"], seed=3):
        events += reader.feed(chunk)
        assert sum(len(p) for p in reader._parts) <= HEADER_LEN
    assert events[0] == (BINARY, len(BIG), BIG[:HEADER_LEN])


def test_event_layout() -> None:
    stream = (frame(Opcode.BINARY, header(5) + b"tail") + frame(Opcode.PING, b"p")
              + frame(Opcode.PONG, b"q") + frame(Opcode.CLOSE, Close(1000, "ok").serialize()))
    reader = FrameReader()
    assert reader.feed(stream) == [
        (BINARY, 37, header(5)), (PING, 1, b"p"), (PONG, 1, b"q"), (CLOSE, 1000, "ok")]
    assert reader.has_control and reader.closed
    with pytest.raises(FrameError, match="after a close"):
        reader.feed(frame(Opcode.TEXT, b"late"))


MALFORMED = {
    "rsv_bit": (b"\xc1\x02hi", True),
    "bad_opcode": (b"\x83\x00", True),
    "bad_control_opcode": (b"\x8b\x00", True),
    "masked_server_frame": (b"\x81\x82abcd\x00\x00", True),
    "oversized_control": (b"\x89\x7e\x00\x7e" + b"x" * 126, True),
    "fragmented_control": (b"\x09\x01p", True),
    "orphan_continuation": (frame(Opcode.CONT, b"x"), False),
    "data_during_fragmentation": (frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.TEXT, b"b"), False),
    "binary_during_fragmentation": (frame(Opcode.BINARY, b"a", fin=False) + frame(Opcode.BINARY, b""), False),
    "length_msb": (b"\x82\x7f" + struct.pack("!Q", 1 << 63) + b"x" * 16, False),
    "close_one_byte": (b"\x88\x01\x03", True),
    "close_bad_code": (b"\x88\x02" + struct.pack("!H", 1005), True),
    "close_code_999": (b"\x88\x02" + struct.pack("!H", 999), True),
    "close_bad_utf8_reason": (b"\x88\x04\x03\xe8\xff\xfe", False),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("chunking", [whole, bytewise])
def test_malformed_raises(name: str, chunking: Callable) -> None:
    stream, reference_rejects_frame = MALFORMED[name]
    if reference_rejects_frame:
        with pytest.raises(ProtocolError):
            Close.parse(parse_all(stream)[0].data) if stream[0] & 15 == 8 else parse_all(stream)
    reader = FrameReader()
    with pytest.raises(FrameError):
        for chunk in chunking(frame(Opcode.BINARY, b"ok") + stream):
            reader.feed(chunk)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 3 * MIB])
@pytest.mark.parametrize("op", [Opcode.TEXT, Opcode.BINARY])
def test_encode_frame_decodes_with_reference(op: Opcode, size: int) -> None:
    payload = os.urandom(size)
    encoded = encode_frame(int(op), payload)
    wire = encoded if isinstance(encoded, bytes) else b"".join(encoded)
    [parsed] = parse_all(wire, mask=True)
    assert (parsed.opcode, parsed.fin, bytes(parsed.data)) == (op, True, payload)
    assert wire[1] & 0x80


def test_encode_frame_uses_fresh_mask_keys() -> None:
    keys = {encode_frame(BINARY, b"same")[2:6] for _ in range(8)}
    assert len(keys) > 1


def test_encode_fragment_and_control() -> None:
    [first, ping, last] = parse_all(encode_frame(TEXT, b"ab", fin=False) + encode_frame(PING, b"p")
                                    + encode_frame(0, b"cd"), mask=True)
    assert (first.fin, first.data, ping.opcode, last.opcode, last.fin, last.data) == (
        False, b"ab", Opcode.PING, Opcode.CONT, True, b"cd")
    with pytest.raises(ValueError):
        encode_frame(PING, b"x" * 126)


class Server:
    """A websockets asyncio server in a background thread: echo, plus commands to test control frames."""

    def __init__(self, host: str = "127.0.0.1", refuse: bool = False) -> None:
        self.host, self.refuse = host, refuse
        self.started = threading.Event()
        self.closes: list[tuple[int | None, str | None]] = []
        self.origins: list[str | None] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _handler(self, ws) -> None:
        self.origins.append(ws.request.headers.get("Origin"))
        try:
            async for msg in ws:
                if msg == "ping-me":
                    await (await ws.ping(b"ping-data"))
                    await ws.send("ponged")
                elif msg == "close-me":
                    await ws.close(4001, "bye")
                else:
                    await ws.send(msg)
        except ConnectionClosed:
            pass
        finally:
            self.closes.append((ws.close_code, ws.close_reason))

    def _process_request(self, connection, request):
        if self.refuse:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
        return None

    async def _main(self) -> None:
        try:
            async with serve(self._handler, self.host, 0, process_request=self._process_request,
                             max_size=None, compression=None, close_timeout=2) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.loop = asyncio.get_running_loop()
                self.stop = self.loop.create_future()
                self.started.set()
                await self.stop
        except BaseException as exc:
            self.error = exc
            self.started.set()

    def __enter__(self) -> Server:
        self.thread.start()
        assert self.started.wait(5)
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(5)

    def url(self, path: str = "/chat") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{path}"


def next_message(ws) -> tuple:
    while True:
        for event in ws.recv_batch():
            if event[0] in (TEXT, BINARY, CLOSE):
                return event


def test_client_interoperates_with_websockets_server() -> None:
    with Server() as server:
        ws = connect(server.url(), origin="http://localhost", keep_payload=True)
        assert ws.sock.gettimeout() is None, "reads block by default: a quiet room is not an error"
        assert ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        ws.send_text("héllo")
        assert next_message(ws) == (TEXT, len("héllo".encode()), "héllo".encode())
        big = os.urandom(2 * MIB)
        ws.send_binary(big)
        assert next_message(ws) == (BINARY, len(big), big)
        ws.send_text("ping-me")
        assert next_message(ws) == (TEXT, 6, b"ponged")
        ws.close(1000)
        assert ws.close_code == 1000
        server.thread.join(0.5)
        assert server.closes == [(1000, "")]
        assert server.origins == ["http://localhost"]


def test_client_answers_server_close() -> None:
    with Server() as server:
        ws = connect(server.url(), recv_timeout=5)
        ws.send_text("close-me")
        assert next_message(ws) == (CLOSE, 4001, "bye")
        assert ws.close_code == 4001
        with pytest.raises(ConnectionError):
            ws.recv_batch()
    assert server.closes == [(4001, "")]


def test_client_over_ipv6() -> None:
    try:
        server = Server("::1").__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        ws = connect(server.url(), recv_timeout=5)
        ws.send_binary(header(1))
        assert next_message(ws) == (BINARY, HEADER_LEN, header(1))
        ws.close()
        assert ws.close_code == 1000
    finally:
        server.__exit__()


def test_refused_handshake_raises_with_status() -> None:
    with Server(refuse=True) as server:
        with pytest.raises(HandshakeRefused) as refused:
            connect(server.url(), timeout=5)
        assert refused.value.status == 403


def refusing_then_accepting(listener: socket.socket, refusals: list[bytes]) -> threading.Thread:
    """Answer one connection each refusal in turn (then close it), then accept the next, if one comes before the
    test closes the listener."""
    def serve() -> None:
        for refusal in refusals:
            conn, _ = listener.accept()
            with conn:
                while b"\r\n\r\n" not in conn.recv(4096):
                    pass
                conn.sendall(refusal)
        try:
            conn, _ = listener.accept()
        except OSError:  # closed: the client was not to come back
            return
        with conn:
            answer_handshake(conn)
            conn.recv(100)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


BUSY = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 0\r\n\r\n"


def test_a_member_refused_503_tries_again_after_retry_after_and_gets_in() -> None:
    """The bench's members act on a hardened server's 503 as a client should: again once Retry-After (×1–2,
    jittered) has passed, and each refusal they retry is counted (CONTRACT.md, "Connection storms")."""
    retried: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        refusing_then_accepting(listener, [BUSY, BUSY])
        started = time.monotonic()
        ws = admitted(f"ws://127.0.0.1:{listener.getsockname()[1]}/ws/r", None, retried.append)
        waited = time.monotonic() - started
        ws.close()
    assert retried == [503, 503] and 2.0 <= waited < 6.0, (retried, waited)


@pytest.mark.parametrize("refusal, status", [
    (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", 503),  # no Retry-After: no telling when
    (b"HTTP/1.1 403 Forbidden\r\nRetry-After: 1\r\n\r\n", 403),  # refused for good, whatever it says
], ids=["503-without-retry-after", "403"])
def test_only_a_503_with_retry_after_is_tried_again(refusal: bytes, status: int) -> None:
    retried: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        refusing_then_accepting(listener, [refusal])
        with pytest.raises(HandshakeRefused) as refused:
            admitted(f"ws://127.0.0.1:{listener.getsockname()[1]}/ws/r", None, retried.append)
    assert retried == [] and refused.value.status == status


def test_frames_in_handshake_segment_then_eof_is_1006() -> None:
    """Frames sent in the same segment as the 101 are delivered; a TCP end without close frame is 1006."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve_once() -> None:
            conn, _ = listener.accept()
            with conn:
                answer_handshake(conn, then=frame(Opcode.BINARY, header(1)) + frame(Opcode.PING, b"x"))
                conn.recv(100)
        thread = threading.Thread(target=serve_once, daemon=True)
        thread.start()
        ws = connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", recv_timeout=5)
        events = []
        while ws.close_code is None:
            events += ws.recv_batch()
        assert events == [(BINARY, HEADER_LEN, header(1)), (PING, 1, b"x"), (CLOSE, 1006, "")]
        assert ws.close_code == 1006
        thread.join(5)


def test_receiver_accounts_for_gaps_reorders_latency_and_foreign_messages() -> None:
    now = 10**18
    events = [(BINARY, 100, encode_header(1, seq, now - 5_000)) for seq in (0, 1, 4, 2, 5, 5)]
    events += [(TEXT, 40, encode_header(2, 7, now - 2_000_000)), (PING, 0, b""), (BINARY, 5, b"short")]
    member = Member(sender=99)
    window = SimpleNamespace(window_start_ns=0, window_end_ns=2**63)
    tally = Tally()
    receiver = Receiver(member, window, tally)
    assert receiver.take(events, now) is None
    receiver.flush()
    book = member.book
    assert book.received(1, 0, 6) == 5 and book.reordered == 1 and book.duplicates == 1
    assert book.received(2, 0, 8) == 1
    assert tally.counters["client_received"] == 7 and tally.counters["foreign"] == 1
    latency = tally.histograms["latency"]
    assert latency.get_total_count() == 7
    assert latency.get_value_at_percentile(50) == 5
    assert 1999 <= latency.get_max_value() <= 2001
    assert sum(tally.timeline.values()) == 7
    assert receiver.take([(CLOSE, 1009, "too big")], now) == 1009


def test_throughput_counts_deliveries_when_they_arrive_not_when_they_were_sent() -> None:
    """A window of 2 s: what was sent before it but arrives in it counts, what was sent in it but arrives after
    it does not (an overloaded server delivers the window's messages late), and each second keeps the mean
    round trip of the member's own messages that arrived in it."""
    s = 10**9
    window = SimpleNamespace(window_start_ns=100 * s, window_end_ns=102 * s)
    member, tally = Member(sender=7), Tally()
    receiver = Receiver(member, window, tally)
    receiver.take([(TEXT, 40, encode_header(7, 0, 99 * s))], 99 * s + 5_000_000)  # before the window: nothing
    receiver.take([(TEXT, 40, encode_header(3, 0, 99 * s + s // 2))], 100 * s + s // 10)  # sent before, came in
    receiver.take([(TEXT, 40, encode_header(7, 1, 100 * s)), (TEXT, 40, encode_header(7, 2, 100 * s))],
                  100 * s + 30_000_000)
    receiver.take([(TEXT, 40, encode_header(7, 3, 101 * s))], 101 * s + 10_000_000)
    receiver.take([(TEXT, 40, encode_header(7, 4, 101 * s + s // 2))], 103 * s)  # sent in it, came after
    receiver.flush()
    assert tally.counters["client_received"] == 6 and tally.counters["window_received"] == 4
    assert dict(tally.timeline) == {"0": 3, "1": 1, "3": 1}
    assert tally.rtt_timeline == {"0": [60_000, 2], "1": [10_000, 1], "3": [1_500_000, 1]}  # µs


def test_receivers_of_a_process_hand_over_together() -> None:
    """Counts and latencies wait in one shared Pending; a take hands them to the Tally once a second
    has passed, flush() at once."""
    now = 10**18
    tally = Tally()
    shared = Pending(tally)
    window = SimpleNamespace(window_start_ns=now - 10**9, window_end_ns=2**63)
    a, b = (Receiver(Member(sender=n), window, tally, pending=shared) for n in (1, 2))
    count = tally.histograms["latency"].get_total_count
    a.take([(BINARY, 40, encode_header(5, 0, now - 3_000))], now)  # the first take hands over
    assert count() == 1 and tally.counters["client_received"] == 1 and tally.timeline == {"1": 1}
    b.take([(BINARY, 40, encode_header(5, 0, now - 4_000)), (TEXT, 40, encode_header(5, 1, now - 4_000))], now + 1)
    a.take([(BINARY, 40, encode_header(5, 1, now - 5_000)), (BINARY, 5, b"short")], now + 2)
    assert count() == 1 and tally.counters["client_received"] == 1 and len(shared.latencies) == 3
    b.take([(BINARY, 40, encode_header(5, 3, now + 10**9))], now + 10**9 + 10_000)  # a second later
    assert count() == 5 and not shared.latencies and tally.timeline == {"1": 4, "2": 1}
    assert tally.counters["client_received"] == 5 and tally.counters["foreign"] == 1
    a.take([(BINARY, 40, encode_header(5, 2, now + 10**9))], now + 10**9 + 20_000)
    assert tally.counters["client_received"] == 5
    a.flush()
    assert count() == 6 and tally.counters["client_received"] == 6 and tally.timeline == {"1": 4, "2": 2}
    assert a.member.book.by_sender == {5: [3, set()]} and a.member.book.total == 3
    assert b.member.book.by_sender == {5: [4, {2}]} and b.member.book.total == 3
    with pytest.raises(ValueError):
        Receiver(Member(sender=3), window, Tally(), pending=shared)


def test_harness_smoke() -> None:
    result = run_harness(seconds=0.3, repeats=1)
    [run] = result["runs"]
    assert run["deliveries"] > 1000 and run["gaps"] == run["dups"] == run["foreign"] == 0
    assert result["deliveries_per_core_s"]["median"] == run["per_core_s"] > 0
    # the real Locust user over many members (bench/harness/loadgen.py run_locust_harness)
    many = result["locust"]
    [window] = many["runs"]
    assert window["deliveries"] > 1000 and many["client_received"] >= window["deliveries"]
    assert many["foreign"] == many["connect_failed"] == 0 and many["closes"] == {}
    assert many["deliveries_per_core_s"]["median"] == window["per_core_s"] > 0
    assert "Locust user" in summary(result) and "one connection" in summary(result)


def test_a_refused_handshake_is_told_to_wait_behind_those_refused_before_it():
    """Retry-After spreads a storm's refused members over the time the process needs to answer them (the limit
    over the mean time a handshake takes; a second until one is answered), from 1 s up to 60 s; and while a
    handshake takes longer than a second, fewer are taken on at once, in proportion."""
    now = [100.0]
    pending = PendingHandshakes(bound=4, clock=lambda: now[0])
    taken = [pending.admit() for _ in range(4)]
    assert taken == [100.0] * 4 and pending.admit() is None
    assert [pending.retry_after() for _ in range(8)] == [1, 1, 1, 1, 2, 2, 2, 2]  # nothing answered: 4 a second
    now[0] = 102.0
    pending.answered(taken[0])  # it took 2 s: 2 at a time now, a second each
    assert pending.limit() == 2 and pending.admit() is None  # 3 still pending
    assert [pending.retry_after() for _ in range(3)] == [1, 2, 3]  # after the 2 s promised before (till 102)
    pending.answered(taken[1])
    pending.answered(taken[2])
    assert pending.admit() == 102.0  # 1 pending: under the limit again
    assert [pending.retry_after() for _ in range(200)][-1] == 60  # never told to wait more than a minute
    now[0] += 30.0
    assert pending.retry_after() <= 31  # and what was promised drains as time passes
