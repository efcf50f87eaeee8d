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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, Protocol

from serving.stats import ChatStats, Identity

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


@dataclass(kw_only=True)
class Chat(ChatStats):
    """The rooms, and the /stats counters every server keeps (serving/stats.py, schema in CONTRACT.md)."""

    config: Config
    rooms: dict[str, set[ServerConnection]] = field(default_factory=dict)

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
        if not origin_ok:
            self.refuse("origin")
        elif not ROOM_PATH.fullmatch(path):
            self.connections_refused += 1
        else:
            return None
        return connection.respond(http.HTTPStatus.FORBIDDEN, "forbidden\n")

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

    def stats(self) -> dict[str, Any]:
        identity = Identity(backend="reference", server=f"websockets {websockets.__version__}", fanout="broadcast",
                            layer="memory", config=asdict(self.config),
                            mode="relay", wait_for="")  # no sign-in, no database (CONTRACT.md, "The reference target")
        # backlog 0: broadcast() hands every delivery to the transport at once; the loop's lag is not watched here
        return self.as_json(identity, len(self.rooms), backlog=0, database=None, db_connections=0, workers=0)


def json_response(body: dict) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(http.HTTPStatus.OK, "OK", headers, data)


async def run(host: str, port: int, config: Config) -> None:
    chat = Chat(config=config)
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
