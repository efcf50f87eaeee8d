"""The floor: the smallest correct chat server in Python, to measure the others against.

`python -m reference_chat.server --host H --port P`. The `websockets` library's own asyncio server,
its `process_request` hook for the HTTP side and the handshake policy, and `broadcast()` to relay
each message to its room: no framework, no queue, no task per member. It serves the wire
contract (CONTRACT.md) except the per-member backlog: `broadcast()` writes to every open member's
transport at once, with no backpressure, so a member that does not read is buffered for in memory
until the keepalive ping times out (CONTRACT.md, "The reference target").
"""

from __future__ import annotations

import argparse
import http
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil
import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, Protocol

ROOM_PATH = re.compile(r"/ws/([A-Za-z0-9_-]{1,64})")


@dataclass(frozen=True)
class Config:
    max_message_bytes: int
    member_backlog: int  # reported, not enforced: broadcast() has no backlog to bound
    member_backlog_bytes: int  # likewise
    allowed_origins: list[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """The contract's CHAT_* settings, names and defaults as in CONTRACT.md."""
        return cls(
            max_message_bytes=int(env.get("CHAT_MAX_MESSAGE_BYTES", 16 * 1024 * 1024)),
            member_backlog=int(env.get("CHAT_MEMBER_BACKLOG", 100)),
            member_backlog_bytes=int(env.get("CHAT_MEMBER_BACKLOG_BYTES", 64 * 1024 * 1024)),
            allowed_origins=[h.strip() for h in env.get("CHAT_ALLOWED_ORIGINS", "localhost,127.0.0.1,[::1]")
                             .split(",") if h.strip()],
        )


def origin_allowed(origins: list[str], patterns: list[str]) -> bool:
    """Channels' OriginValidator rules for host patterns; no Origin header (not a browser) passes."""
    if not origins:
        return True
    host = urlsplit(origins[0]).hostname if len(origins) == 1 else None
    if host is None:
        return False
    for pattern in patterns:
        if pattern == "*":
            return True
        wanted = (urlsplit("//" + pattern).hostname or pattern).lower()
        if host == wanted or (wanted.startswith(".") and (host.endswith(wanted) or host == wanted[1:])):
            return True
    return False


def close_code(protocol: Protocol) -> int:
    """The code of the closing handshake, whoever began it (1006: none, TCP just went)."""
    if protocol.close_sent is not None and not protocol.close_rcvd_then_sent:
        return protocol.close_sent.code
    if protocol.close_rcvd is not None:
        return protocol.close_rcvd.code
    return 1006


@dataclass
class Chat:
    """The rooms and the /stats counters (schema in CONTRACT.md)."""

    config: Config
    rooms: dict[str, set[ServerConnection]] = field(default_factory=dict)
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    messages_in: int = 0
    bytes_in: int = 0
    deliveries: int = 0
    bytes_out: int = 0
    drops: Counter = field(
        default_factory=lambda: Counter(backlog_full=0, backlog_bytes=0, send_failed=0, expired=0, redis_unavailable=0)
    )
    close_codes: Counter = field(default_factory=Counter)
    origins_refused: int = 0
    process: psutil.Process = field(default_factory=psutil.Process)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """HTTP endpoints, and the handshake policy: a bad room or Origin is refused with 403."""
        path = request.path.partition("?")[0]
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok")
        if path == "/stats":
            return json_response(self.stats())
        if not path.startswith("/ws/"):
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        origin_ok = origin_allowed(request.headers.get_all("Origin"), self.config.allowed_origins)
        if not ROOM_PATH.fullmatch(path) or not origin_ok:
            self.connections_refused += 1
            self.origins_refused += not origin_ok
            return connection.respond(http.HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def member(self, ws: ServerConnection) -> None:
        """Relay every message the member sends to its room, itself included, until it leaves."""
        assert ws.request is not None  # a member is a connection whose handshake process_request let through
        found = ROOM_PATH.fullmatch(ws.request.path.partition("?")[0])
        assert found is not None
        room = found.group(1)
        members = self.rooms.setdefault(room, set())
        members.add(ws)
        self.connections_open += 1
        self.connections_total += 1
        try:
            async for message in ws:
                text = isinstance(message, str)
                data = message.encode() if isinstance(message, str) else message
                self.messages_in += 1
                self.bytes_in += len(data)
                self.relay(members, data, text)
        except websockets.ConnectionClosed:
            pass
        finally:
            members.discard(ws)
            if not members:
                del self.rooms[room]
            await ws.wait_closed()
            self.connections_open -= 1
            self.close_codes[close_code(ws.protocol)] += 1

    def relay(self, members: set[ServerConnection], data: bytes, text: bool) -> None:
        # broadcast() skips members whose closing handshake has begun, silently: count them here.
        recipients = [m for m in members if m.protocol.state is OPEN]
        failed = 0
        try:
            broadcast(recipients, data, text=text, raise_exceptions=True)
        except ExceptionGroup as skipped:
            failed = len(skipped.exceptions)
        delivered = len(recipients) - failed
        self.drops["send_failed"] += len(members) - delivered
        self.deliveries += delivered
        self.bytes_out += delivered * len(data)

    def stats(self) -> dict:
        cpu, read_at = self.process.cpu_times(), time.time()
        return {
            "backend": "reference",
            "server": f"websockets {websockets.__version__}",
            "fanout": "broadcast",
            "layer": "memory",
            "pid": self.process.pid,
            "config": {
                "max_message_bytes": self.config.max_message_bytes,
                "member_backlog": self.config.member_backlog,
                "member_backlog_bytes": self.config.member_backlog_bytes,
                "allowed_origins": self.config.allowed_origins,
            },
            "connections": {
                "open": self.connections_open,
                "total": self.connections_total,
                "refused": self.connections_refused,
            },
            "rooms": len(self.rooms),
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "deliveries": self.deliveries,
            "bytes_out": self.bytes_out,
            "drops": dict(self.drops),
            "backlog": 0,  # broadcast() hands every delivery to the transport at once
            "close_codes": {str(code): n for code, n in self.close_codes.items()},
            "app": {  # relay mode only: no sign-in, no database (CONTRACT.md, "The reference target")
                "mode": "relay", "database": None,
                "messages_stored": 0, "store_failures": 0, "store_seconds": 0.0,
                "handshakes_refused": {"anonymous": 0, "forged": 0, "expired": 0, "origin": self.origins_refused,
                                       "database": 0},
                "db_connections_open": 0, "storing": 0, "wait_for": "", "workers": 0,
                "stages": {"wait": {"seconds": 0.0, "count": 0}, "db": {"seconds": 0.0, "count": 0}},
                "loop_lag": {"seconds": 0.0, "count": 0, "max": 0.0},  # not measured on the floor
            },
            "rss_bytes": self.process.memory_info().rss,
            "cpu_seconds": cpu.user + cpu.system, "read_at": read_at,
        }


def json_response(body: dict) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(http.HTTPStatus.OK, "OK", headers, data)


async def run(host: str, port: int, config: Config) -> None:
    chat = Chat(config)
    async with serve(chat.member, host, port, process_request=chat.process_request,
                     max_size=config.max_message_bytes,
                     compression=None) as server:  # daphne and uvicorn (as launched here) do not compress
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    config = Config.from_env(os.environ)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    print(f"websockets {websockets.__version__} serve(host={args.host!r}, port={args.port}, "
          f"max_size={config.max_message_bytes}, compression=None)", file=sys.stderr, flush=True)
    uvloop.run(run(args.host, args.port, config))  # the uvicorn targets' event loop too


if __name__ == "__main__":
    main()
