"""Who each app target keeps out (claim 7d), checked against the running servers the bench measures:
a member with no session, a forged one, an expired one, and a valid one sent from a foreign page
(cross-site WebSocket hijacking) must each be refused before accept (HTTP 403, CONTRACT.md "App
mode"); a valid session from an allowed page must get in."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from bench.run.database import Database, manage

FOREIGN_ORIGIN = "https://evil.example"


def handshake(url: str, cookie: str | None = None, origin: str | None = None) -> int:
    """The HTTP status the server answered the WebSocket handshake with (101: accepted)."""
    headers = {"Cookie": cookie} if cookie else {}
    try:
        with connect(url, additional_headers=headers, origin=Origin(origin) if origin is not None else None,
                     open_timeout=10, proxy=None):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


def expire(db: Database, session_key: str) -> None:
    """Make one bench session expired, as Django would find it after SESSION_COOKIE_AGE."""
    query = "UPDATE django_session SET expire_date = '2000-01-01 00:00:00+00' WHERE session_key = "
    if db.engine == "sqlite":
        with closing(sqlite3.connect(db.url.removeprefix("sqlite:///"), timeout=10)) as conn, conn:
            conn.execute(query + "?", (session_key,))
        return
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as pg:
        pg.execute(query + "%s", (session_key,))


def check(base_url: str, db: Database) -> list[dict]:
    """Each check: what was tried, the status expected and the status got. Two users of its own, made
    with Django's manage.py: one signed in, one whose session it expires."""
    made = json.loads(manage(db.url, "create_bench_users", "2", "--prefix", f"security-{uuid.uuid4().hex[:6]}"))
    name, (valid, doomed) = made["cookie"], [u["session"] for u in made["users"]]
    expire(db, doomed)
    url = base_url.replace("http://", "ws://", 1) + f"/ws/security-{uuid.uuid4().hex[:8]}"
    tries = [
        ("signed in", f"{name}={valid}", None, 101),
        ("anonymous", None, None, 403),
        ("forged session", f"{name}={uuid.uuid4().hex}", None, 403),
        ("expired session", f"{name}={doomed}", None, 403),
        ("cross-origin, valid session", f"{name}={valid}", FOREIGN_ORIGIN, 403),
    ]
    return [{"check": what, "expected": expected, "got": handshake(url, cookie, origin)}
            for what, cookie, origin, expected in tries]
