"""The capacity search (bench/run/capacity_search.py): against fakes of known capacity, then against a
real server throttled to a known deliveries/s."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.record import (
    ClientCost,
    Ledger,
    Noise,
    Params,
    Percentiles,
    Results,
    Run,
    ServerCost,
    claimed_cores,
    physical,
    slo_failures,
)
from bench.run import serverproc
from bench.run.capacity_search import (
    CLIENT_CPU,
    LOSS,
    P95,
    RUN_FAILED,
    SERVER_CPU,
    Bracket,
    Outcome,
    Probe,
    aim,
    cpu_aim,
    deliveries_per_s,
    grown,
    outcome_of,
    search,
    start_rate_from_cost,
)
from bench.scenarios import load as load_scenarios
from bench.targets import Target
from tests.paced_load import paced_load

PASS, FAIL = Outcome(True), Outcome(False, (P95,))


def capacity(c: float, calls: list[float] | None = None):
    """A fake `measure`: every rate up to `c` passes."""
    def measure(rate: float) -> Outcome:
        if calls is not None:
            calls.append(rate)
        return PASS if rate <= c else FAIL
    return measure


def holds(bracket: Bracket, c: float, tolerance: float = 0.10) -> None:
    assert bracket.passed <= c < bracket.failed, bracket
    assert (bracket.failed - bracket.passed) / bracket.passed <= tolerance
    assert bracket.failed <= c * (1 + tolerance) and bracket.passed >= c / (1 + tolerance)
    assert bracket.converged and (bracket.held if bracket.holding else bracket.confirmed)


@pytest.mark.parametrize("c", [0.7, 3.3, 20.0, 47.0, 150.0])
@pytest.mark.parametrize("start", [1.0, 5.0])
def test_the_bracket_holds_a_known_capacity_within_ten_percent(c: float, start: float):
    calls: list[float] = []
    bracket = search(capacity(c, calls), start, max_rate=1000, min_rate=0.01, max_steps=20)
    holds(bracket, c)
    assert calls == [p.rate for p in bracket.probes]
    doublings = math.ceil(abs(math.log2(c / start)))
    assert len(calls) <= doublings + 1 + 4 + 1  # ×2 to the first fail, 4 bisections from ×2 to 10%, 1 repeat


def test_an_estimate_from_the_cost_just_measured_grows_past_doubling_and_saves_probes():
    plain, hinted = [], []
    holds(search(capacity(150.0, plain), 1.0, max_rate=1000, min_rate=0.01, max_steps=20), 150.0)
    # a pass at a low load overstates the cost, so its estimate falls short: here 80% of the capacity
    found = search(capacity(150.0, hinted), 1.0, max_rate=1000, min_rate=0.01, max_steps=20,
                   estimate=lambda rate, outcome: 120.0)
    holds(found, 150.0)
    assert [p.rate for p in found.probes][:2] == [1.0, 120.0]
    assert len(hinted) < len(plain) - 3, (hinted, plain)
    # an estimate that saturates the servers short of ×2 grows only past it: ×1.25 it, at least ×1.25 the pass
    near = search(capacity(150.0), 1.0, max_rate=1000, min_rate=0.01, max_steps=20,
                  estimate=lambda rate, outcome: 1.2 * rate)
    assert [p.rate for p in near.probes][:2] == [1.0, 1.5]
    assert grown(10.0, 2.0, 12.0) == 15.0 and grown(10.0, 2.0, 4.0) == 12.5 and grown(10.0, 2.0, 30.0) == 30.0
    assert grown(10.0, 4.0, None) == 40.0


def test_an_estimate_a_pass_has_outrun_is_no_ceiling():
    """uvicorn's cost per delivery falls as its load grows: each estimate from it falls short of the next
    pass. Once a pass outruns the estimate before it, growth is at least ×2, not ×1.25 past each estimate,
    which left fastapi's edge unbracketed after `make bench`'s 4 probes on a slow machine ("at least 13.1")."""
    pessimistic = lambda rate, outcome: 1.2 * rate  # noqa: E731
    found = search(capacity(150.0), 1.0, max_rate=1000, min_rate=0.01, max_steps=4, estimate=pessimistic)
    assert [p.rate for p in found.probes][:3] == [1.0, 1.5, 3.0]  # 1.5 passed past 1.2: ×2 (p95 unknown here)
    assert grown(10.0, 4.0, 12.0, outran=True) == 20.0 and grown(10.0, 4.0, 50.0, outran=True) == 50.0


def test_a_start_far_above_the_capacity_shrinks_to_the_estimate_in_one_step():
    found = search(capacity(0.2), 1.0, max_rate=1000, min_rate=0.01, max_steps=20,
                   estimate=lambda rate, outcome: 0.22)
    holds(found, 0.2)
    assert [p.rate for p in found.probes][:2] == [1.0, 0.22]


def test_the_passing_edge_is_measured_twice_and_the_search_stops_there():
    bracket = search(capacity(20.0), 8.0, max_rate=1000, min_rate=0.1, max_steps=20)
    last = bracket.probes[-1]
    assert last.role == "confirm" and last.rate == bracket.passed
    assert [p.rate for p in bracket.probes].count(bracket.passed) == 2
    assert [p.role for p in bracket.probes][:3] == ["grow"] * 3  # 8 and 16 pass, 32 fails: then bisect
    assert {p.role for p in bracket.probes[3:-1]} == {"bisect"}


def test_a_pass_that_does_not_hold_on_repeat_becomes_the_fail_edge():
    """A lucky pass at the edge: its repeat fails, so the search bisects below it and confirms again."""
    seen: dict[float, int] = {}
    lucky = {}

    def measure(rate: float) -> Outcome:
        seen[rate] = seen.get(rate, 0) + 1
        if rate <= 20.0:
            return PASS
        if rate <= 22.0 and not lucky:  # the first run just above the capacity passes by luck
            lucky[rate] = True
            return PASS
        return FAIL

    bracket = search(measure, 8.0, max_rate=1000, min_rate=0.1, max_steps=20)
    (fluke,) = lucky
    confirms = [p for p in bracket.probes if p.role == "confirm"]
    assert confirms[0].rate == fluke and not confirms[0].outcome.passed
    holds(bracket, 20.0)


def test_noise_near_the_edge_still_brackets_the_capacity():
    """Within ±3% of the capacity a run passes or fails by chance; the bracket still holds it to ±10%."""
    for seed in range(30):
        rng = random.Random(seed)

        def measure(rate: float, rng=rng) -> Outcome:
            if abs(rate / 50.0 - 1) <= 0.03:
                return PASS if rng.random() < 0.5 else FAIL
            return PASS if rate < 50.0 else FAIL

        bracket = search(measure, 3.0, max_rate=1000, min_rate=0.1, max_steps=20)
        assert bracket.converged, (seed, bracket)
        assert 50.0 / 1.1 <= bracket.passed <= 50.0 * 1.03 and 50.0 * 0.97 <= bracket.failed <= 50.0 * 1.1


def hockey_stick(c: float, slo: float, rng: random.Random, sigma: float):
    """A fake `measure` whose p95 climbs as the load⁶ and crosses `slo` at `c`, each run off by ×e^N(0, σ)."""
    def measure(rate: float) -> Outcome:
        p95 = (2.0 + (slo - 2.0) * (rate / c) ** 6) * math.exp(rng.gauss(0.0, sigma))
        return Outcome(p95 <= slo, () if p95 <= slo else (P95,), p95_ms=p95)
    return measure


def simulate(slo_p95_ms: float | None, sigma: float, max_steps: int = 11) -> tuple[float, float, float]:
    """Searches for seven capacities × 60 seeds, as the bench runs them (start 1, a cost estimate that falls
    short far below the edge): the share that converged, the share whose bracket holds the capacity to
    ±10%, and the mean runs taken."""
    converged, held, runs, n = 0, 0, 0, 0
    for c in (0.08, 0.92, 1.3, 25.0, 30.0, 60.0, 150.0):
        for seed in range(60):
            bracket = search(hockey_stick(c, 250.0, random.Random(seed), sigma), 1.0, max_rate=4096,
                             min_rate=1 / 64, max_steps=max_steps, slo_p95_ms=slo_p95_ms,
                             estimate=lambda rate, outcome, c=c: rate * 3 if rate < c / 4 else None)
            n, runs, converged = n + 1, runs + len(bracket.probes), converged + bracket.converged
            held += bracket.converged and c / 1.1 <= bracket.passed and bracket.failed <= c * 1.1
    return converged / n, held / n, runs / n


def test_aiming_at_where_the_p95_crosses_the_slo_takes_fewer_runs_than_bisecting():
    """The numbers bench/run/capacity_search.py's docstring quotes: without the SLO the search is plain
    ×2-and-bisect; with it, it grows ×4 far below the SLO and aims its narrowing."""
    aimed, bisected = simulate(250.0, 0.0), simulate(None, 0.0)
    assert aimed[:2] == bisected[:2] == (1.0, 1.0)
    assert aimed[2] < bisected[2] - 1.0, (aimed, bisected)
    aimed, bisected = simulate(250.0, 0.3), simulate(None, 0.3)
    assert aimed[0] >= 0.9 and aimed[1] >= 0.8 and aimed[1] > bisected[1] + 0.1, (aimed, bisected)
    assert aimed[2] < bisected[2] - 0.5, (aimed, bisected)
    # as the docstring says (seeded: a change to the search changes them, and the docstring with them)
    assert [round(aimed[1], 2), round(aimed[2], 1), round(bisected[1], 2), round(bisected[2], 1)] == \
        [0.81, 8.2, 0.68, 8.8]
    assert simulate(250.0, 0.3, max_steps=9)[0] > simulate(None, 0.3, max_steps=9)[0] + 0.15


def test_the_aim_stays_inside_the_middle_of_the_bracket():
    """A p95 just over the SLO at the fail edge would aim at the edge itself; the aim keeps to 20–80%."""
    bracket = Bracket(10.0, 20.0, 0.1, [Probe(10.0, Outcome(True, p95_ms=100.0), "grow"),
                                        Probe(20.0, Outcome(False, (P95,), p95_ms=251.0), "grow")])
    assert aim(bracket, 250.0) == pytest.approx(10.0 * 2 ** 0.8)
    bracket.probes[-1] = Probe(20.0, Outcome(False, (P95,), p95_ms=250_000.0), "grow")
    assert aim(bracket, 250.0) == pytest.approx(10.0 * 2 ** 0.2)
    bracket.probes[-1] = Probe(20.0, Outcome(False, (LOSS,)), "grow")  # no p95 to aim by: the midpoint
    assert aim(bracket, 250.0) == pytest.approx(math.sqrt(200.0))
    bracket.probes[-1] = Probe(20.0, Outcome(False, (LOSS,), p95_ms=200.0), "grow")  # failed on loss alone
    assert aim(bracket, 250.0) == pytest.approx(math.sqrt(200.0))
    assert aim(bracket, None) == pytest.approx(math.sqrt(200.0))


def test_a_start_above_the_capacity_grows_downwards():
    bracket = search(capacity(3.0), 100.0, max_rate=1000, min_rate=0.1, max_steps=20)
    assert [p.rate for p in bracket.probes][:6] == [100.0, 50.0, 25.0, 12.5, 6.25, 3.12]
    assert {p.role for p in bracket.probes[1:5]} == {"shrink"}
    holds(bracket, 3.0)


def test_nothing_passing_down_to_the_floor_says_below():
    bracket = search(capacity(0.01), 4.0, max_rate=100, min_rate=1.0, max_steps=20)
    assert bracket.passed is None and bracket.failed == 1.0
    assert [p.rate for p in bracket.probes] == [4.0, 2.0, 1.0]
    assert bracket.verdict().startswith("below 1 ")


def test_nothing_failing_up_to_the_ceiling_says_at_least():
    bracket = search(capacity(1e9), 4.0, max_rate=50, min_rate=1.0, max_steps=20)
    assert bracket.passed == 50 and bracket.failed is None and bracket.confirmed and not bracket.converged
    assert [p.rate for p in bracket.probes] == [4.0, 8.0, 16.0, 32.0, 50.0, 50.0]
    assert bracket.verdict().startswith("at least 50 ")


def test_a_search_out_of_steps_says_so():
    bracket = search(capacity(20.0), 1.0, max_rate=1000, min_rate=0.1, max_steps=6)
    assert len(bracket.probes) == 6 and not bracket.converged
    assert "ran out of steps" in bracket.verdict()


def test_a_client_bound_edge_is_flagged_as_not_a_server_capacity():
    """The load generator runs out of CPU at 12 msg/s per member, long before the server's 40."""
    def measure(rate: float) -> Outcome:
        return PASS if rate <= 12.0 else Outcome(False, (P95,), client_bound=True)

    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=20)
    assert bracket.client_bound and bracket.failed_first == (P95, CLIENT_CPU)
    assert "not the server's capacity" in bracket.verdict()
    server_bound = search(capacity(12.0), 2.0, max_rate=1000, min_rate=0.1, max_steps=20)
    assert not server_bound.client_bound and "client-bound" not in server_bound.verdict()


