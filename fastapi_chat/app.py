"""The FastAPI chat backend: the blog's `while True: receive` loop, one room registry.

Built by a factory (`create_app`, uvicorn's `--factory`), as FastAPI's docs build a bigger application: the
routes live on a router; each app holds its own rooms, broadcast and database engine (`Chat`, in `app.state`),
which the routes reach through a dependency."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketException
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse, PlainTextResponse

from fastapi_chat import config
from fastapi_chat.broadcast import Broadcast, create_broadcast
from fastapi_chat.fanout import Member, QueuedFanout, SeedFanout
from fastapi_chat.stats import STATS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
STORE_FAILED = 4503  # app mode: not stored, so sent to no one; try again later (CONTRACT.md, "App mode")
REFUSED = 1008  # closing before accept: uvicorn answers the handshake with 403 whatever the code

if config.APP == "full":  # Django's users, sessions and messages; relay mode imports no SQLAlchemy (18 MiB RSS)
    from fastapi_chat import auth, db


@dataclass(frozen=True)
class Chat:
    """What one app's members share: the rooms of this process (the fan-out), how a message reaches every
    process (the broadcast), and in app mode the database engine."""

    fanout: SeedFanout | QueuedFanout
    broadcast: Broadcast
    engine: AsyncEngine | None


async def chat_of(connection: HTTPConnection) -> Chat:
    """The app's Chat (async: FastAPI would run a plain function in its thread pool, a thread per handshake)."""
    return connection.app.state.chat


router = APIRouter()


