"""A step asked to run at a searched capacity (`rate_at`, the ASGI_THREADS sweep) runs at that capacity, for
the same members and rooms, or not at all: never at its fallback `rate` recorded as if it were the capacity."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.record import Capacity, Results
from bench.run import targetrun
from bench.run.capacity_search import Outcome
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
                    passed=passed, held=passed is not None)


def test_the_sweep_runs_at_the_capacity_its_ramp_found():
    run, steps = sweep_on(ramp(2.0), ramp(3.5), ramp(3.0))  # searched three times: the report quotes the median
    assert len(steps) == 3
    for step in steps:
        step = run.at_capacity(step)
        assert step.rate == 3.0 and step.rate_at == "ramp" and run.cannot(step) == ""


def test_a_capacity_searched_three_times_is_three_searches_each_run_its_own_files(monkeypatch):
    """bench-full searches an ablation's capacities ABLATION_SEARCHES times: each search is recorded, and no run
    of a later one takes the name (and so the files) of an earlier one's at the same load."""
    edge = 3.0  # the fake server carries up to here
    names: list[tuple[str, int]] = []

    def run(self, scenario, step, overrides, repeat=0, profile_s=0):
        names.append((str(sorted(overrides.items())), repeat))
        return step.rate
    monkeypatch.setattr(TargetRun, "run", run)
    monkeypatch.setattr(targetrun, "outcome_of", lambda rate, slo: Outcome(passed=rate <= edge, p95_ms=100.0))
    results = SimpleNamespace(data=SimpleNamespace(capacities=[]))
    results.add_capacity = results.data.capacities.append
    scenarios, _ = load("")
    TargetRun(TARGETS["django"], plan=SimpleNamespace(server={0}), out=None, results=results, fault=None, backing=None,
              searches=3).run_all([scenarios["ramp"]], repeats=None)
    assert [c.target for c in results.data.capacities] == ["django"] * 3
    assert all(c.held and edge / 1.15 <= c.passed <= edge for c in results.data.capacities)
    assert len(names) == len(set(names)) > 3 * 2


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


def test_confirm_holds_an_earlier_benchs_capacity_when_told_to():
    """`--at-capacities`: the steps set at a searched capacity run at the one an earlier bench found."""
    earlier = SimpleNamespace(capacities=[ramp(3.5, target="django")])
    results = SimpleNamespace(data=SimpleNamespace(capacities=[ramp(2.0, target="django")]))
    scenarios, _ = load("full")
    confirm = scenarios["confirm"]
    assert (confirm.rate_at, confirm.window, confirm.slo_p95_ms) == ("ramp", 20.0, 250)
    here = TargetRun(TARGETS["django"], plan=None, out=None, results=results, fault=None, backing=None)
    there = TargetRun(TARGETS["django"], plan=None, out=None, results=results, fault=None, backing=None,
                      found_in=earlier)
    assert here.at_capacity(confirm).rate == 2.0 and there.at_capacity(confirm).rate == 3.5


@pytest.mark.parametrize("noisy, runs", [(True, [0, 1, 2]), (False, [0])])
def test_a_capacity_held_again_that_broke_on_a_slow_cpu_runs_once_more(monkeypatch, noisy: bool, runs: list[int]):
    """The search's rule for its probes and holds, for `confirm` too: a run that broke the capacity rule while the
    servers' CPU ran slow or was taken runs once more, under a name of its own, at most twice (a slow spell here
    lasted minutes); one on a machine running true does not."""
    data = Results.load(Path(__file__).parent / "data" / "results_bench_v5.json")
    failing = next(r for r in data.runs if r.params.slo_p95_ms).model_copy(deep=True)
    failing.params.rate_at, failing.rtt_ms.p95, failing.noise.noisy = "ramp", 900.0, noisy
    repeats: list[int] = []

    def run(self, scenario, step, overrides, repeat=0, profile_s=0):
        repeats.append(repeat)
        return failing
    monkeypatch.setattr(TargetRun, "run", run)
    scenarios, _ = load("full")
    data.capacities = [ramp(2.0, target="django")]
    TargetRun(TARGETS["django"], plan=None, out=None, results=SimpleNamespace(data=data), fault=None,
              backing=None).run_all(
        [scenarios["confirm"]], repeats=None)
    assert repeats == runs