def run_record(p95: float | None = 10.0, loss: float = 0.0, status: str = "ok", server_pct: float = 50.0,
               client_bound: bool = False, cores: int = 1, dps: float = 10_000.0, owed: float = 10_000.0,
               cost_us: float | None = 50.0, in_flight: int = 0, rtt_timeline: list[float | None] | None = None,
               window: float = 15.0, users: int = 200, noisy: bool = False, ceiling: float = 85.0) -> Run:
    """A run record (bench/record.py) with the fields the capacity rule reads."""
    return Run(status=status, rtt_ms=Percentiles(p95=p95), ledger=Ledger(loss_pct=loss, in_flight=in_flight),
               deliveries_per_s=dps, arrived_deliveries_per_s=dps, owed_deliveries_per_s=owed,
               rtt_timeline_ms=rtt_timeline or [],
               params=Params(users=users, room_size=10, window=window, cpu_ceiling_pct=ceiling),
               noise=Noise(noisy=noisy),
               server=ServerCost(cpu_pct_mean=server_pct, cores=cores, cpu_us_per_delivery=cost_us),
               client=ClientCost(client_bound=client_bound))


def test_an_outcome_reads_the_capacity_rule_and_what_was_at_its_limit():
    assert outcome_of(run_record(), 250) == Outcome(True, (), 10.0, 0.0, cost_us=50.0, kept_up=1.0,
                                                    cpu_load=pytest.approx(50 / 85))  # 50% of a core, ceiling 85%
    assert outcome_of(run_record(p95=300), 250).failed_on == (P95,)
    assert outcome_of(run_record(loss=0.5), 250).failed_on == (LOSS,)
    assert outcome_of(run_record(p95=None, status="failed"), 250).failed_on == (RUN_FAILED,)
    assert outcome_of(run_record(p95=900, server_pct=97), 250).why == (P95, SERVER_CPU)
    assert outcome_of(run_record(server_pct=97), 250).failed_on == (SERVER_CPU,)  # at its limit: not carried
    assert outcome_of(run_record(server_pct=97, cores=2), 250).passed  # 2 processes: 200% is full
    assert outcome_of(run_record(p95=900, client_bound=True), 250).why == (P95, CLIENT_CPU)
    assert outcome_of(run_record(in_flight=3), 250).failed_on == ("in flight",)
    assert outcome_of(run_record(noisy=True), 250).noisy


