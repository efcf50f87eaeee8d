"""The named ways to start a backend; the runner, the tests, `make ui` and the report share them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    name: str
    launcher: str  # module run with `python -m`
    env: dict[str, str] = field(default_factory=dict)
    processes: int = 1
    needs_redis: bool = False
    about: str = ""

    def command(self, host: str, port: int) -> list[str]:
        return [sys.executable, "-m", self.launcher, "--host", host, "--port", str(port)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("django", "django_chat.serve", about="Channels consumer on daphne, in-memory channel layer"),
        Target("fastapi", "fastapi_chat.serve", {"CHAT_FANOUT": "queued"},
               about="FastAPI receive loop on uvicorn, bounded per-member queues"),
        Target("fastapi-seed", "fastapi_chat.serve", {"CHAT_FANOUT": "seed"},
               about="FastAPI receive loop on uvicorn, the blog's sequential broadcast"),
    ]
}

LOCAL_TARGETS = ["django", "fastapi", "fastapi-seed"]
