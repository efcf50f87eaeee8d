"""daphne's WebSocket protocol and factory with what the wire contract needs and stock daphne
4.2.3 lacks. Each fix is a finding of the conformance suite (CONTRACT.md, "Findings") or of the
hostile-client tests (tests/test_hostile.py; CONTRACT.md, "Hostile clients").
"""

import ctypes
from urllib.parse import urlsplit

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

from django_chat.chat.layers import OutboundFull
from django_chat.patching import require_versions

require_versions(__name__, {"daphne": "4.2.3", "autobahn": "26.10.2", "twisted": "26.10.0"})

TOO_MANY_FRAGMENTS = 1008  # policy violation: the message is not too big, its framing is abusive


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


def return_freed_memory() -> None:
    """glibc raises its mmap threshold to the largest block freed (up to 32 MiB), so after one large
    message every payload comes from the heap, which is rarely returned: RSS stayed at its peak after a
    non-reader left. A fixed 128 KiB threshold (glibc's initial one) hands large payloads back at once."""
    ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


class ContractWebSocketProtocol(WebSocketProtocol):
    def onConnect(self, request):
        # autobahn parses the request line with urlparse, which cuts ";params" off the path, so
        # stock daphne routes "/ws/a;b" to room "a". Keep the path exactly as it was sent.
        request.path = urlsplit(self.http_request_uri).path
        return super().onConnect(request)

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
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

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
        # Twisted keeps a lost connection's unsent bytes (up to CHAT_MEMBER_BACKLOG_BYTES) for as long
        # as the transport object lives, which daphne extends to its application's end: free them now.
        self.transport.dataBuffer, self.transport.offset = b"", 0
        self.transport._tempDataBuffer, self.transport._tempDataLen = [], 0
        super().onClose(wasClean, code, reason)

    def handle_reply(self, message):
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
            # Stock daphne buffers whatever a peer that does not read is owed, without limit (RSS grew
            # 1:1 with it, to MemoryError). Past CHAT_MEMBER_BACKLOG_BYTES the consumer drops and counts.
            payload = message.get("bytes") if message.get("bytes") is not None else message.get("text") or ""
            if self.outbound_bytes() + len(payload) > settings.CHAT_MEMBER_BACKLOG_BYTES:
                raise OutboundFull
            # Stock daphne only sends truthy payloads, silently dropping empty messages.
            if message.get("bytes") == b"" and message.get("text") is None:
                return self.serverSend(b"", True)
            if message.get("text") == "" and message.get("bytes") is None:
                return self.serverSend("", False)
        return super().handle_reply(message)


class ContractWebSocketFactory(WebSocketFactory):
    protocol = ContractWebSocketProtocol

    def setProtocolOptions(self, **options):
        # Stock daphne fails connections by dropping TCP (autobahn's failByDrop): an oversize
        # message or bad UTF-8 then shows as 1006 instead of 1009 / 1007.
        super().setProtocolOptions(failByDrop=False, **options)