def test_the_search_keeps_the_headroom_a_capacity_needs_to_hold_again():
    """A run is judged by the CPU ceiling its scenario recorded: the search's (bench/scenarios.toml `ramp`) sits
    below the one a capacity is held again under (`confirm`), so a load found at the search's edge can cost more
    per delivery when held again and still hold. 80% of a core fails the first and passes the second."""
    scenarios, _ = load_scenarios()
    ramp, again = scenarios["ramp"].cpu_ceiling_pct, scenarios["confirm"].cpu_ceiling_pct
    assert ramp < 80 < again
    assert outcome_of(run_record(server_pct=80, ceiling=ramp), 250).failed_on == (SERVER_CPU,)
    assert outcome_of(run_record(server_pct=80, ceiling=again), 250).passed
    assert Params().cpu_ceiling_pct == again  # a record from before runs recorded their ceiling ran under 85%


def test_a_backlog_growing_under_the_slo_fails_the_rule():
    """What a short window hides: deliveries that fall behind what was due, and a round trip that climbs
    through the window, both while the p95 is still under the SLO."""
    behind = outcome_of(run_record(dps=9_000.0, owed=10_000.0), 250)
    assert behind.failed_on == ("fell behind",) and behind.kept_up == pytest.approx(0.9)
    # the window's edges: each sender's count in it is off by up to one message, which a short window feels more
    assert outcome_of(run_record(dps=9_400.0, owed=10_000.0, window=1.5), 250).passed
    assert not outcome_of(run_record(dps=9_400.0, owed=10_000.0, window=15.0), 250).passed
    climbing = [5.0] * 5 + [20.0] * 5 + [80.0] * 5
    assert outcome_of(run_record(rtt_timeline=climbing), 250).failed_on == ("latency grew",)
    assert outcome_of(run_record(rtt_timeline=[5.0] * 5 + [12.0] * 10), 250).passed  # ×2.4, but 7 ms
    assert outcome_of(run_record(rtt_timeline=climbing[:5]), 250).passed  # too short to have a trend


