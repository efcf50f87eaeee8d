"""As browsers connect (CONTRACT.md): the bench's browser-like client against each server as it ships
(permessage-deflate offered as Chromium offers it), and both servers terminating wss:// themselves."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from bench import scenarios
from bench.load.framing import BINARY, TEXT
from bench.load.wsclient import Manner, WSClient, connect
from bench.run import certs, serverproc
from bench.run.machine import CpuPlan
from bench.run.runner import run_step
from bench.targets import TARGETS

pytestmark = pytest.mark.server

# what each server agrees to when a browser offers permessage-deflate, as it ships (uvicorn: windows of 12 bits)
AGREED = {"django": "none", "fastapi": "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"}
CHAT_TEXT = b'{"user": "ada", "room": "general", "text": "see you at the standup in five minutes"}'


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory):
    """start(target, **env): that target's one server process, started once per module and configuration."""
    running: dict[tuple, serverproc.ServerProcess] = {}

    def start(name: str, **env: str) -> serverproc.ServerProcess:
        key = (name, *sorted(env.items()))
        if key not in running:
            (running[key],) = serverproc.start(TARGETS[name], tmp_path_factory.mktemp(name), env=env)
        return running[key]
    yield start
    for proc in running.values():
        proc.stop()


def manner(name: str) -> Manner:
    target = TARGETS[name]
    return Manner(target.browser, certs.for_this_run().client_context if target.tls else None)


def relayed(server: serverproc.ServerProcess, room: str, payloads: list[tuple[int, bytes]], how: Manner) -> list:
    """Two members of `room`: what the second receives of what the first sends, whole (keep_payload)."""
    a, b = (connect(f"{server.ws_url}/ws/{room}", manner=how, keep_payload=True, recv_timeout=10) for _ in range(2))
    try:
        for op, payload in payloads:
            (a.send_binary if op == BINARY else a.send_text)(payload)
        got: list = []
        while len(got) < len(payloads):
            got += [(op, data) for op, _, data in b.recv_batch() if op in (TEXT, BINARY)]
        assert a.deflate == b.deflate or str(a.deflate.agreed) == str(b.deflate.agreed)
        return [got, a]
    finally:
        for client in (a, b):
            client.close()


MESSAGES = [(TEXT, CHAT_TEXT), (TEXT, CHAT_TEXT * 3), (BINARY, os.urandom(3000)),  # incompressible
            (TEXT, base64.b64encode(os.urandom(600))), (TEXT, b"")]


@pytest.mark.parametrize("stack", ["django", "fastapi"])
def test_a_browser_gets_deflate_from_uvicorn_and_not_from_daphne_and_every_message_arrives_whole(started, stack):
    name = f"{stack}-deflate"
    got, client = relayed(started(name), "deflate", MESSAGES, manner(name))
    assert got == MESSAGES
    agreed: WSClient = client
    assert (str(agreed.deflate.agreed) if agreed.deflate else "none") == AGREED[stack]


@pytest.mark.parametrize("name,env", [("django-wss", {}), ("django-wss", {"CHAT_HARDENING": "off"}),
                                      ("fastapi-wss", {}), ("fastapi-wss", {"CHAT_HARDENING": "off"}),
                                      ("django-browser", {}), ("fastapi-browser", {})],
                         ids=["daphne", "daphne-stock", "uvicorn", "uvicorn-stock", "daphne-browser",
                              "uvicorn-browser"])
def test_a_wss_chat_round_trip_on_each_server(started, name, env):
    server = started(name, **env)
    assert server.ws_url.startswith("wss://") and server.stats()["connections"]["open"] == 0  # /stats over https too
    got, client = relayed(server, "tls", MESSAGES, manner(name))
    assert got == MESSAGES and client.tls is not None


def test_a_certificate_from_another_ca_is_refused(started, tmp_path: Path):
    server = started("fastapi-wss")
    stranger = certs.make(tmp_path)  # a CA of its own: the client trusts it, the server's certificate is not from it
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(f"{server.ws_url}/ws/tls", manner=Manner(tls=stranger.client_context))


@pytest.mark.parametrize("stack", ["django", "fastapi"])
def test_the_run_record_says_what_was_negotiated_and_what_went_on_the_wire(tmp_path, stack):
    """A bench run of the browser-like target: each member's agreement counted, the ledger closed, and the bytes
    the members read per delivery measured (compressed and encrypted as they came)."""
    scenario = replace(scenarios.load()[0]["smoke"], warmup=0.5, window=2.0, drain=0.5)
    target = TARGETS[f"{stack}-browser"]
    servers = serverproc.start(target, tmp_path)
    try:
        cpus = frozenset(sorted(os.sched_getaffinity(0))[:1])
        run = run_step(scenario, servers, CpuPlan(server=cpus, client=cpus), tmp_path, f"{stack}-browser")
    finally:
        for server in servers:
            server.stop()
    assert run.ok, run.failure
    assert run.negotiated == {AGREED[stack]: scenario.users}, run.negotiated
    assert run.ledger.unexplained == 0 and run.ledger.delivered == run.ledger.expected > 0, run.ledger
    assert run.wire_bytes_per_delivery and run.wire_bytes_per_delivery > 0, run.wire_bytes_per_delivery


def test_plaintext_read_before_a_broken_tls_record_is_kept_and_the_error_comes_next():
    """A close frame and a fatal TLS error in one read: the frame is still read (it decides the close code the
    member records), then the error is raised."""
    import socket
    import threading

    import trustme

    from bench.load.tls import Tls

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ours, theirs = socket.socketpair()
    served: list[ssl.SSLSocket] = []
    serving = threading.Thread(target=lambda: served.append(server_context.wrap_socket(theirs, server_side=True)))
    serving.start()
    tls = Tls(client_context, "127.0.0.1")
    tls.handshake(ours)
    serving.join(5)
    served[0].sendall(b"before")
    os.write(served[0].fileno(), b"\x17\x03\x03\x00\x20" + b"\x00" * 32)  # a record that fails to decrypt
    ours.settimeout(5)
    plaintext, read = b"", b""
    while plaintext != b"before":
        read = ours.recv(65536)
        plaintext += tls.decrypt(read)
    with pytest.raises(ssl.SSLError):
        tls.decrypt(b"" if read.endswith(b"\x00" * 32) else ours.recv(65536))
    served[0].close()
    ours.close()
