"""daphne's WebSocket protocol and factory with what the wire contract needs and stock daphne
4.2.3 lacks (ContractWebSocketFactory: each fix a finding of the conformance suite, CONTRACT.md
"Findings"), and the limits against hostile clients on top (HardenedWebSocketFactory, guard_connections:
tests/test_hostile.py; CONTRACT.md, "Hostile clients"), which CHAT_HARDENING=off leaves out.
"""

from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.util import extract_peer_certificate, transport_channel_id
from autobahn.websocket.types import ConnectionDeny
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.internet.protocol import connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOProtocol

from django_chat.chat.layers import OutboundFull
from serving.process_limits import FD_RESERVE, MAX_HEAD_BYTES, RETRY_AFTER_S, PendingHandshakes, bytes_waiting
from serving.versions import require_versions

require_versions(__name__, {"daphne": "4.2.3", "autobahn": "26.10.2", "twisted": "26.10.0"})

TOO_MANY_FRAGMENTS = 1008  # policy violation: the message is not too big, its framing is abusive
ACCEPT_BACKLOG = 2048  # uvicorn's; Twisted's 50 failed hundreds of a 2,000-handshake storm


def valid_close_code(code: int) -> bool:
    """RFC 6455 7.4 and IANA's registry: what a peer may send (autobahn's list lacks 1014)."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_answer(code: int | None, reason: bytes | None) -> int | None:
    """The code to answer a peer's close frame with: its own if valid (None: it sent none)."""
    if code is not None and not valid_close_code(code):
        return 1002
    try:
        (reason or b"").decode()
    except UnicodeDecodeError:
        return 1007
    return code


class ContractWebSocketProtocol(WebSocketProtocol):
    """What the wire contract needs of daphne, hardening or not."""

    def onConnect(self, request):
        # autobahn parses the request line with urlparse, which cuts ";params" off the path, so
        # stock daphne routes "/ws/a;b" to room "a". Keep the path exactly as it was sent.
        request.path = urlsplit(self.http_request_uri).path
        return super().onConnect(request)

    def onMessage(self, payload, isBinary):
        # With close frames on (failByDrop=False) autobahn still hands over the frame that failed
        # the connection; daphne would decode invalid UTF-8 and drop the socket (1006, not 1007).
        if self.state == self.STATE_OPEN:
            super().onMessage(payload, isBinary)

    def onClose(self, wasClean, code, reason):
        # autobahn reports a connection it failed itself (bad UTF-8) as unclean 1006 even after a
        # complete closing handshake; the application should see the code that was sent.
        if self.failedByMe and self.localCloseCode:
            code = self.localCloseCode
        super().onClose(wasClean, code, reason)

    def handle_reply(self, message):
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
            # Stock daphne only sends truthy payloads, silently dropping empty messages.
            if message.get("bytes") == b"" and message.get("text") is None:
                return self.serverSend(b"", True)
            if message.get("text") == "" and message.get("bytes") is None:
                return self.serverSend("", False)
        return super().handle_reply(message)