def test_a_rate_that_needs_more_cpu_than_the_servers_have_is_a_failed_measurement():
    """deliveries/s × µs per delivery ≤ the servers' cores: 50,000/s at 30 µs is 1.5 cores of one."""
    run = run_record(dps=50_000.0, owed=50_000.0, cost_us=30.0)
    assert claimed_cores(run) == pytest.approx(1.5) and not physical(run)
    assert outcome_of(run, 250).failed_on == ("physics",)
    assert physical(run_record(dps=50_000.0, owed=50_000.0, cost_us=30.0, cores=2))


def test_a_recorded_overloaded_run_is_refused_by_the_physics_check():
    """A real quick bench of the format before this rule (tests/data/results_full_v2.json): deliveries/s then
    counted the window's messages whenever they arrived, and django-app's probe at 1 msg/s per member claimed
    1,904 deliveries/s at 901 µs each, 1.71 cores of the one its server and database ran on."""
    data = Results.load(Path(__file__).with_name("data") / "results_full_v2.json")
    (run,) = [r for r in data.runs if (r.target, r.scenario, r.step) == ("django-app", "ramp", "rate=1")]
    assert run.server.cores == 1 and claimed_cores(run) == pytest.approx(1.71, abs=0.01)
    assert not physical(run) and "physics" in slo_failures(run, 250)
    assert sum(not physical(r) for r in data.runs) == 20  # of 55: every django and fastapi-app probe among them


