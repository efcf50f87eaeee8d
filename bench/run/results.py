"""The results file: written after every run, so a crash or Ctrl-C keeps what was measured."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from bench.record import (
    Capacity,
    Code,
    Environment,
    Hostile,
    Reconnect,
    Repeated,
    Results,
    Run,
    SecurityCheck,
    TargetInfo,
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultsFile:
    """The run record of one bench invocation, saved whole (atomically) after every change."""

    def __init__(self, path: Path, environment: dict, argv: list[str]) -> None:
        self.path = path
        self.data = Results(started=now(), argv=argv, environment=Environment.model_validate(environment))
        self.save()

    @property
    def environment(self) -> Environment:
        return self.data.environment

    def set_code(self, code: Code) -> None:
        self.data.code = code
        self.save()

    def set_environment(self, **found: object) -> None:
        """What the bench found out about its environment after it started (its Redis, the harness)."""
        self.data.environment = self.data.environment.model_copy(update=found)
        self.save()

    def set_hostile(self, target: str, found: Hostile) -> None:
        self.data.hostile[target] = found
        self.save()

    def add_reconnect(self, found: Reconnect) -> None:
        self.data.reconnects.append(found)
        self.save()

    def add_target(self, name: str, description: TargetInfo) -> None:
        self.data.targets[name] = description
        self.save()

    def add_run(self, run: Run) -> None:
        self.data.runs.append(run)
        self.save()

    def add_capacity(self, capacity: Capacity) -> None:
        self.data.capacities.append(capacity)
        self.save()

    def add_security(self, checks: list[SecurityCheck]) -> None:
        self.data.security += checks
        self.save()

    def set_repeated(self, found: Repeated | None) -> None:
        self.data.repeated = found
        self.save()

    def finish(self, status: str) -> None:
        self.data.status = status
        self.data.finished = now()
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data.to_json(), indent=1))
        os.replace(tmp, self.path)
