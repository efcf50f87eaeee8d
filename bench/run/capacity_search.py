"""Find a target's capacity: the largest load its servers carry for a sustained window within the SLO.

The search knows nothing of Locust: it calls `measure(rate)` (a short probe) and `hold(rate)` (a run of the
sustained window), each of which runs one load and says whether it passed, so it can be tested against a
fake. Rates are in whatever unit they take; the runner uses messages/s per member (a scenario's `rate`),
and `deliveries_per_s` converts.

Short probes bracket the edge: grow from a start until a run fails (×4 while the round trip is far below the
SLO, else ×2, but no further than ×1.25 where the cost just measured saturates the servers, until a pass has
outrun such an estimate: then at least ×2), then narrow the
bracket between the last pass and the first fail until they are within the tolerance. A start that fails
grows downwards (÷2) until a run passes. Narrowing aims where the round trip's p95 crosses the SLO, read off
the straight line through the two edges' p95 on log-log axes (latency climbs as a power of the load towards
saturation), kept to the middle 60% of the bracket so one noisy p95 cannot stall it; without both p95s (a
loss, a failed run) it takes the geometric midpoint. Simulated against a p95 that climbs as load⁶ and is off
by ×e^N(0, 0.3) in each run (tests/test_capacity_search.py), searches of at most 11 runs held the capacity
to ±10% 81% of the time in 8.2 runs on average, where ×2-and-bisect held it 68% of the time in 8.8 runs.

A short probe is not a capacity: a load a little past it builds its backlog too slowly to show in a 1.5 s
window. So holds decide (`hold_edge`): the short edge is held for the sustained window; a hold that fails
steps below itself, one that passes narrows towards the lowest fail, but no further than where the CPU it read
reaches 97% of the run's ceiling (`cpu_aim`): where the servers' CPU bounds the capacity, as it mostly does
here, that hold passes near the edge or fails leaving a narrow bracket, and a pass so near the ceiling that
a load a tolerance higher would cross it (`Bracket.at_ceiling`) ends the search. A hold that passes narrowly (its p95
above half the SLO) is held again before it counts: near its edge a load's p95 swings ×2 from one hold to
the next, and the first pass of several is not a load the servers carry. Only a held pass is the capacity;
without one the short edge is reported as indicative, not held.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from bench.record import ProbeRole, Run, SloFailure, near_slo, slo_failures, within_tolerance

# what else was true of a run, after what broke the rule, in the order the report names them
CLIENT_CPU = "client cpu"
P95, LOSS, RUN_FAILED, SERVER_CPU = "p95", "loss", "run failed", "server cpu"  # of bench.record.SloFailure


@dataclass(frozen=True)
class Outcome:
    """One measured load: whether it passed the capacity rule (bench.record.slo_failures), and why not."""

    passed: bool
    failed_on: tuple[SloFailure, ...] = ()  # what broke the rule
    p95_ms: float | None = None
    loss_pct: float | None = None
    client_bound: bool = False  # the load generator's busiest process was out of CPU
    cost_us: float | None = None  # the server CPU µs per delivery measured at this load
    kept_up: float | None = None  # deliveries that arrived in the window ÷ those the members were due
    noisy: bool = False  # steal, other processes or a slow CPU under the servers (bench.record.Noise)
    narrow: bool = False  # passed with its p95 near the SLO (bench.record.near_slo): a hold's such pass is rechecked
    cpu_load: float | None = None  # the servers' mean CPU ÷ the run's ceiling of their cores: 1.0 at the ceiling

    @property
    def why(self) -> tuple[str, ...]:
        """What broke the rule, then what was at its limit (client CPU)."""
        return self.failed_on + ((CLIENT_CPU,) if self.client_bound else ())


def outcome_of(run: Run, slo_p95_ms: float) -> Outcome:
    """The Outcome of one run (bench/run/runner.py `run_step`)."""
    failed_on = tuple(slo_failures(run, slo_p95_ms))
    return Outcome(
        passed=not failed_on, failed_on=failed_on, p95_ms=run.rtt_ms.p95, loss_pct=run.ledger.loss_pct,
        client_bound=run.client.client_bound, cost_us=run.server.cpu_us_per_delivery,
        kept_up=run.arrived_deliveries_per_s / run.owed_deliveries_per_s if run.owed_deliveries_per_s else None,
        noisy=run.noise.noisy, narrow=not failed_on and near_slo(run.rtt_ms.p95, slo_p95_ms),
        cpu_load=cpu / (run.params.cpu_ceiling_pct * cores)
        if (cpu := run.server.cpu_pct_mean) is not None and (cores := run.server.cores) else None,
    )


@dataclass(frozen=True)
class Probe:
    rate: float
    outcome: Outcome
    role: ProbeRole


@dataclass
class Bracket:
    """What the search found: the capacity lies in [passed, failed)."""

    passed: float | None  # the highest rate that passed (held, when `held`; twice, when `confirmed`)
    failed: float | None  # the lowest rate above it that failed; None: nothing failed up to max_rate
    tolerance: float
    probes: list[Probe] = field(default_factory=list)
    held: bool = False  # `passed` was carried for a whole hold, not only a short probe
    holding: bool = False  # the search ran holds: only a held pass counts as converged

    @property
    def confirmed(self) -> bool:
        return any(p.role == "confirm" and p.rate == self.passed and p.outcome.passed for p in self.probes)

    @property
    def within(self) -> bool:
        """The bracket is no wider than the tolerance."""
        return within_tolerance(self.passed, self.failed, self.tolerance)

    @property
    def rechecked(self) -> bool:
        """`passed` was held twice, its first hold a narrow pass: the edge is near it, however wide the bracket."""
        return any(p.role == "recheck" and p.rate == self.passed and p.outcome.passed for p in self.probes)

    @property
    def at_ceiling(self) -> bool:
        """`passed` held with the servers' CPU so near the run's ceiling that a load a tolerance above it would
        pass it (on `cpu_aim`'s line): the capacity is known within the tolerance however wide the bracket."""
        return self.holding and self.passed is not None and crosses_ceiling(self.probes, self.passed, self.tolerance)

    @property
    def converged(self) -> bool:
        return (self.held and (self.within or self.rechecked or self.at_ceiling)) if self.holding \
            else (self.within and self.confirmed)

    @property
    def edge(self) -> Outcome | None:
        """The outcome at the fail edge (its latest run)."""
        return next((p.outcome for p in reversed(self.probes) if p.rate == self.failed), None)

    @property
    def failed_first(self) -> tuple[str, ...]:
        """What broke at the edge, then what was at its limit there."""
        return self.edge.why if self.edge else ()

    @property
    def client_bound(self) -> bool:
        """The load generator, not the server, ran out of CPU at the edge: `passed` is then a floor of the
        server's capacity, not its capacity."""
        return bool(self.edge and self.edge.client_bound)

    def verdict(self, unit: str = "msg/s per member") -> str:
        if self.passed is None:
            return f"below {self.failed:g} {unit}: the lowest load tried failed ({', '.join(self.failed_first)})"
        if self.failed is None:
            if self.at_ceiling:
                return f"{self.passed:g} {unit}, held near its CPU ceiling: a load {self.tolerance:.0%} higher " \
                    "would pass it"
            return f"at least {self.passed:g} {unit}: nothing up to the highest load tried failed"
        text = f"{self.passed:g} {unit} [{self.passed:g}, {self.failed:g}), failed first on " + \
            ", ".join(self.failed_first)
        if self.holding and not self.held:
            text += "; indicative, not held: no hold at or below it passed"
        elif self.rechecked:
            text += "; held twice, its p95 above half the SLO"
        elif self.at_ceiling and not self.within:
            text += f"; held near its CPU ceiling: a load {self.tolerance:.0%} higher would pass it"
        elif not self.converged:
            text += f"; not within ±{self.tolerance:.0%} and {'held' if self.holding else 'confirmed'}: " \
                "the search ran out of steps"
        if self.client_bound:
            text += "; client-bound: the load generator ran out of CPU first, so this is not the server's capacity"
        return text


FAR_BELOW = 1 / 20  # a pass whose p95 is under this share of the SLO grows ×4: the knee is still far off
AIM_WITHIN = (0.2, 0.8)  # where in the bracket (log scale) an aimed probe may land


def grow_factor(last: Outcome, slo_p95_ms: float | None) -> float:
    far = slo_p95_ms and last.p95_ms is not None and last.p95_ms < FAR_BELOW * slo_p95_ms
    return 4.0 if far else 2.0


PAST_ESTIMATE = 1.25  # ×: from the rate the cost allows (its CPU at 80%) to its CPU at a whole core


def grown(passed: float, factor: float, hint: float | None, outran: bool = False) -> float:
    """The next rate after a pass, with nothing failed yet: ×`factor`, or straight to `hint` (what the cost just
    measured allows) when that is further; when the cost says the servers saturate short of ×`factor`, no
    further than where it puts them at a whole core (and at least ×PAST_ESTIMATE): a fail just past the edge
    leaves a bracket the holds can narrow, where one at ×4 left them [x, 4x) to narrow in two holds. Once a pass
    has `outran` the previous estimate (a server whose cost per delivery falls as its load grows, as uvicorn's
    does when it writes more per wakeup), the estimate is no ceiling: at least ×2, never past ×`factor`."""
    if hint is None:
        return passed * factor
    if hint >= passed * factor:
        return hint
    capped = max(passed * PAST_ESTIMATE, min(passed * factor, hint * PAST_ESTIMATE))
    return max(capped, passed * min(factor, 2.0)) if outran else capped


def aim(bracket: Bracket, slo_p95_ms: float | None) -> float:
    """The next rate inside (passed, failed): where the edges' p95s, on a log-log line, cross the SLO."""
    lo, hi = bracket.passed, bracket.failed
    assert lo is not None and hi is not None  # search aims only inside a bracket with both edges
    at = {p.rate: p.outcome for p in bracket.probes}  # each rate's latest outcome
    below, above = at[lo], at[hi]
    share = 0.5  # a fail on loss alone, or an edge without a p95, says nothing of where the p95 crosses
    if slo_p95_ms and below.p95_ms and above.p95_ms and P95 in above.failed_on and above.p95_ms > below.p95_ms:
        share = math.log(slo_p95_ms / below.p95_ms) / math.log(above.p95_ms / below.p95_ms)
    share = min(max(share, AIM_WITHIN[0]), AIM_WITHIN[1])
    return lo * (hi / lo) ** share


def round_rate(rate: float) -> float:
    """Three significant figures: readable step labels, well inside any tolerance worth asking for."""
    return float(f"{rate:.3g}")


def search(measure: Callable[[float], Outcome], start_rate: float, *, tolerance: float = 0.10,
           max_rate: float, min_rate: float, max_steps: int,
           estimate: Callable[[float, Outcome], float | None] | None = None,
           slo_p95_ms: float | None = None,
           hold: Callable[[float], Outcome] | None = None, max_holds: int = 0) -> Bracket:
    """Search for the edge between passing and failing loads with at most `max_steps` calls of `measure`.
    `estimate(rate, outcome)` names the rate the load just measured suggests (the runner's: what the cost
    per delivery measured at that rate allows): after a pass the search grows to it when that is more than
    ×2, after a fail it shrinks to it when that is less than ÷2, so a target far from the start gets there
    in one step. With `slo_p95_ms`, the p95s measured steer the growth and the narrowing.
    With `hold` (a run of the sustained window) the short probes only bracket the edge, and `hold_edge` then
    decides it in at most `max_holds` holds; without, the passing edge is confirmed by a second short probe."""
    bracket = Bracket(None, None, tolerance, holding=hold is not None)
    lower_passes: list[float] = []  # every rate that passed, in case a confirm knocks out the edge
    retried: set[float] = set()  # rates that failed on a slow CPU and ran again
    prior_hint: float | None = None  # the estimate the last growth made: a pass beyond it outran it
    for _ in range(max_steps):
        passed, failed = bracket.passed, bracket.failed
        last = bracket.probes[-1] if bracket.probes else None
        if slow_fail(last, retried):  # before anything else: a fail on a slow CPU says nothing of the edge yet
            rate, role = last.rate, last.role
            retried.add(rate)
        elif last is None:
            rate, role = min(max(round_rate(start_rate), min_rate), max_rate), "grow"
        elif passed is None:
            assert failed is not None  # probes ran and none passed: the last one failed
            if failed <= min_rate:
                break
            hint = estimate(failed, bracket.probes[-1].outcome) if estimate else None
            rate, role = max(round_rate(min(failed / 2, hint or failed)), min_rate), "shrink"
        elif failed is None and passed < max_rate:
            hint = estimate(passed, last.outcome) if estimate else None
            outran = prior_hint is not None and passed > prior_hint
            rate = grown(passed, grow_factor(last.outcome, slo_p95_ms), hint, outran)
            rate, role, prior_hint = min(round_rate(rate), max_rate), "grow", hint
        elif failed is not None and not bracket.within:
            mid = aim(bracket, slo_p95_ms)
            rate, role = (round_rate(mid) if passed < round_rate(mid) < failed else mid), "bisect"
        elif hold is None and not bracket.confirmed:
            rate, role = passed, "confirm"
        else:
            break
        outcome = measure(rate)
        bracket.probes.append(Probe(rate, outcome, role))
        if outcome.passed:
            bracket.passed = rate
            lower_passes.append(rate)
            if bracket.failed == rate:  # a retry passed where the slow run failed: the fail edge is the one above
                bracket.failed = min((p.rate for p in bracket.probes if not p.outcome.passed and p.rate > rate),
                                     default=None)
        else:
            bracket.failed = rate
            if role == "confirm":
                bracket.passed = max((r for r in lower_passes if r < rate), default=None)
    if hold is not None and bracket.passed is not None:
        hold_edge(bracket, hold, max_holds, estimate, min_rate, max_rate)
    return bracket


def slow_fail(probe: Probe | None, retried: set[float]) -> TypeGuard[Probe]:
    """A probe (or hold) that failed while the servers' CPU ran slow or was taken (noisy) and has not run again:
    it runs once more, in its budget of steps, before the search takes it as a fail."""
    return probe is not None and not probe.outcome.passed and probe.outcome.noisy and probe.rate not in retried


def said_nothing(rate: float, probes: list[Probe]) -> bool:
    """The only run at `rate` failed while the servers' CPU ran slow or was taken: it says nothing of the edge.
    The holds narrow towards the next fail above it instead (it falls inside their bracket)."""
    at = [p for p in probes if p.rate == rate]
    return len(at) == 1 and not at[0].outcome.passed and at[0].outcome.noisy


HOLDS = ("hold", "recheck")  # the roles of runs of the sustained window
CPU_AIM = 0.97  # of the CPU ceiling: where a hold narrowing a bracket bound by the servers' CPU aims
CPU_SLOPE = (0.5, 1.5)  # how the servers' CPU grows with the load (log-log), at most this far from linear
STEP_DOWN = 0.85  # a failed hold's next rate, at most: far enough below to hold, near enough to stay within ±15%


def cpu_read(outcome: Outcome) -> float | None:
    """A run's CPU load (share of its ceiling) where it says what the load costs: not on a slow or taken CPU."""
    return None if outcome.noisy else outcome.cpu_load


def cpu_aim(probes: list[Probe], held: float, share: float = CPU_AIM) -> float | None:
    """The load at which the servers' CPU reaches `share` of its ceiling, from the hold that passed at `held`:
    on the log-log line through it and the highest-rate run below it that read a CPU (its slope kept within
    CPU_SLOPE: uvicorn's cost per delivery falls as its load grows, Channels' barely moves, and one odd
    reading may not swing the aim), linear without such a run. None: no CPU read (`cpu_read`) at `held`."""
    at = next((load for p in reversed(probes) if p.role in HOLDS and p.rate == held and p.outcome.passed
               and (load := cpu_read(p.outcome))), None)
    if at is None:
        return None
    below = [(p.rate, load) for p in probes if p.rate < held and (load := cpu_read(p.outcome))]
    slope = 1.0
    if below:
        rate, load = max(below)
        slope = min(max(math.log(at / load) / math.log(held / rate), CPU_SLOPE[0]), CPU_SLOPE[1])
    return held * (share / at) ** (1 / slope)


def crosses_ceiling(probes: list[Probe], held: float, tolerance: float) -> bool:
    """A load `tolerance` above the hold that passed at `held` would cross the CPU ceiling, on `cpu_aim`'s line."""
    full = cpu_aim(probes, held, share=1.0)
    return full is not None and full <= held * (1 + tolerance)


def below_failed_hold(rate: float, outcome: Outcome, estimate: Callable[[float, Outcome], float | None] | None,
                      min_rate: float) -> float:
    """The next hold under one that failed: what the servers delivered there (a growing backlog means they
    delivered at their limit) or what its cost allows, if lower than STEP_DOWN; never below half of it."""
    guesses = [rate * STEP_DOWN]
    if outcome.kept_up is not None and outcome.kept_up < 1.0:
        guesses.append(rate * outcome.kept_up * 0.95)
    if estimate and (hint := estimate(rate, outcome)):
        guesses.append(hint)
    return max(round_rate(min(guesses)), round_rate(rate / 2), min_rate)


def hold_edge(bracket: Bracket, hold: Callable[[float], Outcome], max_holds: int,
              estimate: Callable[[float, Outcome], float | None] | None, min_rate: float,
              max_rate: float = math.inf, max_rechecks: int = 1) -> None:
    """Decide the short probes' edge with holds: a short probe can pass a load whose backlog grows too
    slowly to show in it, so only a load carried for the whole hold is the capacity. From the short edge,
    each failed hold steps below itself; once one passes, the rest narrow the bracket towards the lowest
    fail (a short probe that failed on a slow CPU, with no budget left to run it again, does not count as
    that fail), no further than `cpu_aim`, or grow to `cpu_aim` when nothing failed above it; a pass where a
    load a tolerance higher would cross the CPU ceiling ends the search. A narrow pass is held
    again (at most `max_rechecks` times, outside `max_holds`): it counts once that passes, and then ends the
    search, its p95 already near the SLO; a narrow pass with no recheck left counts as it is. A hold, or a
    short probe, that fails while the servers' CPU ran slow or was taken (noisy) runs once more, in its
    budget: the budget is what keeps `make bench` within its minutes. A hold runs again only when one more is
    left after it: a machine slow for minutes fails the same hold twice, and a step down is then what gets a
    held capacity at all."""
    short_passes = [p.rate for p in bracket.probes if p.outcome.passed]
    if (fail := bracket.failed) is not None and said_nothing(fail, bracket.probes):  # the budget ran out first
        bracket.failed = min((p.rate for p in bracket.probes if not p.outcome.passed and p.rate > fail
                              and not said_nothing(p.rate, bracket.probes)), default=fail)
    rate: float | None = bracket.passed
    held: float | None = None
    retried: set[float] = set()
    left, rechecks = max_holds, max_rechecks
    while left > 0 and rate is not None:
        outcome = hold(rate)
        bracket.probes.append(Probe(rate, outcome, "hold"))
        left -= 1
        if slow_fail(bracket.probes[-1], retried) and left > 1:  # and a step down is left after it
            retried.add(rate)
            continue
        rechecked = outcome.passed and outcome.narrow and rechecks > 0
        if rechecked:
            rechecks -= 1
            outcome = hold(rate)
            bracket.probes.append(Probe(rate, outcome, "recheck"))
        if outcome.passed:
            held = rate if held is None else max(held, rate)
        else:
            bracket.failed = rate if bracket.failed is None else min(bracket.failed, rate)
        top = bracket.failed
        if held is not None:
            if (rechecked and outcome.passed) or within_tolerance(held, top, bracket.tolerance) or \
                    crosses_ceiling(bracket.probes, held, bracket.tolerance):
                break  # held twice, within the tolerance, or at its CPU ceiling
            at_cpu = cpu_aim(bracket.probes, held)
            if top is None:  # nothing failed above it (a short fail on a slow CPU passed when run again): grow to
                # where its CPU reaches the ceiling; with no CPU read, it stays "at least"
                rate = round_rate(min(max(at_cpu, held * (1 + bracket.tolerance)), held * 2, max_rate)) if at_cpu \
                    else None
                rate = rate if rate and rate > held else None
            else:
                # the bracket's middle, or lower where the CPU just measured reaches its ceiling: a hold there passes
                # with the capacity near its edge, or fails and leaves a narrow bracket; at the ceiling already, done
                mid = math.sqrt(held * top)
                rate = round_rate(min(mid, at_cpu) if at_cpu else mid)
                rate = rate if held < rate < top else None
        else:
            assert top is not None  # no hold has passed, so this one failed
            rate = below_failed_hold(rate, outcome, estimate, min_rate)
            rate = rate if rate < top else None
    bracket.held = held is not None
    if held is not None:
        bracket.passed = held
    else:  # the short probes' edge, indicative only (the verdict says no hold at or below it passed)
        bracket.passed = max(short_passes, default=None)
        bracket.failed = min((p.rate for p in bracket.probes if p.role not in HOLDS and not p.outcome.passed
                              and bracket.passed is not None and p.rate > bracket.passed), default=None)


def start_rate_from_cost(cost_us_per_delivery: float, server_cpus: int, room_size: int, *, users: int,
                         utilisation: float = 0.5) -> float:
    """Where to start: the messages/s per member that would keep `server_cpus` cores `utilisation` busy, at
    the target's measured server CPU µs per delivery (one core does ≈ 1e6 / cost deliveries/s). Half busy
    by default: usually a pass, and one ×2 step from saturation, so a slow target wastes no steps."""
    deliveries = utilisation * server_cpus * 1e6 / cost_us_per_delivery
    return round_rate(deliveries / (users * room_size))


def deliveries_per_s(rate: float, users: int, room_size: int) -> float:
    """Offered deliveries/s at `rate` messages/s per member: each message reaches the whole room, sender too."""
    return rate * users * room_size
