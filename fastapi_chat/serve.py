"""Run the FastAPI chat backend on uvicorn: `python -m fastapi_chat.serve --host H --port P`.

It is uvicorn's own command line, set up as uvicorn's docs recommend for production
(uvloop, httptools, no access log) and with the contract's message-size limit, on uvicorn's
protocols with the limits against hostile clients that stock uvicorn lacks (uvicorn_fixes.py; CHAT_HARDENING=off:
uvicorn's own protocols).
"""

import argparse
import asyncio
import sys

from uvicorn.main import main as uvicorn_cli

from fastapi_chat import config
from serving import uvicorn_fixes


def uvicorn_args(host: str, port: int, max_message_bytes: int, keepalive: float, protocols: list[str]) -> list[str]:
    return [
        "fastapi_chat.app:create_app", "--factory",
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
    if config.APP == "full":
        from fastapi_chat.db import check

        asyncio.run(check(config.DATABASE_URL))  # fails here, in one line, rather than at the first member
    if config.HARDENING:
        uvicorn_fixes.configure(uvicorn_fixes.EdgeLimits(config.HANDSHAKE_TIMEOUT, config.MAX_CONNECTIONS,
                                                         config.MAX_FRAGMENTS, config.BACKLOG_BYTES_BOUND))
    argv = uvicorn_args(args.host, args.port, config.MAX_MESSAGE_BYTES, config.KEEPALIVE,
                        uvicorn_fixes.protocol_args(config.HARDENING))
    print("uvicorn " + " ".join(argv), file=sys.stderr, flush=True)
    uvicorn_cli(argv)


if __name__ == "__main__":
    main()
