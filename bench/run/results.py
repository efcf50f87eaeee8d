"""The results file: written after every run, so a crash or Ctrl-C keeps what was measured."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

FORMAT_VERSION = 1


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultsFile:
    def __init__(self, path: Path, environment: dict, argv: list[str]) -> None:
        self.path = path
        self.data = {
            "format_version": FORMAT_VERSION,
            "started": now(),
            "finished": None,
            "status": "running",
            "argv": argv,
            "environment": environment,
            "targets": {},
            "runs": [],
        }
        self.save()

    def add_target(self, name: str, description: dict) -> None:
        self.data["targets"][name] = description
        self.save()

    def add_run(self, run: dict) -> None:
        self.data["runs"].append(run)
        self.save()

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.data["finished"] = now()
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)
