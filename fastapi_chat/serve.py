"""Run the FastAPI chat backend: `python -m fastapi_chat.serve --host H --port P`.

On uvicorn (the default) set up as uvicorn's docs recommend for production (uvloop, httptools, no access log) and
with the contract's message-size limit, on uvicorn's protocols with the limits against hostile clients that stock
uvicorn lacks (serving/uvicorn_fixes.py `serve`, shared with django_chat.serve_uvicorn; CHAT_HARDENING=off:
uvicorn's own protocols). CHAT_SERVER=granian: the same app on granian as its docs serve an ASGI app (one worker,
uvloop), none of those limits (granian has no settings for them). The app is built by its factory
(fastapi_chat.app `create_app`).
"""

import argparse
import asyncio
from pathlib import Path

from fastapi_chat import config
from serving import uvicorn_fixes

APP = "fastapi_chat.app:create_app"


def serve_granian(host: str, port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(APP, address=host, port=port, interface=Interfaces.ASGI, factory=True, workers=1, loop=Loops.uvloop,
            websockets=True, log_access=False, ssl_cert=Path(config.TLS_CERT) if config.TLS_CERT else None,
            ssl_key=Path(config.TLS_KEY) if config.TLS_KEY else None).serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if config.APP == "full":
        from fastapi_chat.db import check

        asyncio.run(check(config.DATABASE_URL))  # fails here, in one line, rather than at the first member
    if config.SERVER == "granian":
        serve_granian(args.host, args.port)
        return
    limits = uvicorn_fixes.EdgeLimits(config.HANDSHAKE_TIMEOUT, config.MAX_CONNECTIONS, config.MAX_FRAGMENTS,
                                      config.BACKLOG_BYTES_BOUND, config.MAX_PENDING_HANDSHAKES) \
        if config.HARDENING else None
    wire = uvicorn_fixes.Wire.of(config.COMPRESSION, config.TLS_CERT, config.TLS_KEY)
    uvicorn_fixes.serve(APP, args.host, args.port, config.MAX_MESSAGE_BYTES, config.KEEPALIVE, limits, factory=True,
                        wire=wire)


if __name__ == "__main__":
    main()
