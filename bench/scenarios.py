"""Scenario definitions from bench/scenarios.toml, as typed records."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

# A run under an SLO whose servers' mean CPU reaches this share of their cores fails it: no headroom left. Not
# 95%: on this machine a stack's CPU per delivery moves 10-15% within minutes at constant code (django 206-266 µs
# in six benches), and a load held at 92% of a core then failed a second hold at 96-99%. A scenario may set a
# ceiling of its own (the capacity search's is lower: scenarios.toml `ramp`); a record from before runs
# recorded their ceiling ran under this one.
CPU_CEILING_PCT = 85.0

SCENARIO_FILE = Path(__file__).with_name("scenarios.toml")
SLOW_READ_RATE = 512 * 1024  # bytes/s a slow reader reads unless told otherwise: a 4 Mbit/s link


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
    slow_readers: int = 0  # members per room that read, slowly (at read_rate), and never send
    read_rate: int = SLOW_READ_RATE  # bytes per second a slow reader reads
    burst: int = 0  # messages each member sends back-to-back: the moment its room is full, or every burst_every s
    burst_every: float = 0.0  # > 0: the bursts come mid-session, at the window's start and every this many s
    churn: int = 0  # members per room that leave and join again as new members, all through the run
    churn_stay: float = 1.0  # seconds each of their connections stays before it leaves
    spawn_rate: float = 0.0  # members connecting per second; 0: all at once
    fault: str = ""  # injected mid-window: "kill-server", or "redis-outage" (Redis targets only)
    history: int = 0  # app targets: each member asks for the room's last N stored messages as it joins
    search: int = 0  # > 0: search the capacity at slo_p95_ms in at most this many short runs (from `rate`), not steps
    hold: float = 0.0  # with search: the window, seconds, a load is held for before it counts as the capacity
    holds: int = 0  # with search: at most this many holds (each below the last that failed)
    restart: bool = False  # restart the target's servers right before the run: cold processes, no database connection
    asgi_threads: int | None = None  # daphne targets: ASGI_THREADS for the run's servers (0: unset, daphne's default)
    rate_at: str = ""  # a searched scenario: run at the capacity this target found there (skipped if none)
    cpu_ceiling_pct: float = CPU_CEILING_PCT  # with slo_p95_ms: the servers' mean CPU (% of cores) that fails a run

    def expand(self) -> list[tuple[dict, Scenario]]:
        """The runs this scenario is made of, each with what its step overrides: itself, or one per step."""
        return [(step, replace(self, steps=(), **step)) for step in self.steps] or [({}, self)]

    @property
    def senders(self) -> int:
        """Members that send: every one but the non-reading and slow-reading ones."""
        return self.users - self.users // self.room_size * (self.nonreading + self.slow_readers)

    @property
    def bursts(self) -> int:
        """Bursts each sender sends: one on connect, or one every burst_every s of the window."""
        if not self.burst:
            return 0
        return math.ceil(self.window / self.burst_every) if self.burst_every > 0 else 1

    @property
    def offered_send_rate(self) -> float:
        return self.senders * (self.rate + self.burst * self.bursts / self.window)

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "about", "steps")}


KINDS = ("local", "seed", "floor", "redis", "scale", "app", "browser", "tuned")  # bench/targets.py Target.kind


def load(variant: str = "", path: Path = SCENARIO_FILE) -> tuple[dict[str, Scenario], dict[str, list[str]]]:
    """Every scenario in the file (with its `quick` or `full` overrides for that variant), and the suite
    each kind of target runs in that variant ("", "quick" or "full")."""
    data = tomllib.loads(path.read_text())
    known = {f.name for f in fields(Scenario)}
    scenarios = {}
    for name, table in data["scenario"].items():
        merged = {**data["defaults"], **table, **(table.get(variant, {}) if variant else {})}
        merged.pop("quick", None)
        merged.pop("full", None)
        unknown = set(merged) - known
        if unknown:
            raise ValueError(f"{path.name}: scenario {name!r} has unknown keys {sorted(unknown)}")
        merged["steps"] = tuple(merged.get("steps", ()))
        scenarios[name] = scenario = Scenario(name=name, **merged)
        for _, step in scenario.expand():
            if step.users % step.room_size:
                raise ValueError(f"{path.name}: scenario {name!r}: {step.users} members do not fill rooms of "
                                 f"{step.room_size}; a room only starts when it is full")
            if step.nonreading + step.slow_readers + step.churn > step.room_size:
                raise ValueError(f"{path.name}: scenario {name!r}: nonreading + slow_readers + churn is more "
                                 f"than a room of {step.room_size}")
            if step.slow_readers and step.read_rate <= 0:
                raise ValueError(f"{path.name}: scenario {name!r}: slow_readers need a positive read_rate (bytes/s)")
            if step.churn and step.churn_stay <= 0:
                raise ValueError(f"{path.name}: scenario {name!r}: churn needs a positive churn_stay (seconds)")
    suite = data["suite"]
    return scenarios, {kind: list(suite.get(f"{variant}-{kind}" if variant else kind, [])) for kind in KINDS}
