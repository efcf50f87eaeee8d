"""The FastAPI chat backend: the blog's `while True: receive` loop, one room registry."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse

from fastapi_chat import config
from fastapi_chat.broadcast import create_broadcast
from fastapi_chat.fanout import QueuedFanout, SeedFanout
from fastapi_chat.stats import STATS

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

app = FastAPI(title="fastapi_chat", openapi_url=None, docs_url=None, redoc_url=None)
fanout = SeedFanout() if config.FANOUT == "seed" else QueuedFanout(config.MEMBER_BACKLOG)
broadcast = create_broadcast(config.REDIS_URL, fanout)  # this process only, or every process through Redis


def origin_allowed(origin: str | None, patterns: list[str]) -> bool:
    """Channels' OriginValidator rules for host patterns; no Origin header (not a browser) passes."""
    if origin is None:
        return True
    host = urlsplit(origin).hostname
    if host is None:
        return False
    for pattern in patterns:
        if pattern == "*":
            return True
        wanted = (urlsplit("//" + pattern).hostname or pattern).lower()
        if host == wanted or (wanted.startswith(".") and (host.endswith(wanted) or host == wanted[1:])):
            return True
    return False


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok"


@app.get("/stats")
async def stats() -> JSONResponse:
    return JSONResponse(STATS.as_json(backlog=fanout.backlog_now()))


@app.websocket("/ws/{room:path}")
async def chat(websocket: WebSocket, room: str) -> None:
    if (not ROOM_NAME.fullmatch(room)
            or not origin_allowed(websocket.headers.get("origin"), config.ALLOWED_ORIGINS)
            or not await broadcast.subscribe(room)):  # False: Redis unreachable, the member would hear nothing
        STATS.connections_refused += 1
        await websocket.close()  # before accept: uvicorn answers the handshake with 403
        return
    try:
        await websocket.accept()
        await relay(websocket, room)
    finally:
        await broadcast.unsubscribe(room)


async def relay(websocket: WebSocket, room: str) -> None:
    """The blog's loop: receive a message, hand it to the room, until the member leaves."""
    member = fanout.join(room, websocket)
    STATS.connections_open += 1
    STATS.connections_total += 1
    code = 1006
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code", 1005)
                break
            text = message.get("text")
            if text is not None:
                size = len(text.encode())
                outgoing = {"type": "websocket.send", "text": text}
            else:
                size = len(message["bytes"])
                outgoing = {"type": "websocket.send", "bytes": message["bytes"]}
            STATS.messages_in += 1
            STATS.bytes_in += size
            await broadcast.publish(room, outgoing, size)
            # One socket read can hold hundreds of messages, which receive() then returns without
            # ever suspending: yield so the members' writers drain their queues between messages.
            await asyncio.sleep(0)
    finally:
        fanout.leave(member)
        STATS.connections_open -= 1
        STATS.close_codes[code] += 1
