"""Scenario definitions from bench/scenarios.toml, as typed records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

SCENARIO_FILE = Path(__file__).with_name("scenarios.toml")


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    room_size: int
    users: int
    rate: float
    kind: str
    size: int
    warmup: float
    window: float
    drain: float
    repeats: int
    steps: tuple[dict, ...] = ()  # one run per entry, each overriding some fields (a ramp, a sweep)
    slo_p95_ms: float | None = None  # a ramp stops at the first step over it
    nonreading: int = 0  # members per room that never read (and never send)
    burst: int = 0  # messages each member sends back-to-back the moment its room is full
    spawn_rate: float = 0.0  # members connecting per second; 0: all at once
    fault: str = ""  # injected mid-window: "kill-server", or "redis-outage" (Redis targets only)

    def expand(self) -> list[tuple[dict, Scenario]]:
        """The runs this scenario is made of, each with what its step overrides: itself, or one per step."""
        return [(step, replace(self, steps=(), **step)) for step in self.steps] or [({}, self)]

    @property
    def offered_send_rate(self) -> float:
        return self.users * self.rate + (self.users * self.burst / self.window if self.burst else 0.0)

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "about", "steps")}


def load(quick: bool = False, path: Path = SCENARIO_FILE) -> tuple[dict[str, Scenario], list[str], list[str]]:
    """Every scenario in the file (with `quick` overrides applied if asked), and the suites to run
    on in-memory targets and on Redis targets."""
    data = tomllib.loads(path.read_text())
    known = {f.name for f in fields(Scenario)}
    scenarios = {}
    for name, table in data["scenario"].items():
        merged = {**data["defaults"], **table, **(table.get("quick", {}) if quick else {})}
        merged.pop("quick", None)
        unknown = set(merged) - known
        if unknown:
            raise ValueError(f"{path.name}: scenario {name!r} has unknown keys {sorted(unknown)}")
        merged["steps"] = tuple(merged.get("steps", ()))
        scenarios[name] = scenario = Scenario(name=name, **merged)
        for _, step in scenario.expand():
            if step.users % step.room_size:
                raise ValueError(f"{path.name}: scenario {name!r}: {step.users} members do not fill rooms of "
                                 f"{step.room_size}; a room only starts when it is full")
    suite = data["suite"]
    return scenarios, list(suite["quick" if quick else "default"]), list(suite["quick-redis" if quick else "redis"])
