"""App mode's database: Django's tables (its migrations own them), declared here as SQLAlchemy Core
tables with only the columns this backend uses, through SQLAlchemy 2's asyncio engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
    insert,
    select,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from fastapi_chat.stats import STATS

T = TypeVar("T")
metadata = MetaData()
sessions = Table(  # django.contrib.sessions.models.Session
    "django_session", metadata,
    Column("session_key", String(40), primary_key=True),
    Column("session_data", Text),
    Column("expire_date", DateTime(timezone=True)),
)
users = Table(  # django.contrib.auth.models.User
    "auth_user", metadata,
    Column("id", Integer, primary_key=True),
    Column("password", String(128)),
    Column("username", String(150)),
    Column("is_active", Boolean),
)
messages = Table(  # django_chat.chat.models.Message; `created` is the database's default
    "chat_message", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("room", String(64)),
    Column("author_id", Integer),
    Column("is_text", Boolean),
    Column("payload", LargeBinary),
)
# What a database that is down, locked or gone raises through SQLAlchemy and the drivers under it.
DATABASE_ERRORS = (SQLAlchemyError, OSError)

MAX_OVERFLOW = 10  # SQLAlchemy's default, over the pool's size (CHAT_DB_POOL_SIZE, SQLAlchemy's 5 by default)

DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgres": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg",
           "pgsql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """CHAT_DATABASE_URL as dj-database-url reads it, with the asyncio driver for SQLAlchemy."""
    scheme, rest = url.split(":", 1)
    if scheme not in DRIVERS:
        raise SystemExit(f"CHAT_DATABASE_URL must be sqlite:// or postgres://, not {scheme}://")
    return DRIVERS[scheme] + ":" + rest


def create_engine(url: str, lean: bool = False, pool_size: int = 5) -> AsyncEngine:
    """Pooled connections, each checked before use (pool_pre_ping, as Django's CONN_HEALTH_CHECKS):
    after the database restarts, the next message is stored rather than failed on a dead connection.
    `lean` (CHAT_STORE=lean, the tuned target): no check, and autocommit, so a store is its INSERT alone,
    one round trip where the check, BEGIN, INSERT and COMMIT were four; a connection the database closed
    is found by its first failure instead, and the work is done once more (`again_if_dropped`)."""
    sqlite = urlsplit(url).scheme == "sqlite"
    engine = create_async_engine(async_url(url), pool_pre_ping=not lean, pool_size=pool_size,
                                 max_overflow=MAX_OVERFLOW, connect_args={"timeout": 5} if sqlite else {},  # Django's
                                 **({"isolation_level": "AUTOCOMMIT"} if lean else {}))
    if sqlite:
        @event.listens_for(engine.sync_engine, "connect")
        def _wal(dbapi_connection, record):  # as Django's init_command: readers never block the writer
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
    return engine


def connections_open(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool), pool  # pool_size gives a QueuePool on both drivers (create_engine)
    return pool.checkedin() + pool.checkedout()


async def again_if_dropped(work: Callable[[], Awaitable[T]]) -> T:
    """`work()`, and once more if it failed on a connection the database had closed (a restart): SQLAlchemy
    then drops every connection of the pool from before, so the second try gets a new one. A connection closed
    before `work` began ran none of it; one lost midway may have stored its row, and the second try stores it
    again: a window stock's ping narrows (to between the ping and the INSERT) but does not close either."""
    try:
        return await work()
    except DBAPIError as e:
        if not e.connection_invalidated:
            raise
        return await work()


async def store(engine: AsyncEngine, room: str, author_id: int, text: str | None, data: bytes | None) -> int:
    """Store a message before it is fanned out; its id. Raises one of DATABASE_ERRORS if it could not be."""
    started = time.perf_counter()
    STATS.storing += 1

    async def insert_row() -> Any:
        tried = time.perf_counter()  # each attempt's own wait: a retried store's stages still fit its whole
        async with engine.connect() as conn:  # a pooled connection (checked first, unless lean)
            connected = time.perf_counter()
            STATS.stage("wait", connected - tried)
            try:
                result = await conn.execute(insert(messages).values(
                    room=room, author_id=author_id, is_text=text is not None,
                    payload=text.encode() if text is not None else data))
                await conn.commit()  # lean: autocommit, and this sends nothing
            finally:
                STATS.stage("db", time.perf_counter() - connected)
        return result

    try:
        result = await again_if_dropped(insert_row)
    except DATABASE_ERRORS:
        STATS.store_failures += 1
        raise
    finally:
        STATS.storing -= 1
        STATS.store_seconds += time.perf_counter() - started
    STATS.messages_stored += 1
    key = result.inserted_primary_key
    assert key is not None  # an insert's result always has it
    return key[0]


async def recent(engine: AsyncEngine, room: str, n: int) -> list[tuple[int, bool, bytes]]:
    """The room's last `n` stored messages, oldest first: (id, is_text, payload)."""
    query = (select(messages.c.id, messages.c.is_text, messages.c.payload)
             .where(messages.c.room == room).order_by(messages.c.id.desc()).limit(n))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [tuple(row) for row in reversed(rows)]


async def check(url: str) -> None:
    """At start: the driver is there, the database answers, Django has migrated it. One line otherwise."""
    try:
        engine = create_engine(url)
    except ModuleNotFoundError as e:
        raise SystemExit(f"CHAT_DATABASE_URL needs the {e.name} driver: run: pip install {e.name}")
    try:
        async with engine.connect() as conn:
            for table in (sessions, users, messages):
                await conn.execute(select(*table.c).limit(0))
    except DATABASE_ERRORS as e:
        missing = "no such table" in str(e) or "does not exist" in str(e)
        raise SystemExit("the database is not migrated: run: python manage.py migrate" if missing
                         else f"cannot use the database CHAT_DATABASE_URL names: {str(e).splitlines()[0]}")
    finally:
        await engine.dispose()
