"""Reading the run record: which runs, targets, scenarios and steps it holds, and one figure of a run.

A figure is a `Measure`, a callable that takes a `Run` and answers its value, or None when the run did not
measure it (a server that died, a percentile with nothing recorded)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, overload

from bench.record import (
    TARGET_ORDER,
    Results,
    Run,
    TargetInfo,
    again_failures,
    broke_again,
    claimed_cores,
    delivered_rate,
    physical,
    stack_of,
)
from bench.report.numbers import fmt

Measure = Callable[[Run], float | None]
COST: Measure = lambda run: run.server.cpu_us_per_delivery  # noqa: E731
LOSS: Measure = lambda run: run.ledger.loss_pct  # noqa: E731
P95: Measure = lambda run: run.rtt_ms.p95  # noqa: E731
# the servers' CPU over the run per member: with members that only connect and leave, a connection's CPU (ms)
CPU_MS_PER_CONNECTION: Measure = lambda run: (1e3 * run.server.delta.cpu_seconds / run.params.users  # noqa: E731
                                              if run.server.delta and run.params.users else None)
DPS: Measure = delivered_rate  # a rate its servers' cores could not have delivered is never a figure (flag "physics")
STACKS = ("Channels", "FastAPI", "reference")


def unique(values: Iterable) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def target_names(data: Results) -> list[str]:
    """Every target of the results, in bench.targets' order (the same in every report), then any other."""
    names = unique([*data.targets, *(r.target for r in data.runs)])
    known = TARGET_ORDER
    return sorted(names, key=lambda t: (known.index(t) if t in known else len(known), names.index(t)))


def scenario_names(data: Results) -> list[str]:
    return unique(r.scenario for r in data.runs)


@overload
def param(data: Results, scenario: str, key: Literal["slo_p95_ms"]) -> float | None: ...
@overload
def param(data: Results, scenario: str, key: str) -> object: ...
def param(data: Results, scenario: str, key: str) -> object:
    return next((v for r in data.runs_of(scenario) if (v := getattr(r.params, key)) is not None), None)


def info(data: Results, target: str) -> TargetInfo:
    """How the target was served, or an empty description when its servers never reported (a failed start)."""
    return data.targets.get(target) or TargetInfo()


def ran(data: Results, fam: str | None = None) -> list[str]:
    """The targets with at least one run (of one stack: "Channels", "FastAPI" or "reference")."""
    return [t for t in target_names(data) if data.runs_of(target=t) and fam in (None, stack_of(data, t))]


def is_seed(data: Results, target: str) -> bool:
    return info(data, target).fanout == "seed"


def redis_targets(data: Results) -> list[str]:
    """Targets that scale out through Redis: their channel layer or fan-out goes through it."""
    return [t for t in target_names(data) if info(data, t).layer.startswith("redis")]


def timeline(run: Run) -> list[float]:
    """Deliveries per second through the window; the runner stops at the last second that delivered
    anything, so a room that stalled for good gets its silent seconds back as zeros."""
    seconds = [float(v) for v in run.timeline]
    return seconds + [0.0] * (int(run.params.window) - len(seconds)) if seconds else []


def offered_deliveries(run: Run) -> float:
    """Deliveries per second the step asks for: every message goes to every member, the sender included."""
    return run.offered_send_rate * run.params.room_size


def sampled(runs: Iterable[Run]) -> str:
    """"sampled every 0.5 s", at the interval the runs recorded; "sampled" when they did not, or differ."""
    every = {r.sample_interval_s for r in runs}
    return f"sampled every {every.pop():g} s" if len(every) == 1 and None not in every else "sampled"


def client_bound(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r.client.client_bound]


def noisy(runs: Iterable[Run]) -> list[Run]:
    """Runs whose servers' CPUs were shared during the window: steal, or other processes on them."""
    return [r for r in runs if r.noise.noisy]


def failed(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if not r.ok]


def unphysical(runs: Iterable[Run]) -> list[Run]:
    """Runs whose deliveries/s × server µs per delivery is more CPU than their servers have (bench.record)."""
    return [r for r in runs if not physical(r)]


def first_line(text: str | None) -> str:
    """A failure in one line: its first line and, when there are more, its last."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no failure text recorded"
    return lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")


def flag_notes(runs: list[Run]) -> list[tuple[str, str]]:
    """Why some figures of these runs need care: (flag, note) for client-bound, noisy, failed."""
    share = lambda some: f" in {len(some)}/{len(runs)} runs" if len(runs) > 1 else ""  # noqa: E731
    worst = lambda some, key: max(key(r) or 0 for r in some)  # noqa: E731
    out = []
    if bound := client_bound(runs):
        busiest = worst(bound, lambda r: r.client.busiest_process_cpu_pct)
        out.append(("client-bound", f"load generator {fmt('pct1', busiest)}%{share(bound)}"))
    if loud := noisy(runs):
        other = worst(loud, lambda r: r.noise.other_on_server_cpus_pct)
        bits = [f"steal {fmt('pct1', worst(loud, lambda r: r.steal_pct.mean))}%"]
        bits += [f"other processes {fmt('pct1', other)}% of the servers' CPUs"] if other else []
        speeds = [r.noise.server_cpu_speed_pct for r in loud if r.noise.server_cpu_speed_pct is not None]
        bits += [f"servers' CPU at {fmt('pct1', min(speeds))}% of full speed"] if speeds else []
        out.append(("noisy", ", ".join(bits) + share(loud)))
    if bad := unphysical(runs):
        r = max(bad, key=lambda r: claimed_cores(r) or 0)
        out.append(("physics", f"{fmt('rate', r.deliveries_per_s)} deliveries/s × "
                               f"{fmt('us', r.server.cpu_us_per_delivery)} µs = {claimed_cores(r):.2f} cores, more "
                               f"than the servers' {r.server.cores}: a failed measurement, not a rate{share(bad)}"))
    if missed := {id(r): again_failures(r) for r in broke_again(runs)}:
        out.append(("failed again", "a capacity held again broke the rule on "
                                f"{', '.join(dict.fromkeys(w for why in missed.values() for w in why))}"
                                f"{share(list(missed))}"))
    if failed(runs):
        out.append(("failed", ""))
    return out


def flag_names(runs: list[Run]) -> str:
    """The flags of flag_notes, and "unexplained" when the ledger could not place some deliveries."""
    names = [name for name, _ in flag_notes(runs)]
    names += ["unexplained"] if any(r.ledger.unexplained > 0 for r in runs) else []
    return ", ".join(names)


def cautions(runs: Iterable[Run]) -> str:
    """" [client-bound]" / " [noisy]" after a figure taken from such runs."""
    runs = list(runs)
    return "".join(f" [{name}]" for name, some in (("client-bound", client_bound(runs)), ("noisy", noisy(runs)))
                   if some)
