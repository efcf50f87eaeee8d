"""Run the Django chat backend on daphne: `python -m django_chat.serve --host H --port P`.

It is daphne's own command line with the contract's message-size limit from settings
(daphne's default is 1 MiB) and the protocol fixes in daphne_fixes.py: close frames instead
of TCP aborts (1009 / 1007, not 1006), empty messages relayed, request paths kept whole; and,
unless CHAT_HARDENING=off, the limits against hostile clients (daphne_fixes.py, CONTRACT.md).
"""

import argparse
import os
import sys

from daphne import server as daphne_server
from daphne.cli import CommandLineInterface

from django_chat import daphne_fixes
from serving import process_limits


def daphne_args(host: str, port: int, max_message_bytes: int, keepalive: float, hardened: bool,
                tls: tuple[str, str] | None = None) -> list[str]:
    """daphne's command line. With `tls` (certificate chain, key) it listens on Twisted's TLS endpoint (pyOpenSSL),
    as daphne's docs show; there is no compression to set: daphne never negotiates permessage-deflate."""
    interface = host.replace(":", "\\:")  # a Twisted endpoint string escapes an IPv6 address's colons
    where = f"port={port}:interface={interface}"
    if hardened:
        where += f":backlog={daphne_fixes.ACCEPT_BACKLOG}"
    if tls:
        listen = ["-e", f"ssl:{where}:certKey={tls[0]}:privateKey={tls[1]}"]
    else:
        listen = ["-e", f"tcp:{where}"] if hardened else ["--bind", host, "--port", str(port)]
    return [
        *listen,
        "--ping-interval", str(int(keepalive)), "--ping-timeout", str(int(keepalive)),
        "--websocket-max-message-size", str(max_message_bytes),
        "--websocket-max-frame-size", str(max_message_bytes),
        "-v", "0",  # no access log: one line per connection on the hot path
        "django_chat.asgi:application",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
    import django
    from django.conf import settings

    if settings.CHAT_APP == "full":
        django.setup()
        from django_chat.chat.startup import check_database

        check_database()

    # daphne's Server builds its factories from these names
    daphne_server.WebSocketFactory = daphne_fixes.ContractWebSocketFactory
    if settings.CHAT_HARDENING:
        process_limits.return_freed_memory()
        daphne_server.WebSocketFactory = daphne_fixes.HardenedWebSocketFactory
        daphne_server.HTTPFactory = daphne_fixes.guard_connections(
            daphne_server.HTTPFactory, process_limits.connection_bound(settings.CHAT_MAX_CONNECTIONS),
            settings.CHAT_HANDSHAKE_TIMEOUT)
    argv = daphne_args(args.host, args.port, settings.CHAT_MAX_MESSAGE_BYTES, settings.CHAT_KEEPALIVE,
                       settings.CHAT_HARDENING,
                       (settings.CHAT_TLS_CERT, settings.CHAT_TLS_KEY) if settings.CHAT_TLS_CERT else None)
    print("daphne " + " ".join(argv), file=sys.stderr, flush=True)
    CommandLineInterface().run(argv)


if __name__ == "__main__":
    main()
