"""A step asked to run at a searched capacity (`rate_at`, the ASGI_THREADS sweep) runs at that capacity, for
the same members and rooms, or not at all: never at its fallback `rate` recorded as if it were the capacity."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.record import Capacity
from bench.run.targetrun import TargetRun
from bench.scenarios import load
from bench.targets import TARGETS


def sweep_on(*capacities: Capacity) -> tuple[TargetRun, list]:
    """django-app with these searches done, and the bench's own sweep's steps (bench/scenarios.toml)."""
    results = SimpleNamespace(data=SimpleNamespace(capacities=list(capacities)))
    run = TargetRun(TARGETS["django-app"], plan=None, out=None, results=results, fault=None, backing=None)
    scenarios, _ = load("full")
    return run, [step for _, step in scenarios["threads"].expand()]


def ramp(passed: float | None, target: str = "django-app", users: int = 200, room_size: int = 10) -> Capacity:
    return Capacity(target=target, scenario="ramp", users=users, room_size=room_size, slo_p95_ms=250.0,
                    passed=passed)


def test_the_sweep_runs_at_the_capacity_its_ramp_found():
    run, steps = sweep_on(ramp(2.0), ramp(3.5))
    assert len(steps) == 3
    for step in steps:
        step = run.at_capacity(step)
        assert step.rate == 3.5 and step.rate_at == "ramp" and run.cannot(step) == ""


@pytest.mark.parametrize("capacities, why", [
    ((), "no searched capacity in ramp"),
    ((ramp(None),), "no searched capacity in ramp"),  # the search found no passing rate
    ((ramp(3.5, target="fastapi-app"),), "no searched capacity in ramp"),
    ((ramp(3.5, users=100),), "ramp's capacity is for 100 members in rooms of 10, not 200 in rooms of 10"),
    ((ramp(3.5, room_size=5),), "ramp's capacity is for 200 members in rooms of 5"),
])
def test_without_a_capacity_for_the_same_rooms_the_sweep_is_refused(capacities, why):
    run, steps = sweep_on(*capacities)
    for step in steps:
        assert why in run.cannot(run.at_capacity(step))
