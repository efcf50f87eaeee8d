"""Reading the results dict: which runs, targets, scenarios and steps it holds, and one figure of a run.

Any key may be missing (an interrupted run, a failed server, an older format): every reader here
answers None or an empty list rather than raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bench.record import NOISY_PCT, TARGET_ORDER
from bench.report.numbers import fmt

Key = tuple[str, ...] | Callable[[dict], float | None]  # where a figure sits in a run, or how to compute it
COST: Key = ("server", "cpu_us_per_delivery")
LOSS: Key = ("ledger", "loss_pct")
P95: Key = ("rtt_ms", "p95")
DPS: Key = ("deliveries_per_s",)
ANY = object()  # runs_of: no filter on this field


def get(d: object, *path: str) -> object:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def num(run: dict, key: Key) -> float | None:
    v = key(run) if callable(key) else get(run, *key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def unique(values: Iterable) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def target_names(data: dict) -> list[str]:
    """Every target of the results, in bench.targets' order (the same in every report), then any other."""
    names = unique([*(data.get("targets") or {}), *(r.get("target") for r in data.get("runs") or [])])
    known = TARGET_ORDER
    return sorted(names, key=lambda t: (known.index(t) if t in known else len(known), names.index(t)))


def scenario_names(data: dict) -> list[str]:
    return unique(r.get("scenario") for r in data.get("runs") or [])


def runs_of(data: dict, scenario: object = ANY, target: object = ANY, step: object = ANY) -> list[dict]:
    return [r for r in data.get("runs") or []
            if (scenario is ANY or r.get("scenario") == scenario)
            and (target is ANY or r.get("target") == target) and (step is ANY or r.get("step") == step)]


def steps_of(data: dict, scenario: str, target: object = ANY) -> list:
    """The scenario's steps in the order they ran (a step is a rate, or a label of what it overrides)."""
    return unique(r.get("step") for r in runs_of(data, scenario, target))


def param(data: dict, scenario: str, key: str) -> object:
    return next((v for r in runs_of(data, scenario) if (v := get(r, "params", key)) is not None), None)


def ran(data: dict, fam: str | None = None) -> list[str]:
    """The targets with at least one run (of one family: "Channels" or "FastAPI")."""
    return [t for t in target_names(data) if runs_of(data, target=t) and fam in (None, family(data, t))]


def timeline(run: dict) -> list[float]:
    """Deliveries per second through the window; the runner stops at the last second that delivered
    anything, so a room that stalled for good gets its silent seconds back as zeros."""
    seconds = [float(v) for v in run.get("timeline") or []]
    window = int(num(run, ("params", "window")) or 0)
    return seconds + [0.0] * (window - len(seconds)) if seconds else []


def offered_deliveries(run: dict) -> float | None:
    """Deliveries per second the step asks for: every message goes to every member, the sender included."""
    rate, room = num(run, ("offered_send_rate",)), num(run, ("params", "room_size"))
    return rate * room if rate is not None and room is not None else None


def family(data: dict, target: str) -> str:
    fanout = get(data, "targets", target, "fanout")
    if fanout == "channels" or (fanout is None and str(target).startswith("django")):
        return "Channels"
    return "FastAPI"


def is_seed(data: dict, target: str) -> bool:
    return get(data, "targets", target, "fanout") == "seed" or str(target).endswith("-seed")


def redis_targets(data: dict) -> list[str]:
    """Targets that scale out through Redis, by their layer or (with no description) by their name."""
    return [t for t in target_names(data)
            if str(get(data, "targets", t, "layer") or "").startswith("redis") or "redis" in str(t)]


def client_bound(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if get(r, "client", "client_bound") is True]


def noisy(runs: Iterable[dict]) -> list[dict]:
    """Runs whose servers' CPUs were shared during the window: steal, or other processes on them."""
    out = []
    for r in runs:
        flag = get(r, "noise", "noisy")
        if flag is True or (flag is None and (num(r, ("steal_pct", "mean")) or 0) >= NOISY_PCT):
            out.append(r)
    return out


def failed(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if r.get("status") not in ("ok", None)]


def first_line(text: object) -> str:
    """A failure in one line: its first line and, when there are more, its last."""
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no failure text recorded"
    return lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")


def flag_notes(runs: list[dict]) -> list[tuple[str, str]]:
    """Why some figures of these runs need care: (flag, note) for client-bound, noisy, failed."""
    share = lambda some: f" in {len(some)}/{len(runs)} runs" if len(runs) > 1 else ""  # noqa: E731
    worst = lambda some, *path: max(num(r, path) or 0 for r in some)  # noqa: E731
    out = []
    if bound := client_bound(runs):
        busiest = worst(bound, "client", "busiest_process_cpu_pct")
        out.append(("client-bound", f"load generator {fmt('pct1', busiest)}%{share(bound)}"))
    if loud := noisy(runs):
        other = worst(loud, "noise", "other_on_server_cpus_pct")
        bits = [f"steal {fmt('pct1', worst(loud, 'steal_pct', 'mean'))}%"]
        bits += [f"other processes {fmt('pct1', other)}% of the servers' CPUs"] if other else []
        out.append(("noisy", ", ".join(bits) + share(loud)))
    if failed(runs):
        out.append(("failed", ""))
    return out


def flag_names(runs: list[dict]) -> str:
    """The flags of flag_notes, and "unexplained" when the ledger could not place some deliveries."""
    names = [name for name, _ in flag_notes(runs)]
    names += ["unexplained"] if any((num(r, ("ledger", "unexplained")) or 0) > 0 for r in runs) else []
    return ", ".join(names)


def cautions(runs: Iterable[dict]) -> str:
    """" [client-bound]" / " [noisy]" after a figure taken from such runs."""
    runs = list(runs)
    return "".join(f" [{name}]" for name, some in (("client-bound", client_bound(runs)), ("noisy", noisy(runs)))
                   if some)