def sustained(short_c: float, held_c: float, calls: list[tuple[str, float]] | None = None,
              noisy_once: set[float] | None = None):
    """Fakes of `measure` and `hold`: a short probe passes up to `short_c`, a hold only up to `held_c` (a backlog
    too slow to show in a short window). `noisy_once`: rates whose first hold fails on a slow CPU."""
    def probe(kind: str, c: float):
        def measure(rate: float) -> Outcome:
            if calls is not None:
                calls.append((kind, rate))
            if kind == "hold" and noisy_once and rate in noisy_once:
                noisy_once.discard(rate)
                return Outcome(False, (P95,), noisy=True)
            return PASS if rate <= c else Outcome(False, (P95,), kept_up=held_c / rate if kind == "hold" else None)
        return measure
    return probe("probe", short_c), probe("hold", held_c)


def test_only_a_held_load_is_the_capacity():
    """Short probes pass up to 24; a hold only up to 20. The search must not quote 24."""
    calls: list[tuple[str, float]] = []
    measure, hold = sustained(24.0, 20.0, calls)
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=4)
    assert bracket.held and bracket.passed <= 20.0 < bracket.failed, bracket
    assert bracket.converged and bracket.failed <= 20.0 * 1.1
    holds_run = [rate for kind, rate in calls if kind == "hold"]
    assert holds_run[0] > 20.0 and len(holds_run) <= 3, calls  # the short edge failed its hold, then below it
    assert [p.role for p in bracket.probes][-len(holds_run):] == ["hold"] * len(holds_run)


def test_a_hold_that_passes_at_the_short_edge_ends_the_search():
    measure, hold = sustained(20.0, 20.0)
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=3)
    assert bracket.held and bracket.converged and [p.role for p in bracket.probes].count("hold") == 1
    holds(bracket, 20.0)


def test_a_hold_that_failed_on_a_slow_cpu_runs_again():
    calls: list[tuple[str, float]] = []
    measure, hold = sustained(20.0, 20.0, calls)
    plain = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=1)
    measure, hold = sustained(20.0, 20.0, calls := [], noisy_once={plain.passed})
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=3)
    assert [rate for kind, rate in calls if kind == "hold"] == [plain.passed] * 2
    assert bracket.held and bracket.passed == plain.passed


def test_a_slow_fail_runs_again_only_if_a_step_down_is_left_after_it():
    """`make bench` has 2 holds. On a machine that stays slow for minutes (django-app and fastapi-app: both holds
    at the short edge failed at 66–69% of the CPU's speed), running the same hold again spent the last one, and
    no capacity was held: with 2, a slow fail steps down instead."""
    calls: list[tuple[str, float]] = []
    measure, hold = sustained(20.0, 20.0, calls)
    plain = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=1)
    measure, hold = sustained(20.0, 20.0, calls := [], noisy_once={plain.passed})
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=2)
    held = [rate for kind, rate in calls if kind == "hold"]
    assert held[0] == plain.passed and held[1] < plain.passed, held
    assert bracket.held and bracket.passed == held[1]


def coin_flip_edge(capacity: float, flips: bool, calls: list[float]) -> Callable[[float], Outcome]:
    """A hold that passes up to `capacity`, narrowly (p95 near the SLO) above 80% of it; with `flips` a
    narrow pass is a coin that comes up once: the next hold at that load fails."""
    def hold(rate: float) -> Outcome:
        calls.append(rate)
        if rate > capacity or (flips and calls.count(rate) > 1):
            return Outcome(False, (P95,), p95_ms=400.0)
        return Outcome(True, p95_ms=200.0, narrow=True) if rate > 0.8 * capacity else PASS
    return hold


def test_a_narrow_pass_that_fails_its_recheck_is_not_the_capacity():
    """The short edge's hold passes narrowly and fails when held again: the search steps below it and quotes
    the load that held, not the first lucky pass."""
    measure, _ = sustained(20.0, 20.0)
    calls: list[float] = []
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10,
                     hold=coin_flip_edge(20.0, True, calls), max_holds=2)
    edge = calls[0]
    assert calls[:2] == [edge, edge] and [p.role for p in bracket.probes][-3:] == ["hold", "recheck", "hold"]
    assert bracket.held and bracket.passed == calls[2] < edge and bracket.failed == edge, bracket.probes


