"""The database the app targets chat on (CONTRACT.md, "App mode"): the bench's own PostgreSQL when
the distribution's binaries are here (its CPU then counts in the servers' cost, as the bench's Redis
does), else CHAT_DATABASE_URL if it names a PostgreSQL, else an SQLite file in the run's folder.
Each is migrated and given signed-in bench users through Django's own manage.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from bench import ROOT
from bench.run.pgctl import HOW_TO_GET_IT, PostgresCluster, bin_dir, external_url

if TYPE_CHECKING:  # imported where used at run time: only app mode needs the driver
    import psycopg

    from bench.targets import Target


@dataclass
class Database:
    url: str
    engine: str  # "postgresql" or "sqlite"
    note: str
    cluster: PostgresCluster | None = None  # the bench's own, when it started one

    @property
    def pid(self) -> int | None:
        return self.cluster.process.pid if self.cluster and self.cluster.process else None

    def cpu_seconds(self) -> float:
        """CPU seconds of the bench's own PostgreSQL so far, its exited backends included (0 otherwise)."""
        if self.pid is None:
            return 0.0
        try:
            root = psutil.Process(self.pid)
            t = root.cpu_times()
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return 0.0
        total = t.user + t.system + t.children_user + t.children_system  # reaped backends too
        for child in children:
            try:
                c = child.cpu_times()
            except psutil.NoSuchProcess:  # a backend that exited since: its time is in the next reading's reaped
                continue
            total += c.user + c.system
        return total

    def connections(self) -> int | None:
        """Client connections open to the chat database now (PostgreSQL's pg_stat_activity)."""
        if self.engine != "postgresql":
            return None
        import psycopg

        with psycopg.connect(self.url, autocommit=True, application_name=BENCH_APP) as conn:
            return sum(_by_state(conn).values())

    def statements(self) -> dict[str, list[float]] | None:
        """The statements the chat database ran so far (pg_stat_statements), by what they do (STATEMENT_KINDS):
        {kind: [calls, milliseconds executing]}; None when it cannot say (SQLite, no extension)."""
        if self.engine != "postgresql" or (self.cluster and not self.cluster.statements):
            return None
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True, application_name=BENCH_APP) as conn:
                rows = conn.execute("SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE dbid = "
                                    "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
        except psycopg.Error:  # no pg_stat_statements (an external PostgreSQL), or the database went away
            return None
        found: dict[str, list[float]] = {}
        for query, calls, ms in rows:
            if kind := statement_kind(query):
                found.setdefault(kind, [0, 0.0])
                found[kind][0] += calls
                found[kind][1] += ms
        return found

    def stored(self, room_prefix: str) -> set[bytes]:
        """The payloads of every message stored in the rooms whose names start with `room_prefix`."""
        query = "SELECT payload FROM chat_message WHERE room LIKE %s"
        if self.engine == "postgresql":
            import psycopg

            with psycopg.connect(self.url, autocommit=True, application_name=BENCH_APP) as conn:
                rows = conn.execute(query, (room_prefix + "%",)).fetchall()
        else:
            import sqlite3

            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"))) as conn:
                rows = conn.execute(query.replace("%s", "?"), (room_prefix + "%",)).fetchall()
        return {bytes(payload) for (payload,) in rows}

    def activity(self) -> Activity | None:
        """A probe of the connections by state, to call while a run goes (PostgreSQL only)."""
        return Activity(self.url) if self.engine == "postgresql" else None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.remove()


BENCH_APP = "chat-bench"  # the application_name of the bench's own connections, which it does not count


# what a statement does, by the tables it names (Django's ORM quotes them, SQLAlchemy does not); storing counts
# the foreign-key check PostgreSQL runs for each message's author; "other": Django's connection check
# (SELECT 1 before each call), and each connection's setup
STATEMENT_KINDS = (("storing", ("insert into chat_message", "for key share")),
                   ("sign-in", ("django_session", "auth_user")), ("history", ("chat_message",)))


def statement_kind(query: str) -> str | None:
    """"sign-in", "storing", "history" or "other"; None for the bench's own look at the statistics."""
    q = query.lower().replace('"', "")
    if "pg_stat_" in q:
        return None
    return next((kind for kind, names in STATEMENT_KINDS if any(n in q for n in names)), "other")


def _by_state(conn) -> dict[str, int]:
    rows = conn.execute("SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND backend_type = 'client backend' "
                        "AND application_name <> %s GROUP BY 1", (BENCH_APP,)).fetchall()
    return {state: int(n) for state, n in rows}


class Activity:
    """pg_stat_activity's count for the chat database by state (active, idle, idle in transaction...),
    read through one connection of its own (not counted), opened on first use; None when it cannot say."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def __call__(self) -> dict[str, int] | None:
        import psycopg

        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.url, autocommit=True, application_name=BENCH_APP, connect_timeout=2)
            return _by_state(self.conn)
        except psycopg.Error:  # the database is the servers' to lose; the run is measured all the same
            self.close()
            return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def postgres(cpus: set[int] | None = None) -> Database | None:
    """The bench's own PostgreSQL, else the one CHAT_DATABASE_URL names, else None."""
    binaries = bin_dir()
    if binaries is not None:
        cluster = PostgresCluster(binaries).start(cpus=cpus)
        uncounted = f"; its statements are not counted: {cluster.no_statements}" if cluster.no_statements else ""
        return Database(cluster.url, "postgresql", f"the bench's own PostgreSQL ({binaries.parent.name}) at "
                        f"127.0.0.1:{cluster.port}, on the servers' CPUs{uncounted}", cluster)
    if url := external_url():
        return Database(url, "postgresql", f"external PostgreSQL at {url}: its CPU is not in the servers' cost")
    return None


def sqlite(folder: Path, name: str) -> Database:
    path = folder / f"{name}.sqlite3"
    return Database(f"sqlite:///{path}", "sqlite", f"SQLite file {path}")


NO_POSTGRES = "no PostgreSQL, so the app targets that want one run on SQLite. " + HOW_TO_GET_IT


def manage(url: str, *args: str) -> str:
    """`python manage.py ARGS` on the database `url` (Django's own commands); its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHAT_APP", "CHAT_DATABASE_URL")}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "CHAT_DATABASE_URL": url})
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed on {url}:\n{done.stderr[-2000:]}")
    return done.stdout


def prepare(db: Database, users: int, sessions: Path) -> Path:
    """Migrate, then `users` bench users each signed in; their sessions are written to `sessions` (JSON)."""
    manage(db.url, "migrate", "-v", "0")
    manage(db.url, "create_bench_users", str(users), "--output", str(sessions))
    json.loads(sessions.read_text())  # fails here, not in every Locust process, if it is not what we expect
    return sessions


@contextmanager
def for_storm(target: Target, members: int, folder: Path) -> Iterator[tuple[Database | None, list[str | None]]]:
    """What a storm's `members` need on `target`. On an app target: a fresh database (the bench's own PostgreSQL
    when it can start one, else an SQLite file in `folder`; stopped after) and each member's Cookie header, signed
    in as a browser is. On a relay target: no database, and no cookie (None each)."""
    if not target.database:
        yield None, [None] * members
        return
    db = (postgres() if target.database == "postgresql" else None) or sqlite(folder, target.name)
    try:
        made = json.loads(prepare(db, members, folder / "sessions.json").read_text())
        yield db, [f"{made['cookie']}={user['session']}" for user in made["users"]]
    finally:
        db.stop()