class HardenedWebSocketProtocol(ContractWebSocketProtocol):
    """The limits stock daphne lacks against one hostile client (CONTRACT.md, "Hostile clients")."""

    fragments = 0
    admitted_at: float | None = None  # counted in the factory's pending handshakes since, not yet answered
    retry_after = RETRY_AFTER_S  # what a 503 past the pending bound tells the client to wait (PendingHandshakes)

    @property
    def tcp(self):
        """Twisted's TCP transport, under guard_connections' wrapper (and Twisted's TLS protocol, for wss://)."""
        transport = self.transport
        while isinstance(transport, ProtocolWrapper):
            transport = transport.transport
        return transport

    # Over wss://, autobahn reads the TLS session from self.transport, which it requires to be Twisted's TLS
    # protocol: here guard_connections' wrapper sits on it, and autobahn raised (a 500 to every handshake). It
    # reads it twice, as the connection is made and as it opens: both times it is shown the TLS protocol.
    @property
    def tls(self) -> Any:
        """Twisted's TLS protocol under guard_connections' wrapper (wss://), else None."""
        guard = self.transport
        inner = guard.transport if isinstance(guard, GuardedConnection) else None
        return inner if isinstance(inner, TLSMemoryBIOProtocol) else None

    def connectionMade(self):
        if self.tls is None:
            return super().connectionMade()
        with showing(self, self.tls):
            super().connectionMade()

    def _onOpen(self):  # autobahn's, reading the TLS session under the wrapper
        details = self._transport_details
        if details.is_secure:
            tls = self.tls or self.transport
            details.channel_id = {"tls-unique": transport_channel_id(tls, details.is_server, "tls-unique")}
            details.peer_cert = extract_peer_certificate(tls)
        self.onOpen()

    def onConnect(self, request):
        # Stock hands every handshake to the application at once: in a storm of 5,000 they all progressed
        # together and none finished within daphne's own 5 s handshake timeout (403s, resets). Past the bound
        # a handshake is refused at once, before an application instance exists.
        self.admitted_at = self.factory.pending.admit()
        if self.admitted_at is None:
            self.retry_after = self.factory.pending.retry_after()
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "Service Unavailable")
        return super().onConnect(request)

    def failHandshake(self, reason, code=400, responseHeaders=None):
        if code == ConnectionDeny.SERVICE_UNAVAILABLE:
            responseHeaders = [*(responseHeaders or ()), ("Retry-After", str(self.retry_after))]
        self.handshake_answered()
        super().failHandshake(reason, code, responseHeaders)

    def onOpen(self):
        self.handshake_answered()
        super().onOpen()

    def connectionLost(self, reason=connectionDone):
        self.handshake_answered()
        super().connectionLost(reason)

    def handshake_answered(self) -> None:
        if self.admitted_at is not None:
            self.factory.pending.answered(self.admitted_at)
            self.admitted_at = None

    def onMessageBegin(self, isBinary):
        self.fragments = 0
        super().onMessageBegin(isBinary)

    def onMessageFrameBegin(self, length):
        # One max-size message in 1-byte frames held ~1 GiB as a list of bytes objects and kept the
        # reactor busy for seconds per million frames: refuse more than CHAT_MAX_FRAGMENTS frames.
        self.fragments += 1
        if self.fragments > settings.CHAT_MAX_FRAGMENTS and not self.failedByMe:
            self._fail_connection(TOO_MANY_FRAGMENTS, "too many fragments in one message")
            self.dropConnection(abort=False)  # stop reading: autobahn would parse the rest for its close timeout
        super().onMessageFrameBegin(length)

    def onCloseFrame(self, code, reasonRaw):
        # Stock autobahn answers a close frame it finds invalid (a reserved code, 1014, a 1-byte
        # payload, a reason that is not UTF-8) by queueing 1002/1007 and then aborting TCP, which
        # discards that frame: the peer sees a reset. And it echoes every valid code as 1000.
        if self.state == self.STATE_CLOSING and self.failedByMe:
            self.wasClean = True
            self.dropConnection(abort=False)  # after the queued close frame is written
            return True
        if self.state != self.STATE_OPEN:
            return super().onCloseFrame(code, reasonRaw)
        answer = close_answer(code, reasonRaw)
        self.wasClean = True
        self.remoteCloseCode = 1005 if answer is None else answer
        self.remoteCloseReason = reasonRaw.decode() if answer == code and reasonRaw else None
        self.sendCloseFrame(code=answer, reasonUtf8=reasonRaw if answer == code else None, isReply=True)
        self.dropConnection(abort=False)
        return True

    def onPing(self, payload):
        # Stock answers every ping however much the peer has left unread: a peer that floods pings and
        # reads nothing grew the server's memory without bound. Past the byte bound it is dropped.
        if self.outbound_bytes() > settings.CHAT_MEMBER_BACKLOG_BYTES:
            self.dropConnection(abort=True)
            return
        super().onPing(payload)

    def outbound_bytes(self) -> int:
        """What Twisted's transport holds for this peer, not yet written to the socket."""
        tcp = self.tcp
        return len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen

    def onClose(self, wasClean, code, reason):
        # Twisted keeps a lost connection's unsent bytes (up to CHAT_MEMBER_BACKLOG_BYTES) for as long
        # as the transport object lives, which daphne extends to its application's end: free them now.
        tcp = self.tcp
        tcp.dataBuffer, tcp.offset, tcp._tempDataBuffer, tcp._tempDataLen = b"", 0, [], 0
        super().onClose(wasClean, code, reason)

    def handle_reply(self, message):
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
            # Stock daphne buffers whatever a peer that does not read is owed, without limit (RSS grew
            # 1:1 with it, to MemoryError). Past CHAT_MEMBER_BACKLOG_BYTES the consumer drops and counts.
            payload = message.get("bytes") if message.get("bytes") is not None else message.get("text") or ""
            if self.outbound_bytes() + len(payload) > settings.CHAT_MEMBER_BACKLOG_BYTES:
                raise OutboundFull
        return super().handle_reply(message)