def test_a_narrow_pass_held_twice_ends_the_search():
    measure, _ = sustained(20.0, 20.0)
    calls: list[float] = []
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10,
                     hold=coin_flip_edge(20.0, False, calls), max_holds=2)
    assert calls == [bracket.passed] * 2 and bracket.held and bracket.rechecked and bracket.converged
    assert "held twice" in bracket.verdict()


def cpu_bound(ceiling_rate: float) -> Callable[[float], Outcome]:
    """A server whose CPU grows in proportion to its load and reaches the ceiling at `ceiling_rate`."""
    def measure(rate: float) -> Outcome:
        load = rate / ceiling_rate
        return Outcome(True, cpu_load=load) if load < 1.0 else Outcome(False, (SERVER_CPU,), cpu_load=load)
    return measure


def test_a_hold_bound_by_the_cpu_aims_where_its_cpu_reaches_the_ceiling():
    """Short probes leave [8, 16) around a ceiling at 10; the bracket's middle (11.3) would fail and quote 8, 20%
    under it. Aimed where the CPU the first hold read reaches 97% of the ceiling, the second hold passes at
    9.7, and the search stops there: a load 10% higher would pass the ceiling."""
    calls: list[float] = []
    measure = cpu_bound(10.0)
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=4,  # 2, 4, 8, then 16 fails
                     hold=lambda rate: calls.append(rate) or measure(rate), max_holds=3)
    assert calls == [8.0, 9.7], bracket
    assert bracket.passed == 9.7 and bracket.failed == 16.0 and bracket.at_ceiling and bracket.converged
    assert "a load 10% higher would pass it" in bracket.verdict()


def test_a_held_pass_with_nothing_failed_above_it_grows_to_its_cpu_ceiling():
    """The short probes ran out before any failed (a fail on a slow CPU passed when run again, in one bench):
    the holds do not quote "at least 8" but grow to where the CPU the first read reaches the ceiling."""
    calls: list[float] = []
    measure = cpu_bound(10.0)
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=3,  # 2, 4, 8: nothing fails
                     hold=lambda rate: calls.append(rate) or measure(rate), max_holds=3)
    assert calls == [8.0, 9.7], bracket
    assert bracket.passed == 9.7 and bracket.failed is None and bracket.at_ceiling and bracket.converged
    assert bracket.verdict().startswith("9.7 msg/s per member, held near its CPU ceiling")
    capped = search(measure, 2.0, max_rate=9.0, min_rate=0.1, max_steps=3, hold=measure, max_holds=3)
    assert [p.rate for p in capped.probes if p.role == "hold"] == [8.0, 9.0]  # never past the search's cap
    unread = search(capacity(1e9), 2.0, max_rate=1000, min_rate=0.1, max_steps=3, hold=capacity(1e9), max_holds=3)
    assert [p.rate for p in unread.probes if p.role == "hold"] == [8.0] and unread.verdict().startswith("at least")


def test_the_cpu_aim_follows_a_cost_that_falls_with_the_load_within_bounds():
    """uvicorn's cost per delivery falls as its load grows: its CPU climbs slower than the load, and the aim
    reaches further; one reading that says the CPU climbs ×8 for ×2 the load is kept to a slope of 1.5."""
    def probes(low_load: float) -> list[Probe]:
        return [Probe(10.0, Outcome(True, cpu_load=low_load), "grow"), Probe(20.0, Outcome(True, cpu_load=0.7), "hold")]
    assert cpu_aim(probes(0.35), 20.0) == pytest.approx(20.0 * 0.97 / 0.7)  # linear: twice the load, twice the CPU
    assert cpu_aim(probes(0.5), 20.0) == pytest.approx(20.0 * (0.97 / 0.7) ** 2)  # slope 0.49, kept to 0.5
    assert cpu_aim(probes(0.0875), 20.0) == pytest.approx(20.0 * (0.97 / 0.7) ** (1 / 1.5))  # slope 3, kept to 1.5
    assert cpu_aim([Probe(20.0, Outcome(True), "hold")], 20.0) is None  # no CPU read: the bracket's middle
    slow = [Probe(20.0, Outcome(True, cpu_load=0.98, noisy=True), "hold")]  # a slow CPU reads more than it costs
    assert cpu_aim(slow, 20.0) is None and not Bracket(20.0, 40.0, 0.1, slow, held=True, holding=True).at_ceiling


