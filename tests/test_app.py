"""App mode (CONTRACT.md, "App mode") on both backends, on SQLite and on PostgreSQL, on real servers:
Django's sign-in, the same intruders kept out, every message stored as sent, history, database faults."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.run import serverproc
from bench.targets import TARGETS
from tests.appsite import Site
from tests.clients import open_path, recv, recv_n, stats, wait_stats
from tests.postgres import postgres_for_tests

pytestmark = [pytest.mark.server, pytest.mark.asyncio]

# fastapi-app-tuned changes the store path, so it holds this suite too; django-app-tuned changes only how a
# delivery is dispatched, which the conformance suite holds it to (tests/servers.py APP_CONFORMING)
BACKENDS = ["django-app", "fastapi-app", "fastapi-app-tuned"]


class AppServers:
    def __init__(self, kind: str, site: Site, servers: dict, cluster):
        self.kind, self.site, self.servers, self.cluster = kind, site, servers, cluster


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One database (a fresh SQLite file, or PostgreSQL: tests/postgres.py), migrated, with bench users,
    and both app backends on it."""
    tmp = tmp_path_factory.mktemp(f"app-{request.param}")
    cluster = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'chat.sqlite3'}"
    else:
        cluster, url = postgres_for_tests()
    servers: dict = {}
    try:
        site = Site(url)
        for name in BACKENDS:
            servers[name] = serverproc.start(TARGETS[name], tmp / name, env={"CHAT_DATABASE_URL": url})[0]
        yield AppServers(request.param, site, servers, cluster)
    finally:
        for proc in servers.values():
            proc.stop()
        if cluster is not None:
            cluster.remove()


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, app: AppServers):
    return app.servers[request.param]


def cookie(session_key: str) -> dict:
    return {"additional_headers": {"Cookie": f"sessionid={session_key}"}}


async def member(server, room: str, session_key: str, query: str = "", **options):
    return await open_path(server, f"/ws/{room}{query}", **cookie(session_key), **options)


async def refused(server, path: str, **options) -> int | None:
    """The HTTP status a refused handshake got; None if it was accepted."""
    try:
        ws = await open_path(server, path, **options)
    except InvalidStatus as refusal:
        return refusal.response.status_code
    await ws.close()
    return None


def post_login(server, body: bytes, content_type: str) -> tuple[int, dict, str | None]:
    """POST /login: status, JSON body, the sessionid cookie set."""
    request = urllib.request.Request(server.base_url + "/login", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, data, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, data, headers = error.code, error.read(), error.headers
    cookies = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith("sessionid=")]
    return status, json.loads(data), cookies[0].split(";")[0].split("=", 1)[1] if cookies else None


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    import uuid

    return f"{request.node.originalname[5:35]}-{uuid.uuid4().hex[:10]}".replace("_", "-")


async def test_login_cookie_works_on_both_backends(app: AppServers, room: str):
    django = app.servers["django-app"]
    user = app.site.users[0]
    status, body, key = await asyncio.to_thread(
        post_login, django, json.dumps({"username": user, "password": app.site.password}).encode(), "application/json")
    assert (status, body) == (200, {"username": user}) and key
    form = urllib.parse.urlencode({"username": user, "password": app.site.password}).encode()
    assert (await asyncio.to_thread(post_login, django, form, "application/x-www-form-urlencoded"))[0] == 200
    bad = {"username": user, "password": "wrong"}
    assert await asyncio.to_thread(post_login, django, json.dumps(bad).encode(), "application/json") == (
        401, {"error": "invalid username or password"}, None)
    assert (await asyncio.to_thread(post_login, django, b"{", "application/json"))[:2] == (
        400, {"error": "the body is not valid JSON"})
    assert (await asyncio.to_thread(post_login, django, b"username=x", "application/x-www-form-urlencoded"))[:2] == (
        400, {"error": "username and password are required"})
    for name in BACKENDS:
        ws = await member(app.servers[name], room, key)
        await ws.send(f"signed in on {name}")
        assert await recv(ws) == f"signed in on {name}"
        await ws.close()
    me = app.site.user_id(user)
    assert app.site.rows(room) == [(me, True, f"signed in on {name}".encode()) for name in BACKENDS]


