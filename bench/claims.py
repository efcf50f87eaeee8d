"""What the results say: repeats folded into a median and a range, differences judged against the
run-to-run spread, capacity at the SLO, where messages were lost and why, and the seed's claims
answered. Reads the results dict only (any key may be missing); `bench.report` lays it out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

SIGNIFICANT = 0.10  # single runs: a difference within 10% of the larger value is not significant
BUSY_POLL_PCT = 50.0  # a busy-polling loop holds a core near 100%; a waiting one stays far below
PHOTO_BYTES = 1 << 20  # claim 6 ("an iPhone photo") is settled only by messages this big or bigger
RULE_OVERLAP = "ranges overlap"
RULE_SINGLE = f"single run, within {SIGNIFICANT:.0%}"
HOLDS, FAILS, OTHER = "holds", "does not hold", "holds for a different reason"
UNMEASURED, UNSETTLED = "not measured in this run", "not settled by this run"
# kernel counters (bench/tcpstate.py) that would show TCP itself dropping data
KERNEL_DROPS = ("TCPZeroWindowDrop", "TCPRcvQDrop", "TCPBacklogDrop", "RcvPruned", "TCPAbortOnMemory")
ZERO_WINDOW = "TCPToZeroWindowAdv"

Path = tuple[str, ...] | Callable[[dict], float | None]
COST: Path = ("server", "cpu_us_per_delivery")
LOSS: Path = ("ledger", "loss_pct")
P95: Path = ("rtt_ms", "p95")
DPS: Path = ("deliveries_per_s",)
ANY = object()  # runs_of: no filter on this field


# ---------------------------------------------------------------- numbers as the report writes them

def _fixed(v: float, small: int) -> str:
    a = abs(v)
    return f"{v:,.{small if a < 1 else 2 if a < 10 else 1 if a < 100 else 0}f}"


def fmt_bytes(v: float, short: bool = False) -> str:
    """A message size, exactly: 1 MiB, 16 MiB + 1 B (`short`: 16 MiB+)."""
    n = int(v)
    if n >= 1 << 20 and n % (1 << 20) < 1024:
        rest = n % (1 << 20)
        return f"{n >> 20:,} MiB" + (("+" if short else f" + {rest:,} B") if rest else "")
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10:,} KiB"
    return f"{n:,} B"


def fmt(kind: str, v: object) -> str:
    """One number, formatted the same way everywhere in the report; "—" when nothing was measured."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        return "—" if v is None else str(v)
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "rate":
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}".removesuffix(".0")
    if kind in ("ms", "us"):
        return _fixed(v, 3 if kind == "ms" else 2)
    if kind == "pct":
        return "0" if v == 0 else "<0.01" if abs(v) < 0.01 else _fixed(v, 2)
    if kind == "pct1":
        return f"{v:.1f}"
    if kind == "mib":
        return f"{v / 2**20:,.1f}"
    if kind == "kib":
        return f"{v / 2**10:,.1f}"
    if kind == "bytes":
        return fmt_bytes(v)
    if kind == "size":  # an amount of memory or queue, rounded
        if v >= 2**20:
            return f"{v / 2**20:,.1f} MiB"
        return f"{v / 2**10:,.0f} KiB" if v >= 2**10 else f"{v:,.0f} B"
    return f"{v:g}"


def fmt_stat(kind: str, s: Stat | None) -> str:
    return fmt(kind, s.median if s else None)


def ratio(a: float, b: float) -> str:
    """How many times a is b, as the report writes it."""
    if a == 0:
        return "∞×"
    r = b / a
    return f"{r:.1f}×" if r < 10 else f"{r:,.0f}×"


# ---------------------------------------------------------------- reading runs

def get(d: object, *path: str) -> object:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def num(run: dict, path: Path) -> float | None:
    v = path(run) if callable(path) else get(run, *path)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class Stat:
    """A figure over repeats: median, min, max and how many runs gave it."""

    median: float
    lo: float
    hi: float
    n: int


def usable(runs: Iterable[dict]) -> list[dict]:
    """The runs to take figures from: the ok ones, or (when every repeat failed) what the failed ones kept."""
    runs = list(runs)
    return [r for r in runs if r.get("status") == "ok"] or runs


def fold(runs: Iterable[dict], path: Path, every: bool = False) -> Stat | None:
    """Median and range of a figure over the usable runs (`every`: failed runs included)."""
    values = [v for r in (list(runs) if every else usable(runs)) if (v := num(r, path)) is not None]
    if not values:
        return None
    return Stat(statistics.median(values), min(values), max(values), len(values))


def differ(a: Stat, b: Stat) -> str | None:
    """None when a and b differ beyond run-to-run spread, else the rule that calls it not significant."""
    if a.n > 1 and b.n > 1:
        return None if (a.hi < b.lo or b.hi < a.lo) else RULE_OVERLAP
    top = max(abs(a.median), abs(b.median))
    return None if abs(a.median - b.median) > SIGNIFICANT * top else RULE_SINGLE