def test_a_hold_is_at_its_cpu_ceiling_when_a_load_a_tolerance_higher_would_cross_it():
    """An aim at 97% reads a little under it as often as over: 93% still ends the search (+10% crosses 100%);
    88% does not (+10% reads 97%)."""
    def held_at(load: float) -> Bracket:
        probes = [Probe(10.0, Outcome(True, cpu_load=load / 2), "grow"),
                  Probe(20.0, Outcome(True, cpu_load=load), "hold")]
        return Bracket(20.0, 40.0, 0.1, probes, held=True, holding=True)
    assert held_at(0.93).at_ceiling and held_at(0.93).converged
    assert not held_at(0.88).at_ceiling and "ran out of steps" in held_at(0.88).verdict()
    calls: list[float] = []
    measure = cpu_bound(10.75)  # 10 reads 93% of the ceiling
    bracket = search(measure, 2.5, max_rate=1000, min_rate=0.1, max_steps=4,  # 2.5, 5, 10, then 20 fails
                     hold=lambda rate: calls.append(rate) or measure(rate), max_holds=3)
    assert calls == [10.0] and bracket.converged, "no hold spent 4% above it"


def slow_once_at(rate_failing_slow: float, capacity: float) -> Callable[[float], Outcome]:
    """A server of `capacity` whose probe at `rate_failing_slow` fails once on a slow CPU (noisy)."""
    slow_once = {rate_failing_slow}

    def measure(rate: float) -> Outcome:
        if rate in slow_once:
            slow_once.discard(rate)
            return Outcome(False, (SERVER_CPU,), noisy=True)
        return PASS if rate <= capacity else FAIL
    return measure


def test_a_short_probe_that_failed_on_a_slow_cpu_runs_again_in_its_budget():
    bracket = search(slow_once_at(40.0, 50.0), 10.0, max_rate=1000, min_rate=0.1, max_steps=6)
    rates = [p.rate for p in bracket.probes]
    assert rates[:4] == [10.0, 20.0, 40.0, 40.0] and len(rates) == 6 and bracket.passed >= 40.0, rates


def test_a_slow_fail_that_would_end_the_search_runs_again_first():
    """The floor probe fails on a slow CPU: the search would stop at "below the floor", but it runs it again."""
    bracket = search(slow_once_at(1.0, 3.0), 1.0, max_rate=100, min_rate=1.0, max_steps=10)
    assert [p.rate for p in bracket.probes][:2] == [1.0, 1.0] and bracket.passed is not None, bracket.probes


def test_no_held_pass_leaves_an_indicative_number_that_says_so():
    """A hold at the short edge fails and none is left: the number is the short probes' edge, said to be
    indicative, in the short probes' bracket."""
    measure, hold = sustained(20.0, 5.0)
    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=10, hold=hold, max_holds=1)
    short = [p for p in bracket.probes if p.role != "hold"]
    assert not bracket.held and not bracket.converged
    assert bracket.passed == max(p.rate for p in short if p.outcome.passed) <= 20.0 < bracket.failed
    assert [p.outcome.passed for p in bracket.probes if p.role == "hold"] == [False]
    assert "indicative, not held" in bracket.verdict()


def test_the_start_keeps_the_servers_cores_half_busy_at_the_measured_cost():
    # 100 µs/delivery: one core does 10,000 deliveries/s; half of it over 200 members in rooms of 10
    assert start_rate_from_cost(100.0, 1, 10, users=200) == 2.5
    assert start_rate_from_cost(100.0, 2, 10, users=200, utilisation=1.0) == 10.0
    assert deliveries_per_s(2.5, 200, 10) == 5000.0


CAPACITY = 1000.0  # deliveries/s: well inside what the test process can drive on 2 shared cores
ROOMS, ROOM_SIZE = 2, 5
SLO_MS = 60.0  # 4% below the capacity the round trip is ~3 ms (40 when other work stalls us); 5% above, ~120 ms
HOLD_S = 8.0  # the tests' hold: +2% over the capacity builds ~20 ms of backlog a second, past 60 ms within it


@pytest.fixture
def throttled(tmp_path: Path):
    target = Target("throttled", "tests.throttled_server", {"THROTTLED_CAPACITY": f"{CAPACITY:g}"})
    (server,) = serverproc.start(target, tmp_path)
    yield server
    server.stop()


def measured(server: serverproc.ServerProcess, rate: float, window: float, tag: str) -> Run:
    """One paced load against the throttled server (1 s warm-up), as a run record the capacity rule reads."""
    before, started = server.stats(), time.monotonic()
    load = asyncio.run(paced_load(server.ws_url, rooms=ROOMS, room_size=ROOM_SIZE, rate=rate, warmup=1.0,
                                  window=window, drain=0.5, tag=tag))
    after = server.stats()
    cpu, deliveries = after["cpu_seconds"] - before["cpu_seconds"], after["deliveries"] - before["deliveries"]
    return run_record(load.p95_ms, load.loss_pct, server_pct=100 * cpu / (time.monotonic() - started),
                      client_bound=load.client_bound, dps=load.deliveries_per_s, owed=load.owed_deliveries_per_s,
                      cost_us=1e6 * cpu / deliveries if deliveries else None, rtt_timeline=load.rtt_timeline_ms,
                      window=window, users=ROOMS * ROOM_SIZE)


