"""Clients for the tests: the reference WebSocket client (`websockets`), members closed at the end
of a test, /stats polling, and a raw-socket client that can send anything and read only when asked."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.run.serverproc import ServerProcess

CONNECT_OPTIONS = dict(
    compression=None,  # compare frames as sent; the servers need not negotiate deflate alike
    max_size=None, proxy=None, ping_interval=None, open_timeout=10, close_timeout=5,
)


# App-mode servers (base URL → Cookie header): every client the tests open there signs in with it.
SESSION_COOKIES: dict[str, str] = {}


async def open_path(server: ServerProcess, path: str, **options) -> ClientConnection:
    """A WebSocket connection through the reference client (`websockets`)."""
    if server.base_url in SESSION_COOKIES:
        options["additional_headers"] = {"Cookie": SESSION_COOKIES[server.base_url],
                                         **options.get("additional_headers", {})}
    return await connect(server.ws_url + path, **{**CONNECT_OPTIONS, **options})


async def join(server: ServerProcess, room: str, **options) -> ClientConnection:
    """A member of `room`."""
    return await open_path(server, f"/ws/{room}", **options)


class Members:
    """Connections opened by one test, all closed at its end."""

    def __init__(self) -> None:
        self.open: list[ClientConnection] = []

    async def join(self, server: ServerProcess, room: str, **options) -> ClientConnection:
        ws = await join(server, room, **options)
        self.open.append(ws)
        return ws

    async def close_all(self) -> None:
        async with asyncio.timeout(30):
            await asyncio.gather(*(ws.close() for ws in self.open), return_exceptions=True)
        self.open.clear()


async def recv(ws: ClientConnection, timeout: float = 10.0) -> str | bytes:
    async with asyncio.timeout(timeout):
        return await ws.recv()


async def recv_n(ws: ClientConnection, n: int, timeout: float = 10.0) -> list[str | bytes]:
    """The next `n` messages; on the deadline, fails saying how many had arrived."""
    got: list[str | bytes] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < n:
                got.append(await ws.recv())
    except TimeoutError:
        raise AssertionError(f"received {len(got)} of {n} messages within {timeout}s") from None
    return got


class Collector:
    """Receives everything a connection gets, in the background, until stopped or closed."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.messages: list[str | bytes] = []
        self.closed: ConnectionClosed | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for message in self.ws:
                self.messages.append(message)
        except ConnectionClosed as exc:
            self.closed = exc

    async def stop(self) -> list[str | bytes]:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        return self.messages


async def stats(server: ServerProcess) -> dict:
    return await asyncio.to_thread(server.stats)


async def wait_stats(server: ServerProcess, until: Callable[[dict], bool], timeout: float = 10.0,
                     what: str = "condition") -> dict:
    """Poll /stats until `until(stats)` holds; on the deadline, fail showing the last stats."""
    deadline = time.monotonic() + timeout
    while True:
        current = await stats(server)
        if until(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"/stats: {what} not reached within {timeout}s; last: {current}")
        await asyncio.sleep(0.05)  # poll interval


async def idle_stats(server: ServerProcess, timeout: float = 15.0) -> dict:
    """/stats once every connection of earlier tests has been closed on the server's side too."""
    return await wait_stats(server, lambda s: s["connections"]["open"] == 0, timeout,
                            "connections.open == 0 (earlier tests' connections closed)")


def close_count(snapshot: dict, code: int) -> int:
    return snapshot["close_codes"].get(str(code), 0)


class RawClient:
    """A WebSocket client on a plain blocking socket, driven by websockets' sans-I/O protocol.

    It sends any frame (invalid UTF-8 included) and reads only when asked to, so it can be a
    member that never reads. Blocking calls: run them with `asyncio.to_thread`.
    """

    def __init__(self, server: ServerProcess, path: str, *, rcvbuf: int | None = None,
                 origin: str | None = None, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window scale is negotiated for it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.eof = False
        self.events: list[Response | Frame] = []  # received, not consumed yet
        self._parts: list[bytes] = []  # frames of a fragmented message
        self._opcode: Opcode | None = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect((server.host, server.port))
            self.protocol = ClientProtocol(parse_uri(server.ws_url + path), origin=origin, max_size=None)
            request = self.protocol.connect()
            if server.base_url in SESSION_COOKIES:
                request.headers["Cookie"] = SESSION_COOKIES[server.base_url]
            self.protocol.send_request(request)
            self.flush()
            self.response = self._handshake(time.monotonic() + timeout)
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, deadline: float) -> Response:
        while True:
            for index, event in enumerate(self.events):
                if isinstance(event, Response):
                    del self.events[:index + 1]
                    if self.protocol.handshake_exc is not None:
                        raise self.protocol.handshake_exc
                    return event
            if self.eof:
                raise ConnectionError(f"closed during the handshake: {self.protocol.handshake_exc}")
            self._pump_until(deadline)

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            try:
                if data:
                    self.sock.sendall(data)
                else:
                    self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return

    def _pump(self, timeout: float) -> bool:
        """One read from the socket, waiting at most `timeout`; False if nothing came."""
        if self.eof:
            return False
        self.sock.settimeout(max(0.001, timeout))
        try:
            data = self.sock.recv(262144)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.eof = True
            self.protocol.receive_eof()
        self.events.extend(self.protocol.events_received())
        self.flush()  # answers pings and close frames
        return True

    def _pump_until(self, deadline: float) -> None:
        if not self._pump(deadline - time.monotonic()) and not self.eof:
            raise AssertionError("no data from the server before the deadline")

    def send_text_bytes(self, payload: bytes) -> None:
        """A text frame with exactly these bytes, valid UTF-8 or not."""
        self.protocol.send_text(payload)
        self.flush()

    def read_messages(self, into: list[tuple[Opcode, bytes]], until: Callable[[], bool],
                      timeout: float) -> None:
        """Append each message received, as (opcode, payload), to `into` until `until()` holds
        (checked between reads), the connection ends, or the deadline fails the test."""
        deadline = time.monotonic() + timeout
        while not until():
            if not self.events:
                if self.eof:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{len(into)} messages read, then the deadline passed")
                self._pump(min(0.1, deadline - time.monotonic()))
                continue
            frame = self.events.pop(0)
            if isinstance(frame, Frame) and frame.opcode in DATA_OPCODES:
                if frame.opcode is not Opcode.CONT:
                    self._opcode = frame.opcode
                self._parts.append(frame.data)
                if frame.fin:
                    into.append((self._opcode, b"".join(self._parts)))
                    self._parts = []

    def recv_messages(self, n: int, timeout: float) -> list[tuple[Opcode, bytes]]:
        """The next `n` messages; fewer if the connection ends first."""
        got: list[tuple[Opcode, bytes]] = []
        self.read_messages(got, lambda: len(got) >= n, timeout)
        return got

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Read (and answer a close frame) until the server closes TCP, as RFC 6455 has clients do.

        Returns the server's close code, or None if it closed without a close frame.
        """
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._pump_until(deadline)
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd is not None else None

    def close(self) -> None:
        self.sock.close()
