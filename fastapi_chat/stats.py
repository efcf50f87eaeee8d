"""This process's /stats counters (serving/stats.py), with what only the FastAPI stack knows: its server,
its configuration, and its rooms (kept by the fan-out)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import fastapi

from fastapi_chat import config
from serving.stats import ChatStats, Identity


@dataclass
class FastAPIStats(ChatStats):
    rooms: int = 0

    def reading(self, backlog: int, database: str | None = None, db_connections: int = 0,
                workers: int = 0) -> dict[str, Any]:
        identity = Identity(
            backend="fastapi", server=f"{config.SERVER} {version(config.SERVER)} (fastapi {fastapi.__version__})",
            fanout=config.FANOUT, layer="redis" if config.REDIS_URL else "memory",
            config={"max_message_bytes": config.MAX_MESSAGE_BYTES, "member_backlog": config.MEMBER_BACKLOG,
                    "member_backlog_bytes": config.MEMBER_BACKLOG_BYTES,
                    "allowed_origins": config.ALLOWED_ORIGINS},
            mode=config.APP, wait_for="a pooled connection (SQLAlchemy's asyncio engine)" if config.STORE == "stock"
            else "a pooled connection, not checked first (SQLAlchemy's asyncio engine, autocommit)")
        return self.as_json(identity, self.rooms, backlog, database, db_connections, workers)


STATS = FastAPIStats()