def old_rule(run: Run, slo_p95_ms: float) -> bool:
    """The rule a capacity stood on before holds: a short probe's p95 within the SLO and nothing lost."""
    return run.ok and run.rtt_ms.p95 is not None and run.rtt_ms.p95 <= slo_p95_ms and run.ledger.loss_pct <= 0


@pytest.mark.server
def test_a_load_past_a_throttled_capacity_passes_a_short_probe_but_not_its_hold(throttled):
    """5% over the capacity the backlog grows ~50 ms a second: a 1.5 s probe ends under the bench's 250 ms SLO
    and passes the old rule; held for 8 s the same load does not pass the capacity rule."""
    rate = 1.05 * CAPACITY / (ROOMS * ROOM_SIZE * ROOM_SIZE)  # msg/s per member: each reaches the room of 5
    probe = measured(throttled, rate, 1.5, "short")
    assert old_rule(probe, 250.0), (probe.rtt_ms, probe.ledger)
    held = measured(throttled, rate, HOLD_S, "held")
    failures = slo_failures(held, 250.0)
    assert "p95" in failures and "latency grew" in failures, (failures, held.rtt_ms, held.rtt_timeline_ms)


@pytest.mark.server
def test_the_search_finds_a_throttled_servers_capacity(throttled: serverproc.ServerProcess):
    """Short probes of 10 members in 2 rooms of 5 for 2.5 s (1 s warm-up, a 1.5 s window), then holds of 8 s,
    judged by the bench's capacity rule. The capacity, 1,000 deliveries/s, is 20 msg/s per member. 4% under it a
    stall of this shared machine (a burst the throttle then drains at 4% of its rate) can fail one short probe;
    2% over it a short probe passes by the p95 alone, and only the hold finds the backlog."""
    tags = itertools.count()

    def probe(window: float):
        return lambda rate: outcome_of(measured(throttled, rate, window, f"probe{next(tags)}"), SLO_MS)

    started = time.monotonic()
    bracket = search(probe(1.5), 10.5, max_rate=200, min_rate=1.0, max_steps=5, slo_p95_ms=SLO_MS,
                     hold=probe(HOLD_S), max_holds=3)
    in_deliveries = [deliveries_per_s(r, ROOMS * ROOM_SIZE, ROOM_SIZE) for r in (bracket.passed, bracket.failed)]
    note = f"{bracket.verdict()}; probes {[(p.rate, p.role, p.outcome.why, p.outcome.p95_ms) for p in bracket.probes]}"
    assert bracket.held, note
    assert in_deliveries[0] <= CAPACITY * 1.01 and in_deliveries[1] >= CAPACITY * 0.96, note  # holds the true one
    assert in_deliveries[0] >= CAPACITY / 1.2, note
    assert not bracket.client_bound, note
    assert time.monotonic() - started < 100


def test_a_short_fail_on_a_slow_cpu_with_no_budget_left_does_not_bound_the_holds():
    """The last short probe fails only because the CPU ran slow (fastapi-app: 1.66 msg/s per member at 54% of
    its speed): holds must not stop below it, where the next fail above is the bound."""
    calls: list[float] = []

    def measure(rate: float) -> Outcome:
        calls.append(rate)
        if len(calls) == 6:  # the budget's last probe, inside the bracket [16, 32)
            return Outcome(False, (SERVER_CPU,), noisy=True)
        return PASS if rate <= 25.0 else FAIL

    holds_run: list[float] = []

    def hold(rate: float) -> Outcome:
        holds_run.append(rate)
        return PASS if rate <= 25.0 else FAIL

    bracket = search(measure, 2.0, max_rate=1000, min_rate=0.1, max_steps=6, hold=hold, max_holds=2)
    noisy = calls[5]
    assert noisy < 25.0 and bracket.held, (calls, holds_run)
    assert max(holds_run) >= noisy and bracket.passed >= noisy, (calls, holds_run, bracket.passed)


def test_a_bracket_exactly_the_tolerance_wide_is_within_it():
    """(2.2 − 2.0) / 2.0 reads 0.10000000000000009: a bracket the search rounded to 10% is 10%."""
    assert Bracket(2.0, 2.2, 0.10).within and not Bracket(2.0, 2.21, 0.10).within
    assert not Bracket(None, 2.2, 0.10).within and not Bracket(2.0, None, 0.10).within
