"""Fast in-process tests of each backend's logic (no server process): Starlette's TestClient for
FastAPI, Channels' WebsocketCommunicator for the consumer. The wire contract itself is checked on
real servers by test_conformance.py."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")

from channels.testing import WebsocketCommunicator  # noqa: E402  (needs the settings module)

from django_chat.asgi import application as django_app  # noqa: E402
from fastapi_chat.app import create_app, origin_allowed  # noqa: E402

PATTERNS = ["localhost", "127.0.0.1", "[::1]", ".example.com"]


@pytest.mark.parametrize(("origin", "allowed"), [
    (None, True),  # not a browser
    ("http://localhost:3000", True),
    ("http://[::1]:8000", True),
    ("https://chat.example.com", True),
    ("https://example.com", True),
    ("https://evilexample.com", False),
    ("https://example.com.evil.org", False),
    ("null", False),  # a page opened from a file
])
def test_origin_rules(origin, allowed):
    assert origin_allowed(origin, PATTERNS) is allowed


def test_fastapi_relays_text_and_binary_to_the_sender_too():
    with TestClient(create_app()) as client, client.websocket_connect("/ws/in-process") as ws:
        ws.send_text("héllo")
        assert ws.receive_text() == "héllo"
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"


@pytest.mark.parametrize("path", ["/ws/bad room", "/ws/" + "x" * 65, "/elsewhere"])
def test_fastapi_refuses_bad_rooms(path):
    with TestClient(create_app()) as client, pytest.raises(WebSocketDisconnect):
        with client.websocket_connect(path):
            pass


async def test_channels_consumer_relays_to_every_member():
    a = WebsocketCommunicator(django_app, "/ws/in-process")
    b = WebsocketCommunicator(django_app, "/ws/in-process")
    assert (await a.connect())[0] and (await b.connect())[0]
    await a.send_to(text_data="héllo")
    assert await a.receive_from() == "héllo" and await b.receive_from() == "héllo"
    await b.send_to(bytes_data=b"\x00\xff")
    assert await a.receive_from() == b"\x00\xff" and await b.receive_from() == b"\x00\xff"
    await a.disconnect()
    await b.disconnect()


@pytest.mark.parametrize(("path", "headers"), [
    ("/ws/bad room", []),
    ("/elsewhere", []),
    ("/ws/in-process", [(b"origin", b"http://evil.example")]),
])
async def test_channels_consumer_refuses_bad_rooms_and_origins(path, headers):
    communicator = WebsocketCommunicator(django_app, path, headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
