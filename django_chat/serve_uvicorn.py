"""Run the Django chat backend on uvicorn: `python -m django_chat.serve_uvicorn --host H --port P`.

The same ASGI application, settings and limits as django_chat.serve (daphne), on uvicorn set up exactly as
fastapi_chat/serve.py sets it up (serving/uvicorn_fixes.py `serve`), so that `django` vs `django-uvicorn`
separates the server's cost from Channels'. Where stock uvicorn behaves differently from daphne: CONTRACT.md.
"""

import argparse
import os

from serving import uvicorn_fixes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
    from django.conf import settings

    limits = uvicorn_fixes.EdgeLimits(
        settings.CHAT_HANDSHAKE_TIMEOUT, settings.CHAT_MAX_CONNECTIONS, settings.CHAT_MAX_FRAGMENTS,
        settings.CHAT_MEMBER_BACKLOG_BYTES, settings.CHAT_MAX_PENDING_HANDSHAKES) if settings.CHAT_HARDENING else None
    wire = uvicorn_fixes.Wire.of(settings.CHAT_COMPRESSION, settings.CHAT_TLS_CERT, settings.CHAT_TLS_KEY)
    uvicorn_fixes.serve("django_chat.asgi:application", args.host, args.port, settings.CHAT_MAX_MESSAGE_BYTES,
                        settings.CHAT_KEEPALIVE, limits, wire=wire)


if __name__ == "__main__":
    main()