async def test_intruders_refused_403_before_accept(app: AppServers, server, room: str):
    site = app.site
    expired = site.sessions[3]
    site.sql("UPDATE django_session SET expire_date = ? WHERE session_key = ?",
             "2000-01-01 00:00:00" if app.kind == "sqlite" else "2000-01-01T00:00:00Z", expired)
    before = (await stats(server))["app"]["handshakes_refused"]
    path = f"/ws/{room}"
    assert await refused(server, path) == 403  # anonymous
    assert await refused(server, path, **cookie("forged0forged0forged0forged0forg")) == 403
    assert await refused(server, path, **cookie(expired)) == 403
    assert await refused(server, path, origin="https://evil.example", **cookie(site.sessions[0])) == 403
    assert await refused(server, path, origin="http://localhost:8000", **cookie(site.sessions[0])) is None
    after = (await stats(server))["app"]["handshakes_refused"]
    assert {k: after[k] - before[k] for k in after} == {
        "anonymous": 1, "forged": 1, "expired": 1, "origin": 1, "database": 0}


MESSAGES = ["plain", "", "héllo ✓", b"", b"\x00\xff\xfe binary", "x" * 70_000, b"\x80" * 3]


async def test_stored_rows_equal_what_was_sent(app: AppServers, server, room: str):
    site = app.site
    a = await member(server, room, site.sessions[0])
    b = await member(server, room, site.sessions[1])
    before = (await stats(server))["app"]
    for i, message in enumerate(MESSAGES):  # interleaved senders: per-sender order is what is promised
        await a.send(message)
        await b.send(message[::-1] if i % 2 else message)
    sent_b = [m[::-1] if i % 2 else m for i, m in enumerate(MESSAGES)]
    for ws in (a, b):
        got = await recv_n(ws, 2 * len(MESSAGES))
        assert [m for m in got if m in MESSAGES] and sorted(map(repr, got)) == sorted(map(repr, MESSAGES + sent_b))
    await a.close()
    await b.close()
    rows = site.rows(room)
    as_row = lambda author, m: (author, isinstance(m, str), m.encode() if isinstance(m, str) else m)  # noqa: E731
    ida, idb = site.user_id(site.users[0]), site.user_id(site.users[1])
    assert [r for r in rows if r[0] == ida] == [as_row(ida, m) for m in MESSAGES]
    assert [r for r in rows if r[0] == idb] == [as_row(idb, m) for m in sent_b]
    assert len(rows) == 2 * len(MESSAGES)
    after = (await stats(server))["app"]
    assert after["messages_stored"] - before["messages_stored"] == 2 * len(MESSAGES)
    assert after["store_failures"] == before["store_failures"] and after["store_seconds"] > before["store_seconds"]
    assert after["database"] == app.kind and after["mode"] == "full" and after["db_connections_open"] >= 1


async def test_history_oldest_first_verbatim_then_live(app: AppServers, server, room: str):
    sessions = app.site.sessions
    a = await member(server, room, sessions[0])
    for message in MESSAGES:
        await a.send(message)
    await recv_n(a, len(MESSAGES))
    late = await member(server, room, sessions[1], "?history=3")
    assert await recv(late) == json.dumps({"history": 3})  # then exactly 3 stored messages, then live
    assert await recv_n(late, 3) == MESSAGES[-3:]
    await a.send("live")
    assert await recv(late) == "live"
    everything = await member(server, room, sessions[2], "?history=1000")
    assert await recv_n(everything, 1 + len(MESSAGES) + 1) == [
        json.dumps({"history": len(MESSAGES) + 1}), *MESSAGES, "live"]
    none = await member(server, room, sessions[2], "?history=0")
    await a.send(b"after")
    assert await recv_n(none, 2) == ['{"history": 0}', b"after"]
    for bad in ("?history=-1", "?history=x", "?history=1001"):
        assert await refused(server, f"/ws/{room}{bad}", **cookie(sessions[2])) == 403
    for ws in (a, late, everything, none):
        await ws.close()


async def test_history_and_live_meet_exactly_under_traffic(app: AppServers, server, room: str):
    """A member joining mid-stream gets every message once, in order: each is in its history or live."""
    sender = await member(server, room, app.site.sessions[0])
    total = 300
    echoes = asyncio.create_task(recv_n(sender, total, timeout=60))

    async def send_all():
        for i in range(total):
            await sender.send(str(i))
            if i % 10 == 9:
                await asyncio.sleep(0.002)  # a steady stream, not one burst

    sending = asyncio.create_task(send_all())
    await asyncio.sleep(0.05)
    late = await member(server, room, app.site.sessions[1], "?history=1000")
    header = json.loads(await recv(late))
    assert await recv_n(late, total, timeout=60) == [str(i) for i in range(total)], f"header {header}"
    await sending
    assert len(await echoes) == total
    with pytest.raises(TimeoutError):
        await recv(late, timeout=0.3)  # and nothing twice
    for ws in (sender, late):
        await ws.close()


