"""Run the Django chat backend on uvicorn: `python -m django_chat.serve_uvicorn --host H --port P`.

The same ASGI application, settings and limits as django_chat.serve (daphne), on uvicorn set up
exactly as fastapi_chat/serve.py sets it up, so that `django` vs `django-uvicorn` separates the
server's cost from Channels'. Where stock uvicorn behaves differently from daphne: CONTRACT.md.
"""

import argparse
import os
import sys

from uvicorn.main import main as uvicorn_cli

from serving import uvicorn_fixes


def uvicorn_args(host: str, port: int, max_message_bytes: int, keepalive: float, protocols: list[str]) -> list[str]:
    return [
        "django_chat.asgi:application",
        "--host", host, "--port", str(port),
        "--loop", "uvloop", *protocols,  # httptools and websockets-sansio: hardened, or as uvicorn ships them
        "--ws-max-size", str(max_message_bytes),
        "--ws-ping-interval", str(keepalive), "--ws-ping-timeout", str(keepalive),
        "--ws-per-message-deflate", "false",  # daphne does not compress either
        "--no-access-log", "--log-level", "warning", "--lifespan", "off",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
    from django.conf import settings

    if settings.CHAT_HARDENING:
        uvicorn_fixes.configure(uvicorn_fixes.EdgeLimits(
            settings.CHAT_HANDSHAKE_TIMEOUT, settings.CHAT_MAX_CONNECTIONS, settings.CHAT_MAX_FRAGMENTS,
            settings.CHAT_MEMBER_BACKLOG_BYTES))
    argv = uvicorn_args(args.host, args.port, settings.CHAT_MAX_MESSAGE_BYTES, settings.CHAT_KEEPALIVE,
                        uvicorn_fixes.protocol_args(settings.CHAT_HARDENING))
    print("uvicorn " + " ".join(argv), file=sys.stderr, flush=True)
    uvicorn_cli(argv)


if __name__ == "__main__":
    main()