def target_names(data: dict) -> list[str]:
    """Every target of the results, in bench.targets' order (the same in every report), then any other."""
    from bench.targets import TARGETS

    names = _unique([*(data.get("targets") or {}), *(r.get("target") for r in data.get("runs") or [])])
    known = list(TARGETS)
    return sorted(names, key=lambda t: (known.index(t) if t in known else len(known), names.index(t)))


def _unique(values: Iterable) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def scenario_names(data: dict) -> list[str]:
    return _unique(r.get("scenario") for r in data.get("runs") or [])


def runs_of(data: dict, scenario: object = ANY, target: object = ANY, step: object = ANY) -> list[dict]:
    return [r for r in data.get("runs") or []
            if (scenario is ANY or r.get("scenario") == scenario)
            and (target is ANY or r.get("target") == target) and (step is ANY or r.get("step") == step)]


def steps_of(data: dict, scenario: str, target: object = ANY) -> list:
    """The scenario's steps in the order they ran (a step is a rate, or a label of what it overrides)."""
    return _unique(r.get("step") for r in runs_of(data, scenario, target))


def param(data: dict, scenario: str, key: str) -> object:
    return next((v for r in runs_of(data, scenario) if (v := get(r, "params", key)) is not None), None)


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
    return [t for t in target_names(data) if str(get(data, "targets", t, "layer") or "").startswith("redis")]


def client_bound(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if get(r, "client", "client_bound") is True]


def failed(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if r.get("status") not in ("ok", None)]


def first_line(text: object) -> str:
    """A failure in one line: its first line and, when there are more, its last."""
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no failure text recorded"
    return lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")


# ---------------------------------------------------------------- steps

STEP_WORDS: dict[str, Callable[[object], str]] = {
    "rate": lambda v: f"{fmt('step', v)} msg/s per member",
    "size": lambda v: f"{fmt('bytes', v)} messages",
    "room_size": lambda v: f"rooms of {fmt('int', v)}",
    "users": lambda v: f"{fmt('int', v)} members",
}
STEP_SHORT: dict[str, Callable[[object], str]] = {
    "rate": lambda v: f"{fmt('step', v)}/s", "size": lambda v: fmt("bytes", v),
    "room_size": lambda v: f"room {fmt('int', v)}", "users": lambda v: f"{fmt('int', v)} members",
}


def step_params(run: dict) -> dict:
    """What a step overrides; a bare number (results before step labels) is a rate."""
    given = run.get("step_params")
    if isinstance(given, dict):
        return given
    step = run.get("step")
    return {"rate": step} if isinstance(step, int | float) and not isinstance(step, bool) else {}


def _step_text(run: dict, words: dict) -> str:
    given = step_params(run)
    if given:
        return ", ".join(words[k](v) if k in words else f"{k} {v}" for k, v in given.items())
    return "" if run.get("step") in (None, "") else str(run.get("step"))


def describe_step(run: dict) -> str:
    return _step_text(run, STEP_WORDS)


def short_step(run: dict) -> str:
    return _step_text(run, STEP_SHORT)


def where(run: dict) -> str:
    step = describe_step(run)
    return f"{run.get('scenario')}" + (f" at {step}" if step else "")


def sweep_axis(data: dict, scenario: str) -> str:
    """What a multi-step scenario varies, for its charts: "size", "room_size", or the load ("load")."""
    keys = {k for r in runs_of(data, scenario) for k in step_params(r)}
    return "size" if "size" in keys else "room_size" if "room_size" in keys else "load"


# ---------------------------------------------------------------- the ledger and the kernel

def buckets(ledger: dict | None) -> list[tuple[str, str, int]]:
    """Every non-delivered bucket with a count: (group, name, count)."""
    ledger = ledger or {}
    dropped = sorted((ledger.get("dropped_by_server") or {}).items())
    out = [("dropped by server", k, n) for k, n in dropped if n]
    out += [("lost with close", k, n) for k, n in sorted((ledger.get("lost_with_close") or {}).items()) if n]
    for key in ("in_flight", "unexplained"):
        if ledger.get(key):
            out.append((key.replace("_", " "), "", ledger[key]))
    return out


def causes(runs: dict | Iterable[dict]) -> str:
    """Where the lost deliveries of one or several runs went, by bucket."""
    total: dict[tuple[str, str], int] = {}
    for r in [runs] if isinstance(runs, dict) else runs:
        for group, name, n in buckets(r.get("ledger")):
            if group != "in flight":
                total[(group, name)] = total.get((group, name), 0) + n
    return "; ".join(f"{g}: {n} {fmt('int', v)}" if n else f"{g} {fmt('int', v)}"
                     for (g, n), v in total.items()) or "no counted cause"


def total(runs: Iterable[dict], *path: str) -> int:
    return int(sum(num(r, path) or 0 for r in runs))