async def assert_store_fails_then_recovers(server, site: Site, room: str, outage) -> None:
    """`outage()` makes storing fail (an async context manager); the sender is closed with 4503, nobody
    receives the message, it is counted, and once the outage ends the room chats and stores again."""
    a = await member(server, room, site.sessions[0])
    b = await member(server, room, site.sessions[1])
    await a.send("before")
    assert await recv(a) == "before" and await recv(b) == "before"
    before = await stats(server)
    async with outage():
        await a.send("during")
        with pytest.raises(ConnectionClosed) as closed:
            await recv(a, timeout=20)
        assert closed.value.rcvd.code == 4503
        with pytest.raises(TimeoutError):
            await recv(b, timeout=0.5)  # not fanned out
        after = await wait_stats(server, lambda s: s["close_codes"].get("4503", 0) > before["close_codes"].get(
            "4503", 0), what="the 4503 close counted")
        assert after["app"]["store_failures"] == before["app"]["store_failures"] + 1
    for _ in range(100):  # recovery: a new member gets in and its message is stored and delivered
        try:
            c = await member(server, room, site.sessions[2])
            break
        except InvalidStatus:
            await asyncio.sleep(0.1)  # poll interval while the database comes back
    await c.send("after")
    assert await recv(c) == "after" and await recv(b) == "after"
    for ws in (b, c):
        await ws.close()
    assert [payload for _, _, payload in site.rows(room)] == [b"before", b"after"]


@pytest.mark.parametrize("server", BACKENDS, indirect=True)  # above `app`: ids stay database-backend
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)  # SQLite has no server to stop: the next test
async def test_database_down_mid_chat(app: AppServers, server, room: str):
    if app.cluster is None:
        pytest.skip("PostgreSQL from CHAT_DATABASE_URL: the tests cannot stop it")

    class Stopped:
        async def __aenter__(self):
            await asyncio.to_thread(app.cluster.stop)
            status = await refused(server, f"/ws/{room}", **cookie(app.site.sessions[2]))
            assert status == 403, "a handshake while the database is down"
            assert (await stats(server))["app"]["handshakes_refused"]["database"] >= 1

        async def __aexit__(self, *exc):
            await asyncio.to_thread(app.cluster.start)

    await assert_store_fails_then_recovers(server, app.site, room, Stopped)


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
async def test_database_restarted_between_messages_loses_nothing(app: AppServers, server, room: str):
    """PostgreSQL restarts while the room is quiet: every pooled connection it had is gone. The next message is
    stored and delivered and the next member gets in, each at its first try (Django checks a connection before
    each use, stock FastAPI pings it, the lean store finds it dead and tries once more on a new one)."""
    if app.cluster is None:
        pytest.skip("PostgreSQL from CHAT_DATABASE_URL: the tests cannot restart it")
    a = await member(server, room, app.site.sessions[0])
    await a.send("before")
    assert await recv(a) == "before"
    await asyncio.to_thread(app.cluster.stop)
    await asyncio.to_thread(app.cluster.start)
    await a.send("after")
    assert await recv(a) == "after"
    b = await member(server, room, app.site.sessions[1])
    for ws in (a, b):
        await ws.close()
    assert [payload for _, _, payload in app.site.rows(room)] == [b"before", b"after"]


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)  # SQLite's lock: the test before stops PostgreSQL
async def test_database_locked_mid_chat(app: AppServers, server, room: str):
    class Locked:  # another writer holds SQLite's lock longer than the servers wait for it (5 s)
        async def __aenter__(self):
            self.conn = sqlite3.connect(app.site.url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")

        async def __aexit__(self, *exc):
            self.conn.rollback()
            self.conn.close()

    await assert_store_fails_then_recovers(server, app.site, room, Locked)


@pytest.mark.parametrize("name", BACKENDS)
async def test_unmigrated_database_fails_at_start_naming_the_fix(name: str, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with pytest.raises(serverproc.ServerFailed) as failed:
        await asyncio.to_thread(serverproc.start, TARGETS[name], tmp_path / "logs", env={"CHAT_DATABASE_URL": url})
    assert "the database is not migrated" in str(failed.value) and "run: python manage.py migrate" in str(failed.value)
