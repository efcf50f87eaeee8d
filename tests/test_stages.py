"""Where a stored message's time goes, on both app backends (/stats `app.stages`, `storing`,
`loop_lag`): every stored message is timed once in each stage, and the parts never exceed the whole."""

from __future__ import annotations

import asyncio

import pytest

from bench.run import serverproc
from bench.run.database import sqlite
from bench.targets import TARGETS
from tests.appsite import Site
from tests.clients import open_path, recv_n, stats, wait_stats

pytestmark = [pytest.mark.server, pytest.mark.asyncio]


@pytest.fixture(scope="module", params=["django-app", "fastapi-app"])
def app(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    db = sqlite(tmp, request.param)
    site = Site(db.url, n=2)
    (server,) = serverproc.start(TARGETS[request.param], tmp / "logs", env={"CHAT_DATABASE_URL": db.url})
    yield server, site
    server.stop()


async def test_every_stored_message_is_timed_in_each_stage_and_the_parts_fit_the_whole(app):
    server, site = app
    before = (await stats(server))["app"]
    members = [await open_path(server, "/ws/stages", additional_headers={"Cookie": f"sessionid={key}"})
               for key in site.sessions]
    try:
        sends = 20
        await asyncio.gather(*(ws.send(f"{i}:{n}") for i, ws in enumerate(members) for n in range(sends)))
        for ws in members:
            await recv_n(ws, sends * len(members))
    finally:
        await asyncio.gather(*(ws.close() for ws in members))
    after = (await wait_stats(server, lambda s: s["app"]["loop_lag"]["count"] > 0, what="the loop lag measured"))["app"]
    stored = after["messages_stored"] - before["messages_stored"]
    assert stored == sends * len(members)
    wait, db = ({k: after["stages"][stage][k] - before["stages"][stage][k] for k in ("seconds", "count")}
                for stage in ("wait", "db"))
    assert wait["count"] == db["count"] == stored, (wait, db, stored)
    whole = after["store_seconds"] - before["store_seconds"]
    assert 0 < wait["seconds"] + db["seconds"] <= whole, (wait, db, whole)
    assert after["storing"] == 0 and after["workers"] >= 1 and after["wait_for"]
    assert after["loop_lag"]["seconds"] >= 0 and after["loop_lag"]["max"] >= 0