def sum_map(runs: Iterable[dict], *path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        for k, n in (get(r, *path) or {}).items():
            if isinstance(n, int | float) and n:
                out[k] = out.get(k, 0) + int(n)
    return out


def map_text(m: dict[str, int]) -> str:
    return ", ".join(f"{k} {fmt('int', n)}" for k, n in sorted(m.items())) or "none"


def codes_text(m: dict) -> str:
    return ", ".join(f"{k}×{fmt('int', n)}" for k, n in sorted(m.items()) if n) or "none"


def kernel_text(runs: Iterable[dict]) -> str | None:
    """The kernel's TCP counters over some runs: flow control seen, drops seen (machine-wide counters)."""
    runs = [r for r in runs if isinstance(get(r, "evidence", "tcp_counters"), dict)]
    if not runs:
        return None
    tcp = sum_map(runs, "evidence", "tcp_counters")
    drops = ", ".join(f"{k} {fmt('int', tcp.get(k, 0))}" for k in KERNEL_DROPS)
    return (f"kernel TCP counters over {len(runs)} run{'s' * (len(runs) != 1)} (machine-wide): "
            f"{fmt('int', tcp.get(ZERO_WINDOW, 0))} zero-window advertisements (flow control holding a "
            f"sender); drops: {drops}")


def kernel_drops(runs: Iterable[dict]) -> int:
    tcp = sum_map(runs, "evidence", "tcp_counters")
    return sum(tcp.get(k, 0) for k in KERNEL_DROPS)


def first_loss(data: dict, target: str) -> dict | None:
    """The lossy run of `target` at the lowest offered load."""
    lossy = [r for r in runs_of(data, target=target) if (num(r, LOSS) or 0) > 0]
    return min(lossy, key=lambda r: offered_deliveries(r) or float("inf"), default=None)


# ---------------------------------------------------------------- capacity at the SLO

@dataclass
class Capacity:
    scenario: str
    target: str
    slo: float | None
    state: str = "not run"  # "not run" | "below" | "at" | "beyond" (the ramp never crossed the SLO)
    label: str = ""
    runs: list[dict] = field(default_factory=list)
    stopped_label: str = ""
    stopped_why: str = ""

    @property
    def offered(self) -> float:
        """Offered deliveries/s at capacity; 0 below the first step."""
        return max((offered_deliveries(r) or 0.0 for r in self.runs), default=0.0)


def over_slo(run: dict, slo: float) -> str | None:
    """Why a run does not count as under the SLO (the runner's rule), or None when it does."""
    if run.get("status") != "ok":
        return "the run failed: " + first_line(run.get("failure"))
    p95, loss = num(run, P95), num(run, LOSS) or 0.0
    if p95 is None:
        return "no round trip completed"
    why = [f"RTT p95 {fmt('ms', p95)} ms over the SLO ({fmt('ms', slo)} ms)"] if p95 > slo else []
    if loss > 0:
        why.append(f"loss {fmt('pct', loss)}% ({causes(run)})")
    return "; ".join(why) or None


def capacity(data: dict, scenario: str, target: str) -> Capacity:
    """The largest step before the first one whose runs were not all under the SLO with zero loss."""
    slo = num({"v": param(data, scenario, "slo_p95_ms")}, ("v",))
    cap = Capacity(scenario, target, slo)
    if slo is None or not runs_of(data, scenario, target):
        return cap
    cap.state = "below"
    for step in steps_of(data, scenario, target):
        runs = runs_of(data, scenario, target, step)
        why = next((w for r in runs if (w := over_slo(r, slo))), None)
        if why:
            cap.stopped_label, cap.stopped_why = describe_step(runs[0]), why
            break
        cap.state, cap.label, cap.runs = "at", describe_step(runs[0]), runs
    else:
        cap.state = "beyond"
    return cap


def ramp_scenarios(data: dict) -> list[str]:
    return [s for s in scenario_names(data) if param(data, s, "slo_p95_ms") is not None]


def capacity_text(cap: Capacity) -> str:
    if cap.state == "not run":
        return "not run"
    if cap.state == "below":
        return f"below the first step ({cap.stopped_label})"
    more = " (the ramp never crossed the SLO: at least this)" if cap.state == "beyond" else ""
    return f"{cap.label} ({fmt_stat('rate', fold(cap.runs, DPS))} deliveries/s){more}"


# ---------------------------------------------------------------- server cost per delivery

def costs(data: dict, scenario: str) -> tuple[str, dict[str, Stat]]:
    """Server µs/delivery per target at the first step every target ran (the same offered load for all)."""
    ran = [t for t in target_names(data) if runs_of(data, scenario, t)]
    common = [s for s in steps_of(data, scenario) if all(runs_of(data, scenario, t, s) for t in ran)]
    if not ran or not common:
        return "", {}
    runs = runs_of(data, scenario, step=common[0])
    found = {t: s for t in ran if (s := fold(runs_of(data, scenario, t, common[0]), COST))}
    return (where(runs[0]) if len(steps_of(data, scenario)) > 1 else scenario), found


def cost_sentence(data: dict, scenario: str) -> str | None:
    at, by_target = costs(data, scenario)
    if not by_target:
        return None
    order = sorted(by_target, key=lambda t: by_target[t].median)
    best = by_target[order[0]]
    parts = [f"{order[0]} {fmt_stat('us', best)} µs"]
    for t in order[1:]:
        rule = differ(best, by_target[t])
        tail = f"not significant, {rule}" if rule else ratio(best.median, by_target[t].median)
        parts.append(f"{t} {fmt_stat('us', by_target[t])} µs ({tail})")
    return f"{at}: " + ", ".join(parts)


def summary(data: dict) -> str:
    """The verdict paragraph: cost per delivery, capacity at the SLO, where each target first lost."""
    runs, targets, scenarios = data.get("runs") or [], target_names(data), scenario_names(data)
    if not runs:
        return (f"No run was measured (status: {data.get('status') or 'unknown'}); "
                f"targets configured: {', '.join(map(str, targets)) or 'none'}.")
    out = [f"{len(runs)} runs of {', '.join(map(str, scenarios))} against {', '.join(map(str, targets))}."]
    cost = [s for sc in scenarios if (s := cost_sentence(data, sc))]
    if cost:
        out.append("Server CPU per delivery, cheapest first (× = times the cheapest): " + "; ".join(cost)
                   + ".")
    for sc in ramp_scenarios(data):
        caps = [capacity(data, sc, t) for t in targets]
        out.append(f"Capacity at the SLO ({sc}: RTT p95 under {fmt('ms', caps[0].slo)} ms, no loss): "
                   + "; ".join(f"{cap.target} {capacity_text(cap)}" for cap in caps) + ".")
    lost = []
    for t in targets:
        r, n = first_loss(data, t), len(runs_of(data, target=t))
        if r is not None:
            lost.append(f"{t} in {where(r)} ({fmt('rate', offered_deliveries(r))} deliveries/s offered): "
                        f"{fmt('pct', num(r, LOSS))}% lost, {causes(r)}")
        elif n:
            lost.append(f"{t} lost nothing in {n} run{'s' * (n != 1)}")
    if lost:
        out.append("First loss: " + "; ".join(lost) + ".")
    unexplained = total(runs, "ledger", "unexplained")
    out.append(f"{fmt('int', unexplained)} deliveries are unexplained by the ledger"
               + (" (in red in the loss autopsy)." if unexplained else "."))
    return " ".join(out)


# ---------------------------------------------------------------- the seed's claims

@dataclass
class Claim:
    number: str
    claim: str
    experiment: str
    figures: list[str]
    verdict: str
    why: str = ""


def claims(data: dict) -> list[Claim]:
    """One entry per numbered claim of SEED.md (claim 7's four rows as 7a–7d)."""
    speed, scale = claim_speed(data), claim_scale(data)
    return [claim_loop(data), claim_busy(data), claim_buffered(data), claim_where(data), claim_overflow(data),
            claim_photo(data), speed, scale, *claim_unmeasurable(), claim_conclusion(speed, scale)]


def ran(data: dict, fam: str | None = None) -> list[str]:
    return [t for t in target_names(data) if runs_of(data, target=t) and fam in (None, family(data, t))]


def picked(data: dict, target: str, test: Callable[[dict], bool]) -> list[dict]:
    return [r for r in runs_of(data, target=target) if test(r)]


def is_idle(run: dict) -> bool:
    return num(run, ("params", "rate")) == 0 and not num(run, ("params", "burst"))


def is_burst(run: dict) -> bool:
    return (num(run, ("params", "burst")) or 0) > 0


def is_slow(run: dict) -> bool:
    return (num(run, ("params", "nonreading")) or 0) > 0


def claim_loop(data: dict) -> Claim:
    both = [f"{t} ({family(data, t)}, fan-out {get(data, 'targets', t, 'fanout') or 'unknown'}): "
            f"{len(runs_of(data, target=t))} runs" for t in ran(data)]
    return Claim("1", "FastAPI needs a `while` loop because it has no event-driven consumer; Channels calls "
                 "methods on events.",
                 "None can: it describes the programming model, not a behaviour. Both models run side by "
                 "side in every scenario; what each costs is claim 7a.",
                 both, UNMEASURED, "A statement about the code's shape; read django_chat/ and fastapi_chat/.")


def claim_busy(data: dict) -> Claim:
    figures, verdicts, idle_seen = [], [], False
    for t in ran(data):
        runs = picked(data, t, lambda r: num(r, ("server", "cpu_pct_mean")) is not None)
        idle = [r for r in runs if is_idle(r)]
        if not idle and family(data, t) == "Channels":
            continue  # the claim is about the FastAPI loop; Channels only for comparison when idle ran
        r = min(idle or runs, key=lambda r: offered_deliveries(r) or 0.0, default=None)
        if r is None:
            continue
        idle_seen |= bool(idle)
        cpu = num(r, ("server", "cpu_pct_mean"))
        per_conn = num(r, ("server", "rss_per_connection_bytes")) if idle else None
        figures.append(f"{t}: {fmt('pct1', cpu)}% of a core (mean server CPU) with "
                       f"{get(r, 'params', 'users')} members connected and "
                       f"{fmt('rate', offered_deliveries(r))} deliveries/s offered "
                       f"({where(r)}{'' if idle else ', its lowest load'})"
                       + (f"; {fmt('kib', per_conn)} KiB of server memory per connection" * bool(per_conn)))
        if family(data, t) == "FastAPI":
            verdicts.append(cpu < BUSY_POLL_PCT)
    if not verdicts:
        verdict, why = UNMEASURED, "No FastAPI run recorded server CPU; the `idle` scenario measures it."
    elif all(verdicts):
        verdict, why = HOLDS, ("A loop that polled would hold a core near 100% whatever the load; every "
                               f"FastAPI target stayed under {BUSY_POLL_PCT:.0f}% "
                               + ("with its members connected and silent." if idle_seen else
                                  "at its lowest load (the `idle` scenario measures it with no load)."))
    else:
        verdict, why = UNSETTLED, ("At its lowest load here a FastAPI server was already busy; the `idle` "
                                   "scenario (connections, no messages) separates waiting from working.")
    return Claim("2", "The receive loop does not busy-poll: `receive_text()` waits, like `input()`.",
                 "Server CPU with members connected and nothing (or little) to do: the `idle` scenario, else "
                 "the FastAPI targets' lowest offered load.", figures, verdict, why)


def claim_buffered(data: dict) -> Claim:
    figures, unexplained, burst_seen = [], 0, False
    for t in ran(data):
        bursts = picked(data, t, is_burst)
        if family(data, t) == "Channels":
            if bursts:
                figures.append(f"for comparison, {t} (Channels) in the same burst: "
                               f"{fmt('pct', fold(bursts, LOSS).median)}% lost ({causes(bursts)})")
            continue
        runs = bursts or runs_of(data, target=t)
        burst_seen |= bool(bursts)
        u = total(runs, "ledger", "unexplained")
        unexplained += u
        what = (f"burst of {fmt('int', get(bursts[0], 'params', 'burst'))} messages per member" if bursts
                else "every scenario")
        lossy = [r for r in runs if (num(r, LOSS) or 0) > 0]
        expected = fmt("int", total(runs, "ledger", "expected"))
        figures.append(f"{t} ({what}): {expected} expected deliveries in {len(runs)} "
                       f"run{'s' * (len(runs) != 1)}, {len(lossy)} with losses, {fmt('int', u)} unexplained"
                       + (f"; {causes(lossy)}" if lossy else ""))
    if not ran(data, "FastAPI"):
        verdict, why = UNMEASURED, "No FastAPI target ran; the `burst` scenario tests it directly."
    elif unexplained:
        verdict, why = UNSETTLED, f"{fmt('int', unexplained)} deliveries are unexplained (see the autopsy)."
    else:
        verdict, why = HOLDS, (("Members sent their burst the moment their room was full, faster than the "
                                "loop reads. " if burst_seen else "")
                               + "A message that vanished before the loop read it would be missing for its "
                                 "whole room and unexplained; none was. Where they wait is claim 4.")
    return Claim("3", "Messages sent before the loop starts waiting are not lost: they wait in a buffer.",
                 "The `burst` scenario (every member sends back to back before the loop can keep up), else "
                 "every FastAPI run's ledger: an inbound message lost before the loop read it would show up "
                 "as unexplained (neither dropped, nor closed, nor in flight).", figures, verdict, why)


def claim_where(data: dict) -> Claim:
    figures: list[str] = []
    dropped_at: set[tuple] = set()
    for t in ran(data, "Channels"):
        lossy = [r for r in runs_of(data, target=t) if sum_map([r], "ledger", "dropped_by_server")]
        dropped_at |= {(r.get("scenario"), r.get("step")) for r in lossy}
        if lossy:
            figures.append(f"{t}: dropped by the server (member backlog "
                           f"{get(data, 'targets', t, 'config', 'member_backlog') or '?'}): "
                           + "; ".join(f"{where(r)}: {map_text(sum_map([r], 'ledger', 'dropped_by_server'))} "
                                       f"({fmt('pct', num(r, LOSS))}% lost)" for r in lossy[:4])
                           + ("; …" if len(lossy) > 4 else ""))
    seeds = [t for t in ran(data, "FastAPI") if is_seed(data, t)]
    seed_lossless = bool(seeds)
    for t in seeds:
        same = picked(data, t, lambda r: (r.get("scenario"), r.get("step")) in dropped_at)
        lossy = [r for r in same if (num(r, LOSS) or 0) > 0]
        seed_lossless &= bool(same) and not lossy
        if same:
            figures.append(f"{t} at the same steps: {len(same)} run{'s' * (len(same) != 1)}, "
                           + (f"{len(lossy)} lost messages ({causes(lossy)})" if lossy else "0 lost"))
        worst = max(picked(data, t, lambda r: r.get("status") == "ok" and not num(r, LOSS)),
                    key=lambda r: num(r, P95) or 0.0, default=None)
        if worst is not None and num(worst, P95) is not None:
            figures.append(f"{t}: with no loss its RTT p95 reached {fmt('ms', num(worst, P95))} ms "
                           f"({where(worst)})")
    slow = [r for t in ran(data) for r in picked(data, t, is_slow)]
    for r in slow:
        q = get(r, "socket_queues_peak", "server_send_q")
        low = min(r.get("timeline") or [0]) if r.get("timeline") else None
        figures.append(f"{r.get('target')} with a member that never reads ({where(r)}): "
                       f"{fmt('pct', num(r, LOSS))}% lost, "
                       f"{fmt('pct', num(r, ('ledger', 'in_flight_pct')))}% in flight at the end, RTT p95 "
                       f"{fmt('ms', num(r, P95))} ms, slowest second {fmt('rate', low)} of "
                       f"{fmt('rate', offered_deliveries(r))} deliveries/s offered"
                       + (f", peak server Send-Q {fmt('size', q)}" if isinstance(q, int | float) else ""))
    if (text := kernel_text(slow + [r for r in data.get("runs") or [] if is_burst(r)])):
        figures.append(text)
    if dropped_at and seed_lossless:
        verdict, why = OTHER, ("Both halves say where messages wait, but the consequence is the reverse of "
                               "the blog's: Channels' queue (the channel layer) is bounded and dropped "
                               "deliveries, while the seed's loop, which waits on uvicorn and TCP flow "
                               "control, lost none at the same load; it slowed its senders instead.")
    elif dropped_at and seeds:
        verdict, why = UNSETTLED, "Both the channel layer and the seed's loop lost messages at those steps."
    elif dropped_at:
        verdict, why = UNMEASURED, "The seed's loop (target fastapi-seed) did not run: only Channels' half."
    elif slow:
        verdict, why = UNSETTLED, ("The non-reading member's messages waited (in flight) on every target; no "
                                   "bounded queue overflowed in this run's window.")
    else:
        verdict, why = UNMEASURED, ("No queue filled here; the `slow` (a member that does not read) and "
                                    "`burst` scenarios show where each stack's messages wait.")
    return Claim("4", "FastAPI has no message buffer of its own: it relies on the OS TCP receive buffer; "
                 "Channels keeps its queue in the channel layer.",
                 "Where undelivered messages ended, per target, at the same load: Channels' bounded layer "
                 "queue counts as dropped by the server (backlog_full); a loop waiting on TCP loses nothing "
                 "but its latency grows. Directly: the `slow` and `burst` scenarios, with the kernel's TCP "
                 "counters.",
                 figures, verdict, why)


def claim_overflow(data: dict) -> Claim:
    runs = data.get("runs") or []
    lossy = [r for r in runs if (num(r, LOSS) or 0) > 0]
    figures = []
    for t in ran(data):
        mine = [r for r in lossy if r.get("target") == t]
        if mine:
            figures.append(f"{t}: {len(mine)} of {len(runs_of(data, target=t))} runs lost messages ("
                           + ", ".join(f"{where(r)} {fmt('pct', num(r, LOSS))}%" for r in mine[:4])
                           + (", …" if len(mine) > 4 else "") + f"); {causes(mine)}")
    if (text := kernel_text(runs)):
        figures.append(text)
    redis = redis_targets(data)
    figures.append("Redis targets in this run: "
                   + (", ".join(redis) or "none (the Redis half needs django-redis, fastapi-redis)"))
    unexplained = total(lossy, "ledger", "unexplained")
    if not lossy:
        verdict, why = UNMEASURED, ("Nothing was lost in this run; `slow`, `burst` and `payload` push "
                                    "buffers past their bounds.")
    elif unexplained:
        verdict, why = UNSETTLED, f"{fmt('int', unexplained)} lost deliveries have no counted cause."
    else:
        kernel_clean = kernel_text(runs) and not kernel_drops(runs)
        verdict, why = FAILS, ("Messages were lost, but every lost delivery sits in a counted application "
                               "bucket (a bounded per-member backlog, or a closed connection) and none is "
                               "unexplained: TCP lost none"
                               + (" (the kernel counted no drop)." if kernel_clean else ".")
                               + ("" if redis else " Whether Redis helps is not measured in this run."))
    return Claim("5", "When that buffer overflows, messages are lost, so FastAPI needs Redis.",
                 "The loss autopsy of every run that lost messages: its bucket names the cause (dropped by "
                 "the server by cause, lost with a close code, or unexplained), beside the kernel's TCP drop "
                 "counters. Redis: targets django-redis, fastapi-redis.", figures, verdict, why)


def claim_photo(data: dict) -> Claim:
    runs = data.get("runs") or []
    largest = max((num(r, ("params", "size")) or 0 for r in runs), default=0)
    sysctls = get(data, "environment", "sysctls") or {}
    tcp_rmem = str(sysctls.get("net.ipv4.tcp_rmem") or "").split()
    figures = [f"largest message in this run: {fmt('bytes', largest)}"]
    if sysctls:
        grows = (f" (autotuning may grow a socket's receive buffer to {fmt('bytes', int(tcp_rmem[2]))})"
                 if len(tcp_rmem) == 3 and tcp_rmem[2].isdigit() else "")
        figures.append(f"this machine: net.core.rmem_max = {sysctls.get('net.core.rmem_max')}, "
                       f"net.ipv4.tcp_rmem = {' '.join(tcp_rmem)}{grows}")
    big = [r for r in runs if (num(r, ("params", "size")) or 0) >= PHOTO_BYTES]
    limit = lambda r: num(data, ("targets", r.get("target"), "config", "max_message_bytes"))  # noqa: E731
    within = [r for r in big if limit(r) is None or num(r, ("params", "size")) <= limit(r)]
    for size, kind in _unique((num(r, ("params", "size")), get(r, "params", "kind")) for r in within):
        group = [r for r in within if (num(r, ("params", "size")), get(r, "params", "kind")) == (size, kind)]
        got = "; ".join(f"{r.get('target')} {fmt('int', get(r, 'ledger', 'delivered'))} of "
                        f"{fmt('int', get(r, 'ledger', 'expected'))} delivered, "
                        f"{fmt('pct', num(r, LOSS))}% lost" + f" ({causes(r)})" * ((num(r, LOSS) or 0) > 0)
                        for r in group)
        figures.append(f"{fmt('bytes', size)} {kind or ''} messages ({group[0].get('scenario')}): {got}")
    over = [r for r in big if r not in within]
    for size in _unique(num(r, ("params", "size")) for r in over):
        group = [r for r in over if num(r, ("params", "size")) == size]
        closed = "; ".join(f"{r.get('target')} closed connections with "
                           f"{codes_text(get(r, 'server', 'delta', 'close_codes') or {})}" for r in group)
        figures.append(f"{fmt('bytes', size)} messages, over the {fmt('bytes', limit(group[0]))} limit: "
                       f"refused; {closed}")
    if (text := kernel_text(big)):
        figures.append(text)
    lossy = [r for r in within if (num(r, LOSS) or 0) > 0]
    if not big:
        verdict, why = UNMEASURED, "No photo-sized message was sent; the `payload` scenario sends them."
    elif not lossy:
        refused = "; larger ones were refused with a close code, visibly, not lost silently."
        verdict, why = FAILS, ("Photo-sized messages within the servers' message-size limit were delivered "
                               "with no loss" + (refused if len(within) < len(big) else "."))
    elif total(lossy, "ledger", "unexplained"):
        verdict, why = UNSETTLED, "Some photo-sized losses have no counted cause."
    else:
        verdict, why = OTHER, ("Photo-sized messages were lost, but by the application's limits "
                               "(message-size close codes or a bounded backlog), not by a TCP buffer "
                               "overflowing.")
    return Claim("6", "The buffer is only hundreds of KB to a few MB (rmem_max = 212992 on the author's "
                 "machine): sending iPhone photos often enough overflows it and loses messages.",
                 "The `payload` scenario: loss and close codes against message size, up to multi-megabyte "
                 "images and past the servers' message-size limit.", figures, verdict, why)


def _cheapest(targets: list[str], stats: dict[str, Stat]) -> str | None:
    have = [t for t in targets if t in stats]
    return min(have, key=lambda t: stats[t].median) if have else None


def claim_speed(data: dict) -> Claim:
    figures, outcomes = [], []
    for sc in scenario_names(data):
        at, by_target = costs(data, sc)
        ch, fa = _cheapest(ran(data, "Channels"), by_target), _cheapest(ran(data, "FastAPI"), by_target)
        if not (ch and fa):
            continue
        rule = differ(by_target[ch], by_target[fa])
        cheaper, dearer = (fa, ch) if by_target[fa].median < by_target[ch].median else (ch, fa)
        tail = (f"not significant, {rule}" if rule else
                f"{cheaper} {ratio(by_target[cheaper].median, by_target[dearer].median)} cheaper")
        figures.append(f"{at}: server CPU per delivery {fa} {fmt_stat('us', by_target[fa])} µs vs {ch} "
                       f"{fmt_stat('us', by_target[ch])} µs ({tail})")
        outcomes.append(None if rule else family(data, cheaper))
    for sc in ramp_scenarios(data):
        figures.append(f"capacity at the SLO ({sc}): " + "; ".join(
            f"{t} {capacity_text(capacity(data, sc, t))}" for t in ran(data)))
    if not outcomes:
        verdict, why = UNMEASURED, "This run has no scenario where both a Channels and a FastAPI target ran."
    elif all(o == "FastAPI" for o in outcomes):
        verdict, why = HOLDS, ("FastAPI costs less server CPU per delivery in every scenario. Not because it "
                               "is \"all async\": both stacks are asynchronous end to end; the "
                               "django-uvicorn target separates the server's share from the framework's.")
    elif all(o == "Channels" for o in outcomes):
        verdict, why = FAILS, "Channels costs less server CPU per delivery in every scenario."
    else:
        verdict, why = UNSETTLED, ("The cheaper stack differs between scenarios, or the difference is not "
                                   "significant.")
    return Claim("7a", "Speed: FastAPI (all async) is faster.",
                 "Server CPU µs per delivery per scenario, at the first step every target ran (valid even "
                 "when the load generator is the limit); capacity at the SLO.", figures, verdict, why)


def claim_scale(data: dict) -> Claim:
    figures, best = [], {}
    for sc in ramp_scenarios(data):
        for t in ran(data):
            cap = capacity(data, sc, t)
            if cap.state == "not run":
                continue
            figures.append(f"{sc}: {t} {capacity_text(cap)}"
                           + (f"; stopped at {cap.stopped_label}: {cap.stopped_why}" * bool(cap.stopped_why)))
            fam = family(data, t)
            best[fam] = max(best.get(fam, 0.0), cap.offered)
    figures.append("processes per target: " + ", ".join(
        f"{t} {get(data, 'targets', t, 'processes') or '?'}" for t in ran(data)))
    note = "" if redis_targets(data) else (" Scale-out across processes with Redis is not measured in this "
                                           "run (django-redis, fastapi-redis).")
    if len(best) < 2:
        verdict, why = UNMEASURED, "No ramp ran for both stacks; the `ramp` scenario measures it." + note
    elif best["Channels"] > best["FastAPI"]:
        verdict, why = HOLDS, "Channels reached a higher load under the SLO." + note
    elif best["Channels"] < best["FastAPI"]:
        verdict, why = FAILS, "FastAPI reached a higher load under the SLO than Channels." + note
    else:
        verdict, why = UNSETTLED, "Both stacks reached the same step under the SLO." + note
    return Claim("7b", "Scalability: Channels (easy Redis) is more scalable.",
                 "Capacity at the SLO on the ramp: the largest step with RTT p95 under the SLO and no loss; "
                 "scale-out: django-redis and fastapi-redis with several processes.", figures, verdict, why)


def claim_unmeasurable() -> list[Claim]:
    return [
        Claim("7c", "Code clarity: event-driven Channels is clearer.", "None: a matter of reading the code "
              "(django_chat/ and fastapi_chat/ implement the same contract).", [], UNMEASURED,
              "Not a performance statement."),
        Claim("7d", "Authentication: Channels ships auth middleware, so it is easier.", "None: a feature "
              "comparison, not a performance one.", [], UNMEASURED, "Not a performance statement."),
    ]


def claim_conclusion(speed: Claim, scale: Claim) -> Claim:
    if speed.verdict == HOLDS and scale.verdict == HOLDS:
        verdict, why = HOLDS, "Both halves of the trade-off hold in this run."
    elif speed.verdict == HOLDS and scale.verdict == FAILS:
        verdict, why = FAILS, ("In this run the FastAPI targets are both cheaper per delivery and reach a "
                               "higher load under the SLO: there is no trade-off to make on one process.")
    elif FAILS in (speed.verdict, scale.verdict):
        verdict, why = FAILS, f"Speed {speed.verdict}; scalability {scale.verdict}: not the trade-off it is."
    else:
        verdict, why = UNMEASURED, f"Follows from 7a ({speed.verdict}) and 7b ({scale.verdict})."
    figures = [f"7a: {f}" for f in speed.figures[:1]] + [f"7b: {f}" for f in scale.figures[:-1]]
    return Claim("8", "Use FastAPI for small systems where speed matters most, Channels where scalability "
                 "matters.",
                 "Follows from 7a (speed) and 7b (scalability).", figures, verdict, why)


KNOWN = [
    "TCP does not drop data when a receive buffer is full: flow control stalls the sender (RFC 9293, "
    "zero-window probing). rmem_max caps only an explicit SO_RCVBUF; these servers set none, so "
    "net.ipv4.tcp_rmem autotuning governs. Loss, where it happens, happens in application layers above TCP.",
    "uvicorn 0.54 (sans-I/O websockets protocol): pauses reading after each message until the app reads (TCP "
    "backpressure, no loss); `await send` blocks while the transport's write buffer is over 64 KiB, so one "
    "slow client stalls the seed's sequential broadcast for everyone; messages over ws_max_size (16 MiB) "
    "close with 1009.",
    "daphne 4.2.x: inbound frames go to an unbounded queue (no backpressure); outbound data to a slow client "
    "piles up in an unbounded Twisted buffer (memory grows); messages over 1 MiB (the default since 4.2.2) "
    "abort the TCP connection without a close frame (the client sees 1006).",
    "Channels layers: each channel holds at most `capacity` (default 100) messages; group_send silently "
    "skips a full channel (in-memory: no log at all; channels_redis: an INFO log line); messages older than "
    "`expiry` (60 s) are discarded.",
]
