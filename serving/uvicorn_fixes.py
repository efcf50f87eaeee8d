"""uvicorn's httptools and websockets-sansio protocols with the limits stock uvicorn 0.54.0 lacks against
hostile clients (CONTRACT.md, "Hostile clients"). Each fix is labelled with what stock does; the server
is app-agnostic, so both uvicorn targets (fastapi_chat.serve, django_chat.serve_uvicorn) run it through
`serve()`, its protocols bound to their limits (`protocols(EdgeLimits(...))`: no module state); with
CHAT_HARDENING=off, `protocols(None)` gives uvicorn's own.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, replace

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from serving import process_limits
from serving.process_limits import FD_RESERVE, MAX_HEAD_BYTES, PendingHandshakes, bytes_waiting, connection_bound
from serving.versions import require_versions

require_versions(__name__, {"uvicorn": "0.54.0", "websockets": "17.4", "httptools": "0.9.0"})

TOO_MANY_FRAGMENTS = 1008  # policy violation: the message is not too big, its framing is abusive


@dataclass(frozen=True)
class EdgeLimits:
    handshake_timeout: float  # from accept to a complete request head
    max_connections: int  # past it, 503; 0: from the fd limit
    max_fragments: int  # frames per message
    backlog_bytes: int  # the most a member may be owed; the transport never holds it but for unread pongs
    max_pending_handshakes: int  # WebSocket handshakes read and not yet answered; past it, 503 with Retry-After


STOCK_PROTOCOLS = ("httptools", "websockets-sansio")  # as uvicorn ships them: CHAT_HARDENING=off


def protocols(limits: EdgeLimits | None) -> tuple[type[asyncio.Protocol] | str, type[asyncio.Protocol] | str]:
    """uvicorn's http and ws protocols: this module's, bound to `limits` (the fd limit raised as far as the system
    allows and max_connections resolved from it, freed memory returned), or with None uvicorn's stock ones."""
    if limits is None:
        return STOCK_PROTOCOLS
    bound = {"limits": replace(limits, max_connections=connection_bound(limits.max_connections)),
             "handshakes": PendingHandshakes(limits.max_pending_handshakes)}
    process_limits.return_freed_memory()
    return type("HttpProtocol", (HttpProtocol,), bound), type("WebSocketProtocol", (WebSocketProtocol,), bound)


@dataclass(frozen=True)
class Wire:
    """How the server meets browsers (CONTRACT.md "As browsers connect"): permessage-deflate as uvicorn ships it
    (`deflate`; off by default, as daphne never negotiates it), and TLS (`tls`: a certificate chain and key file)."""

    deflate: bool = False
    tls: tuple[str, str] | None = None

    @classmethod
    def of(cls, compression: str, tls_cert: str, tls_key: str) -> Wire:
        """From the settings both stacks read (CHAT_COMPRESSION, CHAT_TLS_CERT, CHAT_TLS_KEY)."""
        return cls(compression == "shipped", (tls_cert, tls_key) if tls_cert else None)


def serve(app: str, host: str, port: int, max_message_bytes: int, keepalive: float, limits: EdgeLimits | None,
          factory: bool = False, wire: Wire = Wire()) -> None:
    """Run `app` on uvicorn as both uvicorn targets run: set up as uvicorn's docs recommend for production
    (uvloop, httptools, no access log), with the contract's message-size limit and keepalive, on this module's
    protocols (`limits`) or uvicorn's own (None); the equivalent command line goes to the log first."""
    http, ws = protocols(limits)
    name = lambda p: p if isinstance(p, str) else f"{__name__}:{p.__name__}"  # noqa: E731
    tls = f" --ssl-certfile {wire.tls[0]} --ssl-keyfile {wire.tls[1]}" if wire.tls else ""
    print(f"uvicorn {app}{' --factory' if factory else ''} --host {host} --port {port} --loop uvloop "
          f"--http {name(http)} --ws {name(ws)} --ws-max-size {max_message_bytes} --ws-ping-interval {keepalive} "
          f"--ws-ping-timeout {keepalive} --ws-per-message-deflate {str(wire.deflate).lower()}{tls} --no-access-log "
          f"--log-level warning --lifespan off" + (f"  ({limits})" if limits else ""), file=sys.stderr, flush=True)
    uvicorn.run(app, factory=factory, host=host, port=port, loop="uvloop", http=http, ws=ws,
                ws_max_size=max_message_bytes, ws_ping_interval=keepalive, ws_ping_timeout=keepalive,
                ws_per_message_deflate=wire.deflate,
                ssl_certfile=wire.tls[0] if wire.tls else None, ssl_keyfile=wire.tls[1] if wire.tls else None,
                access_log=False, log_level="warning", lifespan="off")


def busy(retry_after: int) -> bytes:
    return b"503 Service Unavailable\r\nretry-after: " + str(retry_after).encode()


