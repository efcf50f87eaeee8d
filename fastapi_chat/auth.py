"""Django's session cookie resolved to a Django user, read from Django's own tables: the sign-in code
the FastAPI backend needs because FastAPI ships none (the seed's claim 7d). It only reads: Django's
`POST /login` creates the sessions, Django's `logout` and expiry end them.

What Django does (django.contrib.sessions, django.contrib.auth.get_user) and this repeats:
- the `sessionid` cookie names a row of `django_session`, valid until its `expire_date`;
- `session_data` is `django.core.signing.dumps(session, salt=SESSION_SALT, compress=True)`:
  `base64(json)` (zlib-compressed when prefixed with "."), `:timestamp`, `:signature`, the signature
  an HMAC-SHA256 keyed with SECRET_KEY;
- the session names the user (`_auth_user_id`), the auth backend, and `_auth_user_hash`, an HMAC of
  the user's password hash: a password change signs out every other session;
- the user must exist and be active.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fastapi_chat.db import again_if_dropped, sessions, users

SESSION_SALT = "django.contrib.sessions.SessionStore"  # SessionStore.key_salt
AUTH_HASH_SALT = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"  # Django's AUTHENTICATION_BACKENDS


@dataclass(frozen=True)
class User:
    id: int
    username: str


class Refused(Exception):
    """No user for this handshake; `cause` for /stats: anonymous, forged or expired."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


def salted_hmac(salt: str, value: str, secret: str) -> hmac.HMAC:
    """django.utils.crypto.salted_hmac with SHA-256."""
    key = hashlib.sha256((salt + secret).encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256)


def decode_session(session_data: str, secret: str) -> dict:
    """django.core.signing.loads(session_data, salt=SESSION_SALT); {} if it was not signed with `secret`
    (Django's SessionStore.decode answers a bad signature with an empty session too)."""
    signed, _, signature = session_data.rpartition(":")
    expected = base64.urlsafe_b64encode(salted_hmac(SESSION_SALT + "signer", signed, secret).digest()).rstrip(b"=")
    if not hmac.compare_digest(signature.encode(), expected):
        return {}
    payload = signed.rpartition(":")[0]  # the timestamp is not checked: the row's expire_date is
    compressed, payload = payload.startswith("."), payload.removeprefix(".")
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        session = json.loads(zlib.decompress(data) if compressed else data)
    except ValueError:  # binascii.Error, zlib.error and JSONDecodeError are ValueErrors
        return {}
    return session if isinstance(session, dict) else {}


async def session_user(engine: AsyncEngine, session_key: str | None, secret: str) -> User:
    """The signed-in user of this session cookie, or Refused."""
    if not session_key:
        raise Refused("anonymous")
    return await again_if_dropped(lambda: read_session_user(engine, session_key, secret))


async def read_session_user(engine: AsyncEngine, session_key: str, secret: str) -> User:
    async with engine.connect() as conn:
        row = (await conn.execute(select(sessions.c.session_data, sessions.c.expire_date)
                                  .where(sessions.c.session_key == session_key))).first()
        if row is None:
            raise Refused("forged")
        expire_date = row.expire_date if row.expire_date.tzinfo else row.expire_date.replace(tzinfo=UTC)  # SQLite
        if expire_date <= datetime.now(UTC):
            raise Refused("expired")
        session = decode_session(row.session_data, secret)
        user_id = str(session.get("_auth_user_id", ""))
        if session.get("_auth_user_backend") != MODEL_BACKEND or not user_id.isdigit():
            raise Refused("anonymous")  # signed out, or not a session of Django's login()
        user = (await conn.execute(select(users.c.username, users.c.password)
                                   .where(users.c.id == int(user_id), users.c.is_active))).first()
    if user is None or not hmac.compare_digest(
            str(session.get("_auth_user_hash", "")), salted_hmac(AUTH_HASH_SALT, user.password, secret).hexdigest()):
        raise Refused("anonymous")  # deactivated, deleted, or its password changed since
    return User(int(user_id), user.username)
