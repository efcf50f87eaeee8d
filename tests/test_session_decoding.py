"""fastapi_chat/auth.py reads what Django writes: checked here against Django's own code, in process."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")

import django  # noqa: E402

django.setup()

from types import SimpleNamespace  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.auth.base_user import AbstractBaseUser  # noqa: E402

# The database backend's SessionStore needs the sessions app installed (these tests run in relay mode); its
# encoding is SessionBase's, salted with the class name, which every backend's SessionStore shares.
from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402

from fastapi_chat import auth  # noqa: E402

SECRET = settings.SECRET_KEY


def test_decodes_what_django_signs_compressed_or_not():
    login = {SESSION_KEY: "7", BACKEND_SESSION_KEY: auth.MODEL_BACKEND, HASH_SESSION_KEY: "h" * 64}
    long = {**login, "cart": ["item"] * 200}  # Django compresses this one (the "." prefix)
    assert SessionStore().encode(long).startswith(".")
    for session in (login, long, {}):
        assert auth.decode_session(SessionStore().encode(session), SECRET) == session


def test_refuses_other_keys_and_tampering():
    encoded = SessionStore().encode({SESSION_KEY: "1"})
    assert auth.decode_session(encoded, "another-secret") == {}
    forged = SessionStore().encode({SESSION_KEY: "2"}).split(":")[0] + ":" + encoded.split(":", 1)[1]
    assert auth.decode_session(forged, SECRET) == {}
    assert auth.decode_session("garbage", SECRET) == {}


def test_auth_hash_is_djangos():
    user = SimpleNamespace(password="pbkdf2_sha256$1000000$salt$c2FsdGVkIGhhc2g=")  # the field, as stored
    django_hash = AbstractBaseUser._get_session_auth_hash(user)  # what get_session_auth_hash() returns
    assert auth.salted_hmac(auth.AUTH_HASH_SALT, user.password, SECRET).hexdigest() == django_hash