class ContractWebSocketFactory(WebSocketFactory):
    protocol = ContractWebSocketProtocol

    def setProtocolOptions(self, **options):
        # Stock daphne fails connections by dropping TCP (autobahn's failByDrop): an oversize
        # message or bad UTF-8 then shows as 1006 instead of 1009 / 1007.
        super().setProtocolOptions(failByDrop=False, **options)


class HardenedWebSocketFactory(ContractWebSocketFactory):
    protocol = HardenedWebSocketProtocol

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending = PendingHandshakes(settings.CHAT_MAX_PENDING_HANDSHAKES)


def respond(transport, status: bytes) -> None:
    """A bodyless HTTP error, then close (Twisted writes it before it closes)."""
    transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    transport.loseConnection()


@contextmanager
def showing(protocol, transport):
    """`protocol.transport` is `transport` for the block."""
    shown, protocol.transport = protocol.transport, transport
    try:
        yield
    finally:
        protocol.transport = shown


class GuardedConnection(ProtocolWrapper):
    """One TCP connection under guard_connections: refused past the limit, timed out before its head.
    daphne's upgrade hands the wrapper on to the WebSocket protocol, so it lives as long as the socket."""

    refused = False
    head_timer = None
    head_bytes = 0
    tail = b""  # the last bytes seen, for a head end split across reads

    def makeConnection(self, transport):
        super().makeConnection(transport)
        # Stock: no connection limit at all; past the fd limit accept() fails and clients hang.
        self.refused = len(self.factory.protocols) > self.factory.limit
        # Stock: Twisted's 60 s idle timeout restarts with every byte, so one byte a minute keeps a
        # connection that never finishes its request. This deadline does not move.
        self.head_timer = transport.reactor.callLater(self.factory.handshake_timeout, self.head_timeout)

    def dataReceived(self, data):
        if self.disconnecting:  # answered 503, 408 or 431 and closing: the rest of its request is not read
            return
        if self.head_timer is not None:
            if self.refused:
                return respond(self, b"503 Service Unavailable")
            seen = self.tail + data
            ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := seen.find(mark)) >= 0]
            self.head_bytes += (min(ends) - len(self.tail)) if ends else len(data)
            # Stock: Twisted drops a line over 16 KiB (a 64 KB header) with no answer at all
            if self.head_bytes > MAX_HEAD_BYTES:
                return respond(self, b"431 Request Header Fields Too Large")
            if ends:
                self.head_timer.cancel()
                self.head_timer = None
            self.tail = seen[-3:]
        super().dataReceived(data)

    def head_timeout(self):
        self.head_timer = None
        if self.disconnecting or self.transport is None or self.transport.disconnecting:
            return
        if bytes_waiting(self.transport.fileno()):  # sent in time, not yet read (a storm): wait for the loop
            self.head_timer = self.transport.reactor.callLater(self.factory.handshake_timeout, self.head_timeout)
            return
        respond(self, b"408 Request Timeout")

    def connectionLost(self, reason=connectionDone):
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().connectionLost(reason)


class ConnectionGuard(WrappingFactory):
    protocol = GuardedConnection

    def __init__(self, wrapped, limit: int, handshake_timeout: float):
        super().__init__(wrapped)
        self.limit, self.handshake_timeout = limit, handshake_timeout

    def buildProtocol(self, addr):
        if len(self.protocols) > self.limit + FD_RESERVE:
            return None  # Twisted closes the socket at once: the excess must not take the reserve too
        return super().buildProtocol(addr)


def guard_connections(http_factory_class, max_connections: int, handshake_timeout: float):
    """daphne's HTTPFactory, counted and timed: past `max_connections` open connections a request gets
    503 (like serving/uvicorn_fixes.py), and a connection whose request head is not complete
    `handshake_timeout` seconds after accept gets 408; both are then closed."""
    return lambda server: ConnectionGuard(http_factory_class(server), max_connections, handshake_timeout)
