"""`python manage.py create_bench_users N`: N users, each signed in with a session, in seconds.

One `POST /login` per user would spend the bench's time in the password hasher (PBKDF2, slow on
purpose): here the password is hashed once and the hash shared by every bench user (test users
only), and their sessions are written in bulk through Django's own SessionStore encoding, exactly
what `login()` would have stored.
"""

import json
import sys
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string


class Command(BaseCommand):
    help = "Create N bench users with sessions; print (or write) their session keys as JSON."

    def add_arguments(self, parser):
        parser.add_argument("n", type=int)
        parser.add_argument("--prefix", default="bench", help="usernames are PREFIX-0 … PREFIX-(N-1)")
        parser.add_argument("--password", default="bench", help="every bench user's password (for /login)")
        parser.add_argument("--output", help="write the JSON here instead of stdout")

    def handle(self, n, prefix, password, output, **options):
        User = get_user_model()
        hashed = make_password(password)  # once, for all of them
        names = [f"{prefix}-{i}" for i in range(n)]
        expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        backend = settings.AUTHENTICATION_BACKENDS[0]
        store = SessionStore()
        with transaction.atomic():
            # From scratch: their messages go with them, and their old sessions no longer resolve.
            User.objects.filter(username__in=names).delete()
            users = User.objects.bulk_create(User(username=name, password=hashed) for name in names)
            if users and users[0].pk is None:  # a backend that does not return keys from bulk inserts
                users = list(User.objects.filter(username__in=names).order_by("id"))
            sessions = [
                Session(session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
                        session_data=store.encode({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backend,
                                                   HASH_SESSION_KEY: user.get_session_auth_hash()}),
                        expire_date=expire)
                for user in users
            ]
            Session.objects.bulk_create(sessions)
        pairs = zip(users, sessions, strict=True)
        result = {"cookie": settings.SESSION_COOKIE_NAME, "password": password,
                  "users": [{"username": u.username, "session": s.session_key} for u, s in pairs]}
        if output:
            with open(output, "w") as f:
                json.dump(result, f)
            self.stderr.write(f"{n} users and sessions written to {output}")
        else:
            json.dump(result, sys.stdout)
            sys.stdout.write("\n")
