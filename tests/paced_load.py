"""A small paced chat load from the test process (no Locust): rooms of members who each send `rate`
messages/s on a fixed schedule and time the round trip of their own messages. Seconds, not minutes:
what the capacity search's real test and the profiler's tests need from a load."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.clients import CONNECT_OPTIONS


@dataclass
class Load:
    members: int
    room_size: int
    rate: float  # offered messages/s per member
    window: float
    sent: int = 0  # messages scheduled in the window, all sent
    sent_on_time: int = 0  # of those, sent before the window ended
    received: int = 0  # deliveries of window messages, before the drain ended
    arrived: int = 0  # deliveries of any message that arrived while the window was open (throughput)
    rtt_ms: list[float] = field(default_factory=list)
    rtt_by_second: dict[int, list[float]] = field(default_factory=dict)  # second of the window -> round trips
    window_start: float = 0.0  # event-loop time
    cpu_s: float = 0.0  # this process's CPU during the load
    wall_s: float = 0.0

    @property
    def expected(self) -> int:
        return self.sent * self.room_size

    @property
    def loss_pct(self) -> float:
        return 100 * (self.expected - self.received) / self.expected if self.expected else 0.0

    @property
    def p95_ms(self) -> float | None:
        ordered = sorted(self.rtt_ms)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else None

    @property
    def client_bound(self) -> bool:
        """The client fell behind its schedule or used most of a core: it, not the server, was the limit."""
        return self.sent_on_time < 0.95 * self.sent or self.cpu_s >= 0.9 * self.wall_s

    @property
    def deliveries_per_s(self) -> float:
        """As the bench counts throughput: what arrived while the window was open, per second."""
        return self.arrived / self.window

    @property
    def owed_deliveries_per_s(self) -> float:
        return self.expected / self.window

    @property
    def rtt_timeline_ms(self) -> list[float | None]:
        """The mean round trip of each second of the window, by arrival."""
        by = self.rtt_by_second
        return [sum(by[s]) / len(by[s]) if by.get(s) else None for s in range(int(self.window))]


class Member:
    def __init__(self, ws: ClientConnection, index: int, load: Load) -> None:
        self.ws, self.index, self.load = ws, index, load
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        load, loop = self.load, asyncio.get_running_loop()
        try:
            async for message in self.ws:
                sender, _, sent_ns, in_window = message.split(" ", 4)[:4]
                into = loop.time() - load.window_start
                if 0 <= into < load.window:
                    load.arrived += 1
                if in_window == "1":
                    load.received += 1
                    if int(sender) == self.index:
                        rtt = (time.perf_counter_ns() - int(sent_ns)) / 1e6
                        load.rtt_ms.append(rtt)
                        load.rtt_by_second.setdefault(int(into), []).append(rtt)
        except ConnectionClosed:
            pass

    async def send(self, start: float, warmup: float, window: float, phase: float, padding: str) -> None:
        loop = asyncio.get_running_loop()
        window_start, window_end = start + warmup, start + warmup + window
        seq = 0
        while (due := start + phase + seq / self.load.rate) < window_end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            in_window = due >= window_start
            await self.ws.send(f"{self.index} {seq} {time.perf_counter_ns()} {int(in_window)} {padding}")
            if in_window:
                self.load.sent += 1
                self.load.sent_on_time += loop.time() < window_end
            seq += 1


async def paced_load(ws_url: str, *, rooms: int, room_size: int, rate: float, warmup: float, window: float,
                     drain: float, tag: str, size: int = 64) -> Load:
    """Run the load against `ws_url` (rooms named `{tag}-{n}`, so loads never share a room) and wait up to
    `drain` s after the last send for every delivery of a window message."""
    load = Load(rooms * room_size, room_size, rate, window)
    sockets = await asyncio.gather(*(connect(f"{ws_url}/ws/{tag}-{i // room_size}", **CONNECT_OPTIONS)
                                     for i in range(load.members)))
    members = [Member(ws, i, load) for i, ws in enumerate(sockets)]
    loop = asyncio.get_running_loop()
    cpu, wall = time.process_time(), loop.time()
    start = wall + 0.05
    load.window_start = start + warmup
    try:
        await asyncio.gather(*(m.send(start, warmup, window, i / (load.members * rate), "x" * size)
                               for i, m in enumerate(members)))
        deadline = loop.time() + drain
        while load.received < load.expected and loop.time() < deadline:
            await asyncio.sleep(0.01)
        load.cpu_s, load.wall_s = time.process_time() - cpu, loop.time() - wall
    finally:
        await asyncio.gather(*(m.ws.close() for m in members), return_exceptions=True)
        for m in members:
            m.reader.cancel()
    return load
