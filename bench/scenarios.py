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
    rate_steps: tuple[float, ...] = ()  # a step ramp: one step per rate
    slo_p95_ms: float | None = None

    def steps(self) -> list[Scenario]:
        """The runs this scenario is made of: itself, or one per ramp step."""
        return [replace(self, rate=r, rate_steps=()) for r in self.rate_steps] or [self]

    @property
    def offered_send_rate(self) -> float:
        return self.users * self.rate

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "about")}


def load(quick: bool = False, path: Path = SCENARIO_FILE) -> tuple[dict[str, Scenario], list[str]]:
    """Every scenario in the file (with `quick` overrides applied if asked) and the default suite."""
    data = tomllib.loads(path.read_text())
    known = {f.name for f in fields(Scenario)}
    scenarios = {}
    for name, table in data["scenario"].items():
        merged = {**data["defaults"], **table, **(table.get("quick", {}) if quick else {})}
        merged.pop("quick", None)
        unknown = set(merged) - known
        if unknown:
            raise ValueError(f"{path.name}: scenario {name!r} has unknown keys {sorted(unknown)}")
        if "rate_steps" in merged:
            merged["rate_steps"] = tuple(merged["rate_steps"])
        scenarios[name] = Scenario(name=name, **merged)
    return scenarios, list(data["suite"]["default"])
