"""A member that never reads: what each target does to the room, to memory, and to the ledger.

Seed claims 4-6 say FastAPI loses messages when "the WebSocket buffer" overflows. Here one
member completes the handshake and then reads nothing (SO_RCVBUF 4096, so TCP backpressure
reaches the server at once) while two members each send 400 binary messages of 16 KiB
(12.5 MiB owed to every member). A sender sends its next message once its previous one has
come back to it (a chat at the pace of the round trip, not a burst), so only the slow member
can make the server fall behind; bursts overflow backlogs by themselves (see
test_conformance.py::test_burst_right_after_connect_arrives_complete_and_in_order).

Phase 1 (the slow member reads nothing) shows each target's own behaviour:
  fastapi       queued: the others get everything; the slow member's backlog overflows, and
                every message dropped for it is counted in drops.backlog_full.
  fastapi-seed  the blog's loop: head-of-line blocking. The sender's `await send` to the slow
                member blocks, so nobody else receives either; nothing is dropped.
  django        daphne: the others get everything, nothing is dropped, and what the slow member
                cannot take piles up in the server's memory (RSS grows).
Phase 2 (the slow member reads) closes the ledger exactly: what it received + what was
counted as dropped = what was sent, every member in per-sender order.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.message import HEADER_LEN, filler, make_message, parse_header
from tests.clients import RawClient, idle_stats, join, stats, wait_stats

pytestmark = [pytest.mark.server, pytest.mark.slow_consumer, pytest.mark.asyncio]

SIZE = 16 * 1024
PER_SENDER = 400
SENDERS = (1, 2)
TOTAL = PER_SENDER * len(SENDERS)  # messages every member is owed
SLOW_RCVBUF = 4096
PHASE1_SECONDS = 5.0  # how long the slow member reads nothing

BEHAVIOUR = {"fastapi": "drops", "fastapi-seed": "blocks", "django": "buffers", "django-uvicorn": "drops",
             "reference": "buffers"}


class PacedMember:
    """An active member: receives everything; sends each message once its previous one came back."""

    def __init__(self, ws: ClientConnection, sender: int):
        self.ws, self.sender = ws, sender
        self.messages: list[bytes] = []
        self.echoed = 0
        self.closed: ConnectionClosed | None = None
        self._arrived = asyncio.Event()
        self._receiver = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                self.messages.append(message)
                if parse_header(message[:HEADER_LEN])[0] == self.sender:
                    self.echoed += 1
                self._arrived.set()
        except ConnectionClosed as exc:
            self.closed = exc
        self._arrived.set()

    async def send_paced(self, count: int, body: bytes) -> None:
        for seq in range(count):
            await self.ws.send(make_message(self.sender, seq, body))
            while self.echoed <= seq and self.closed is None:
                self._arrived.clear()
                await self._arrived.wait()

    async def stop(self) -> None:
        self._receiver.cancel()
        await asyncio.gather(self._receiver, return_exceptions=True)
        await self.ws.close()


def in_sender_order(payloads: list[bytes]) -> bool:
    last: dict[int, int] = {}
    for payload in payloads:
        sender, seq, _ = parse_header(payload[:HEADER_LEN])
        if seq <= last.get(sender, -1):
            return False
        last[sender] = seq
    return True


@pytest.mark.targets(*BEHAVIOUR, why="each in-process stack's own behaviour with a member that never reads")
async def test_member_that_never_reads(servers, target, room_name):
    behaviour = BEHAVIOUR[target]
    server = servers.get("slow-consumer")  # its own process: RSS and counters are this test's
    room = room_name()
    before = await idle_stats(server)
    slow = await asyncio.to_thread(RawClient, server, f"/ws/{room}", rcvbuf=SLOW_RCVBUF)
    active = {sender: PacedMember(await join(server, room), sender) for sender in SENDERS}
    body = filler(SIZE, binary=True)

    started = time.monotonic()
    senders = [asyncio.create_task(m.send_paced(PER_SENDER, body)) for m in active.values()]
    try:
        # ---- phase 1: the slow member reads nothing
        deadline = started + PHASE1_SECONDS
        while time.monotonic() < deadline and min(len(m.messages) for m in active.values()) < TOTAL:
            await asyncio.sleep(0.05)  # poll interval
        phase1_seconds = time.monotonic() - started
        received = {s: len(m.messages) for s, m in active.items()}
        mid = await stats(server)
        dropped = mid["drops"]["backlog_full"] - before["drops"]["backlog_full"]
        other_drops = {k: mid["drops"][k] - before["drops"][k] for k in mid["drops"] if k != "backlog_full"}
        rss_growth = mid["rss_bytes"] - before["rss_bytes"]
        finding = (f"{target}: phase 1 ({phase1_seconds:.1f}s): active members received {received} "
                   f"of {TOTAL}; backlog_full +{dropped}; backlog gauge {mid.get('backlog')}; "
                   f"server RSS +{rss_growth / 2**20:.1f} MiB for {TOTAL * SIZE / 2**20:.1f} MiB owed "
                   f"to the slow member; senders done: {[t.done() for t in senders]}")
        print(finding)

        assert other_drops == dict.fromkeys(other_drops, 0), finding
        assert not any(m.closed for m in active.values()), finding
        if behaviour == "blocks":
            assert all(n < TOTAL for n in received.values()), "expected head-of-line blocking: " + finding
            assert dropped == 0, finding
        else:
            assert all(n == TOTAL for n in received.values()), "the others were held up: " + finding
            assert all(t.done() for t in senders), finding
        if behaviour == "drops":
            assert dropped > 0, "expected the slow member's backlog to overflow: " + finding
            # the full queue, plus the one message its writer holds, blocked in send
            assert mid["backlog"] == mid["config"]["member_backlog"] + 1, "the slow member's full backlog"
        if behaviour == "buffers":
            assert dropped == 0, finding
            assert rss_growth > 0.5 * TOTAL * SIZE, "expected the server to buffer in memory: " + finding

        # ---- phase 2: the slow member reads what it is owed; the ledger closes exactly
        slow_got: list = []
        stop = threading.Event()
        drain = asyncio.create_task(asyncio.to_thread(slow.read_messages, slow_got, stop.is_set, 28.0))
        try:
            async with asyncio.timeout(15):
                await asyncio.gather(*senders)
                while min(len(m.messages) for m in active.values()) < TOTAL:
                    await asyncio.sleep(0.05)  # poll interval
            end = await wait_stats(
                server, lambda s: len(slow_got) + s["drops"]["backlog_full"] - before["drops"]["backlog_full"]
                >= TOTAL, timeout=10, what="slow member's messages + drops == sent")
        finally:
            stop.set()
            await drain
        dropped = end["drops"]["backlog_full"] - before["drops"]["backlog_full"]
        end = await wait_stats(server, lambda s: s["deliveries"] - before["deliveries"]
                               >= len(active) * TOTAL + len(slow_got), what="deliveries counted")
        print(f"{target}: phase 2: slow member read {len(slow_got)}, dropped {dropped}, "
              f"total {time.monotonic() - started:.1f}s")
    finally:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await asyncio.gather(*(m.stop() for m in active.values()), return_exceptions=True)
        slow.close()

    assert len(slow_got) + dropped == TOTAL
    assert in_sender_order([p for _, p in slow_got]), "slow member: out of order"
    assert all(len(p) == SIZE for _, p in slow_got)
    for sender, member in active.items():
        assert len(member.messages) == TOTAL and in_sender_order(member.messages), f"member {sender}"
    assert end["deliveries"] - before["deliveries"] == len(active) * TOTAL + len(slow_got)
    assert end["bytes_out"] - before["bytes_out"] == (len(active) * TOTAL + len(slow_got)) * SIZE
    assert end["messages_in"] - before["messages_in"] == TOTAL
