"""App mode's database work, done the way Channels' docs recommend: plain synchronous ORM calls,
each run through `database_sync_to_async`.

Why not the async ORM (`Message.objects.acreate`)? It runs the same synchronous code in the same
single thread (asgiref's thread-sensitive executor), so it is no faster; but it does not close
stale connections around each call as `database_sync_to_async` does (`close_old_connections`),
and outside Django's request cycle nothing else would: after the database restarts, a broken
connection would keep failing every store instead of being replaced on the next one.
"""

from __future__ import annotations

import time
from weakref import WeakSet

from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.db.backends.signals import connection_created
from django.utils import timezone

from django_chat.chat.models import Message
from django_chat.chat.stats import STATS

_wrappers: WeakSet = WeakSet()  # every DatabaseWrapper (one per thread) that has connected


def _track(sender, connection, **kwargs) -> None:
    _wrappers.add(connection)


connection_created.connect(_track)


def connections_open() -> int:
    """The /stats gauge: database connections this process holds open right now."""
    return sum(1 for wrapper in list(_wrappers) if wrapper.connection is not None)


@database_sync_to_async
def _insert(queued: float, room: str, author_id: int, is_text: bool, payload: bytes) -> int:
    started = time.perf_counter()
    STATS.stage("wait", started - queued)  # for the database thread (and close_old_connections' check)
    try:
        return Message.objects.create(room=room, author_id=author_id, is_text=is_text, payload=payload).pk
    finally:
        STATS.stage("db", time.perf_counter() - started)


async def store(room: str, author_id: int, text: str | None, data: bytes | None) -> int:
    """Store a message before it is fanned out; its id. Raises DatabaseError when it could not be."""
    started = time.perf_counter()
    STATS.storing += 1
    try:
        pk = await _insert(started, room, author_id, text is not None, text.encode() if text is not None else data)
    except Exception:  # DatabaseError: unreachable, locked, ...
        STATS.store_failures += 1
        raise
    finally:
        STATS.storing -= 1
        STATS.store_seconds += time.perf_counter() - started
    STATS.messages_stored += 1
    return pk


@database_sync_to_async
def recent(room: str, n: int) -> list[Message]:
    """The room's last `n` stored messages, oldest first."""
    newest = Message.objects.filter(room=room).order_by("-id")[:n]
    return list(reversed(newest))


@database_sync_to_async
def refusal_cause(session_key: str | None) -> str:
    """Why AuthMiddleware found no user, for /stats: only asked when a handshake is refused."""
    if not session_key:
        return "anonymous"
    expire_date = Session.objects.filter(session_key=session_key).values_list("expire_date", flat=True).first()
    if expire_date is None:
        return "forged"
    return "expired" if expire_date <= timezone.now() else "anonymous"  # signed out, inactive, ...