def respond(transport, status: bytes) -> None:
    """A bodyless HTTP error, then close (it is written before the close completes)."""
    transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    transport.close()


class HttpProtocol(HttpToolsProtocol):
    limits: EdgeLimits  # bound by protocols()
    handshakes: PendingHandshakes  # the process's, shared with WebSocketProtocol
    refused = False
    head_done = False
    head_bytes = 0
    head_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # Stock: `--limit-concurrency` answers 503 only once a request is complete, and counts nothing
        # else; ~1,070 idle sockets at ulimit 1024 locked every client out. Past the limit: 503 to the
        # request, or at once an abort if the excess grows past the fd reserve.
        if len(self.connections) > self.limits.max_connections:
            if len(self.connections) > self.limits.max_connections + FD_RESERVE:
                transport.abort()
                return
            self.refused = True
        self.start_head_timer()

    def start_head_timer(self) -> None:
        # Stock: a connection that sends nothing, or half a request, is never closed.
        self.head_done, self.head_bytes = False, 0
        self.head_timer = self.loop.call_later(self.limits.handshake_timeout, self.head_timeout)

    def head_timeout(self) -> None:
        self.head_timer = None
        if self.head_done or self.transport.is_closing():
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None and bytes_waiting(sock.fileno()):  # sent in time, not yet read (a storm): wait for it
            self.head_timer = self.loop.call_later(self.limits.handshake_timeout, self.head_timeout)
            return
        respond(self.transport, b"408 Request Timeout")

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def data_received(self, data: bytes) -> None:
        if self.refused:
            respond(self.transport, b"503 Service Unavailable")
            return
        self.head_bytes += len(data)
        super().data_received(data)
        # Stock httptools takes request heads of any size (a 64 KB header line, thousands of headers).
        if not self.head_done and self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            respond(self.transport, b"431 Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.head_done:  # the next request on a kept-alive connection
            self.start_head_timer()

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.cancel_head_timer()
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        # Stock hands every handshake to the application at once. Past the bound, refused before it gets there.
        if self.handshakes.admit() is None:
            respond(self.transport, busy(self.handshakes.retry_after()))
            return
        super().handle_websocket_upgrade()  # the WebSocketProtocol it makes answers for it

    def connection_lost(self, exc) -> None:
        self.cancel_head_timer()
        super().connection_lost(exc)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    limits: EdgeLimits  # bound by protocols()
    handshakes: PendingHandshakes
    fragments = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # made by HttpProtocol.handle_websocket_upgrade once admitted; counted until the handshake is answered
        self.admitted_at: float | None = self.handshakes.clock()

    def start_keepalive(self) -> None:  # uvicorn's call at the 101, and there only
        self.handshake_answered()
        super().start_keepalive()

    def connection_lost(self, exc) -> None:  # refused by the application, or gone before an answer
        self.handshake_answered()
        super().connection_lost(exc)

    def handshake_answered(self) -> None:
        if self.admitted_at is not None:
            self.handshakes.answered(self.admitted_at)
            self.admitted_at = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Stock: a handshake websockets rejects (request line over 8 KiB: 414; a header line over 8 KiB or
        # more than 128 headers: 431; anything unparsable) gets its answer queued and never written.
        if not self.handshake_initiated and self.conn.handshake_exc is not None and not self.transport.is_closing():
            answer = b"".join(self.conn.data_to_send())
            if answer:
                self.transport.write(answer)
                self.transport.close()
            else:
                respond(self.transport, b"400 Bad Request")

    def handle_text(self, event) -> None:
        self.fragments = 1
        super().handle_text(event)

    def handle_bytes(self, event) -> None:
        self.fragments = 1
        super().handle_bytes(event)

    def handle_cont(self, event) -> None:
        # Stock: one max-size message in 1-byte frames held ~1 GiB as a list of bytes objects and kept the
        # loop busy for seconds per million frames.
        self.fragments += 1
        if self.fragments > self.limits.max_fragments:
            if self.conn.close_sent is None:
                self.frames = []
                self.conn.fail(TOO_MANY_FRAGMENTS, "too many fragments in one message")
                self.handle_parser_exception()
            return
        super().handle_cont(event)

    def handle_ping(self) -> None:
        # Stock answers every ping however much the peer has left unread: a peer that floods pings and
        # reads nothing grew the server's memory without bound. uvicorn's `send` waits while the transport
        # is paused, so only pongs take it past the byte bound: then the peer is dropped.
        if self.transport.get_write_buffer_size() > self.limits.backlog_bytes:
            self.transport.abort()
            return
        super().handle_ping()

    def keepalive_timeout(self) -> None:
        # Stock closes with 1011 and waits for the write buffer to drain: a peer that stopped reading
        # (zero window) never drains it, so it was never closed, and a sender blocked on it stayed blocked.
        super().keepalive_timeout()
        if self.transport.get_write_buffer_size():
            self.transport.abort()
