"""daphne's WebSocket protocol and factory with what the wire contract needs and stock daphne
4.2.3 lacks. Each fix is a finding of the conformance suite (CONTRACT.md, "Findings").
"""

from urllib.parse import urlsplit

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

from django_chat.patching import require_versions

require_versions(__name__, {"daphne": "4.2.3", "autobahn": "26.10.2"})


class ContractWebSocketProtocol(WebSocketProtocol):
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
        # Stock daphne only sends truthy payloads, silently dropping empty messages.
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
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