def create_app() -> FastAPI:
    """The chat app, set up from `config`: uvicorn calls it once per worker process."""
    fanout = SeedFanout() if config.FANOUT == "seed" \
        else QueuedFanout(config.MEMBER_BACKLOG, config.MEMBER_BACKLOG_BYTES)
    app = FastAPI(title="fastapi_chat", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.chat = Chat(fanout, create_broadcast(config.REDIS_URL, fanout),  # this process, or all through Redis
                          db.create_engine(config.DATABASE_URL, config.STORE == "lean", config.DB_POOL_SIZE)
                          if config.APP == "full" else None)
    app.include_router(router)
    return app


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


async def same_origin(websocket: WebSocket) -> None:
    """Cross-site WebSocket hijacking: a browser page from elsewhere is refused, cookie or not."""
    if not origin_allowed(websocket.headers.get("origin"), config.ALLOWED_ORIGINS):
        STATS.refuse("origin")
        raise WebSocketException(REFUSED)


async def signed_in(websocket: WebSocket, chat: Annotated[Chat, Depends(chat_of)],
                    _: Annotated[None, Depends(same_origin)]) -> Any:
    """App mode: the member's Django session resolved to an auth.User (auth.py), or the handshake is
    refused before accept. Relay mode: nobody signs in (None)."""
    if chat.engine is None:
        return None
    try:
        return await auth.session_user(chat.engine, websocket.cookies.get(config.SESSION_COOKIE), config.SECRET_KEY)
    except auth.Refused as refused:
        STATS.refuse(refused.cause)
    except db.DATABASE_ERRORS:
        STATS.refuse("database")
    raise WebSocketException(REFUSED)


def history_wanted(websocket: WebSocket) -> int | None | bool:
    """`?history=N` (0 ≤ N ≤ HISTORY_MAX): N; absent: None; anything else: False (refused)."""
    values = websocket.query_params.getlist("history")
    if not values:
        return None
    if len(values) != 1 or not values[0].isdigit() or int(values[0]) > config.HISTORY_MAX:
        return False
    return int(values[0])


LOOPBACK = ["127.0.0.1", "localhost", "[::1]"]  # no page elsewhere can send these as its Host


async def allowed_host(request: Request) -> None:
    """DNS rebinding: a page whose name resolves to this server sends its own name as Host; answer only
    the hosts allowed as Origin (and loopback, the bench's readers): Django's ALLOWED_HOSTS, 400."""
    if not origin_allowed("//" + request.headers.get("host", ""), config.ALLOWED_ORIGINS + LOOPBACK):
        raise HTTPException(400, "Invalid HTTP_HOST header")


@router.get("/healthz", response_class=PlainTextResponse, dependencies=[Depends(allowed_host)])
async def healthz() -> str:
    return "ok"


@router.get("/stats", dependencies=[Depends(allowed_host)])
async def stats(chat: Annotated[Chat, Depends(chat_of)]) -> JSONResponse:
    backlog, engine = chat.fanout.backlog_now(), chat.engine
    if engine is None:
        return JSONResponse(STATS.reading(backlog=backlog))
    return JSONResponse(STATS.reading(backlog=backlog, database=engine.dialect.name,
                                      db_connections=db.connections_open(engine),
                                      workers=config.DB_POOL_SIZE + db.MAX_OVERFLOW))


@router.websocket("/ws/{room:path}")
async def join_room(websocket: WebSocket, room: str, chat: Annotated[Chat, Depends(chat_of)],
                    user: Annotated[Any, Depends(signed_in)]) -> None:
    fanout, broadcast = chat.fanout, chat.broadcast
    STATS.watch_loop()
    history = history_wanted(websocket) if user is not None else None
    # The route's `{room:path}` ends in `$`, which matches before a trailing newline: /ws/abc%0A was room abc.
    if (not ROOM_NAME.fullmatch(websocket.scope["path"].removeprefix("/ws/")) or history is False
            or not await broadcast.subscribe(room)):  # False: Redis unreachable, the member would hear nothing
        STATS.connections_refused += 1
        await websocket.close()  # before accept: uvicorn answers the handshake with 403
        return
    try:
        if history is None:
            await websocket.accept()
            member = fanout.join(room, websocket)
        else:
            # Join before reading the history, hearing nothing until it is sent: a message stored from
            # now on is queued live, one stored before is in the history, none is in both (Member.had).
            assert chat.engine is not None  # a member signed in: app mode
            member = fanout.join(room, websocket, start=False)
            try:
                rows = await db.recent(chat.engine, room, history)
            except db.DATABASE_ERRORS:
                fanout.leave(member)
                STATS.refuse("database")
                await websocket.close()
                return
            member.got_history([pk for pk, _, _ in rows])
            try:
                await websocket.accept()
                await websocket.send_text(json.dumps({"history": len(rows)}))
                for _, is_text, payload in rows:
                    await (websocket.send_text(payload.decode()) if is_text else websocket.send_bytes(payload))
            except BaseException:  # gone while it was sent its history: out of the room, as relay() would
                fanout.leave(member)
                raise
            fanout.start(member)
        await relay(websocket, room, member, user, chat)
    finally:
        await broadcast.unsubscribe(room)


async def relay(websocket: WebSocket, room: str, member: Member, user: Any, chat: Chat) -> None:
    """The blog's loop: receive a message, (app mode: store it,) hand it to the room, until the member leaves."""
    broadcast = chat.broadcast
    engine = chat.engine if user is not None else None  # what a signed-in member's messages are stored in
    STATS.connections_open += 1
    STATS.connections_total += 1
    code = 1006
    stored_id = None
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
            if engine is not None:
                try:
                    stored_id = await db.store(engine, room, user.id, text, message.get("bytes"))
                except db.DATABASE_ERRORS:  # not stored, so not fanned out: the close code tells the sender
                    code = STORE_FAILED
                    await websocket.close(STORE_FAILED)
                    break
            await broadcast.publish(room, outgoing, size, stored_id)
            # One socket read can hold hundreds of messages, which receive() then returns without
            # ever suspending: yield so the members' writers drain their queues between messages.
            await asyncio.sleep(0)
    finally:
        chat.fanout.leave(member)
        STATS.connections_open -= 1
        STATS.close_codes[code] += 1
