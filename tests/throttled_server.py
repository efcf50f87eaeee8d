"""A broadcast server with a known, artificial capacity: `THROTTLED_CAPACITY=C python -m
tests.throttled_server --port P` relays every message to its room (sender included) but hands at most C deliveries/s to
the transport. Below C a delivery waits at most a tick; above it the queue, and so the round trip,
grows for as long as the load lasts: the knee the capacity search must find. It serves /ws/{room},
/healthz and /stats with the contract's schema (CONTRACT.md), so the bench's clients can drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections import deque
from http import HTTPStatus

import psutil
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.protocol import State

ROOM = re.compile(r"/ws/([A-Za-z0-9_-]{1,64})")
TICK_S = 0.002
BURST_S = 0.01  # unused capacity is kept for at most this long: short bursts below C do not queue


class Throttled:
    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.queue: deque[tuple[ServerConnection, str | bytes]] = deque()
        self.wake = asyncio.Event()
        self.counts = {"messages_in": 0, "bytes_in": 0, "deliveries": 0, "bytes_out": 0, "total": 0}
        self.close_codes: dict[str, int] = {}

    async def member(self, ws: ServerConnection) -> None:
        room = ROOM.fullmatch(ws.request.path)[1]
        members = self.rooms.setdefault(room, set())
        members.add(ws)
        self.counts["total"] += 1
        try:
            async for message in ws:
                self.counts["messages_in"] += 1
                self.counts["bytes_in"] += len(message)
                self.queue.extend((m, message) for m in members)
                self.wake.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            members.discard(ws)
            if not members:
                self.rooms.pop(room, None)
            code = str(ws.close_code or 1006)
            self.close_codes[code] = self.close_codes.get(code, 0) + 1

    async def deliver(self) -> None:
        """Hand queued deliveries to their transports at `capacity` per second, over any stretch with a
        backlog (a late tick sends what it owes); capacity unused while idle is kept for BURST_S only."""
        loop = asyncio.get_running_loop()
        credit, last = 0.0, loop.time()
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                now = loop.time()
                credit, last = min(credit + (now - last) * self.capacity, self.capacity * BURST_S), now
            now = loop.time()
            credit, last = credit + (now - last) * self.capacity, now
            while self.queue and credit >= 1:
                ws, message = self.queue.popleft()
                if ws.state is State.OPEN:  # a member gone since costs nothing
                    broadcast([ws], message)
                    credit -= 1
                    self.counts["deliveries"] += 1
                    self.counts["bytes_out"] += len(message)
            await asyncio.sleep(TICK_S)

    def stats(self) -> dict:
        me = psutil.Process()
        cpu, read_at = me.cpu_times(), time.time()
        c = self.counts
        return {
            "backend": "throttled", "server": f"websockets {websockets.__version__}", "fanout": "throttled",
            "layer": "memory", "pid": os.getpid(),
            "config": {"max_message_bytes": 1 << 20, "member_backlog": 0, "allowed_origins": ["*"],
                       "capacity_deliveries_per_s": self.capacity},
            "connections": {"open": sum(len(m) for m in self.rooms.values()), "total": c["total"], "refused": 0},
            "rooms": len(self.rooms),
            "messages_in": c["messages_in"], "bytes_in": c["bytes_in"],
            "deliveries": c["deliveries"], "bytes_out": c["bytes_out"],
            "drops": {"backlog_full": 0, "send_failed": 0, "expired": 0, "redis_unavailable": 0},
            "backlog": len(self.queue),
            "close_codes": dict(self.close_codes),
            "rss_bytes": me.memory_info().rss, "cpu_seconds": cpu.user + cpu.system, "read_at": read_at,
        }

    def http(self, connection: ServerConnection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if request.path == "/stats":
            return connection.respond(HTTPStatus.OK, json.dumps(self.stats()))
        if not ROOM.fullmatch(request.path):
            return connection.respond(HTTPStatus.FORBIDDEN, "no such room\n")
        return None


async def main(host: str, port: int, capacity: float) -> None:
    server = Throttled(capacity)
    deliverer = asyncio.create_task(server.deliver())
    async with serve(server.member, host, port, process_request=server.http, compression=None, max_size=1 << 20,
                     ping_interval=None):
        await deliverer


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, float(os.environ["THROTTLED_CAPACITY"])))  # deliveries/s
