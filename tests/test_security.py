"""The bench's own check of who each app target keeps out (claim 7d), against real servers."""

from __future__ import annotations

import pytest

from bench.run import serverproc
from bench.run.database import prepare, sqlite
from bench.run.security import check
from bench.targets import TARGETS

pytestmark = pytest.mark.server


@pytest.mark.parametrize("target", ["django-app", "fastapi-app"])
def test_every_intruder_is_refused_before_accept_and_a_member_gets_in(target, tmp_path):
    db = sqlite(tmp_path, target)
    prepare(db, 1, tmp_path / "sessions.json")
    (server,) = serverproc.start(TARGETS[target], tmp_path / "logs", env={"CHAT_DATABASE_URL": db.url})
    try:
        found = {c["check"]: (c["expected"], c["got"]) for c in check(server.base_url, db)}
    finally:
        server.stop()
    assert found == {"signed in": (101, 101), "anonymous": (403, 403), "forged session": (403, 403),
                     "expired session": (403, 403), "cross-origin, valid session": (403, 403)}


def test_a_relay_target_would_fail_the_checks(tmp_path):
    # the check can fail: a server that lets everyone in answers 101 where 403 is expected
    db = sqlite(tmp_path, "relay")
    prepare(db, 1, tmp_path / "sessions.json")
    (server,) = serverproc.start(TARGETS["fastapi"], tmp_path / "logs")
    try:
        got = {c["check"]: c["got"] for c in check(server.base_url, db)}
    finally:
        server.stop()
    assert got["anonymous"] == 101 and got["forged session"] == 101
