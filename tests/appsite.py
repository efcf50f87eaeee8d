"""App mode's site for the tests: a migrated database (SQLite file or PostgreSQL), bench users signed in
through Django's own `create_bench_users`, and plain SQL to look at (and tamper with) its rows."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing

from bench.run.database import manage


class Site:
    """One migrated database and `n` users (password `bench`), each with a session key."""

    def __init__(self, url: str, n: int = 4):
        self.url = url
        manage(url, "migrate", "-v", "0")
        made = json.loads(manage(url, "create_bench_users", str(n), "--prefix", f"t{uuid.uuid4().hex[:8]}"))
        self.password = made["password"]
        self.users = [u["username"] for u in made["users"]]
        self.sessions = [u["session"] for u in made["users"]]

    def sql(self, query: str, *params) -> list[tuple]:
        """Run one statement (`?` placeholders) and commit; the rows it returned."""
        if self.url.startswith("sqlite:"):
            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=10)) as conn, conn:
                return conn.execute(query, params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def user_id(self, username: str) -> int:
        return self.sql("SELECT id FROM auth_user WHERE username = ?", username)[0][0]

    def rows(self, room: str) -> list[tuple[int, bool, bytes]]:
        """A room's stored messages in the order they were stored: (author id, is_text, payload)."""
        return [(author, bool(is_text), bytes(payload)) for author, is_text, payload in self.sql(
            "SELECT author_id, is_text, payload FROM chat_message WHERE room = ? ORDER BY id", room)]
