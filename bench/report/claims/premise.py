"""Claim 0, the blog's premise: Django's synchronous parts (database access, middleware) make Channels the
bottleneck, and FastAPI's async-first stack removes it. Tested on the app targets (signed-in members, every
message stored) against the relay targets of the same stack, each at its searched capacity."""

from __future__ import annotations

from bench.record import Results, searched
from bench.report.appmode import (
    app_targets,
    at_capacity,
    backing_us,
    capacity_value,
    connections,
    cost_at_capacity,
    on_postgres,
    relay_of,
    stages,
    sweep,
)
from bench.report.claims.auth import RESTARTED, WARM, handshake_cpu_ms, storms
from bench.report.claims.base import FAILS, HOLDS, OTHER, UNMEASURED, UNSETTLED, Claim, Table, Verdict
from bench.report.claims.knob import knob_line, sweep_effect, sweep_table
from bench.report.layers import profiled
from bench.report.numbers import FmtKind, fmt
from bench.report.repeats import differ, held_capacity
from bench.report.runs import cautions, sampled
from bench.report.steps import where
from bench.report.tuned import best_configuration

THREAD_POOL, CONNECTION_POOL = "the thread pool", "the connection pool"
DATABASE, FRAMEWORK, NONE = "the database", "the framework", "none"
STACK_APP = {"Channels": "django-app", "FastAPI": "fastapi-app"}  # the PostgreSQL app target of each stack


def change(before: float | None, after: float | None, kind: FmtKind, unit: str) -> str:
    """"1,200 → 800 deliveries/s (0.67×)": relay first, app mode after."""
    text = f"{fmt(kind, before)} → {fmt(kind, after)}{unit}"
    return text + (f" ({after / before:.2f}×)" if before and after is not None else "")


def delta_line(data: Results, app: str) -> str:
    """Relay → app: server CPU per delivery and capacity at the SLO, each at its own searched capacity."""
    relay = relay_of(data, app)
    runs = at_capacity(data, app)
    cost = change(cost_at_capacity(data, relay) if relay else None, cost_at_capacity(data, app), "us", " µs")
    cap = change(capacity_value(data, relay) if relay else None, capacity_value(data, app), "rate", " deliveries/s")
    db = backing_us(runs, "database")
    own = f" (the database's own CPU included: {fmt('us', db)} µs)" if db is not None else ""
    return (f"{relay or '(relay target not run)'} → {app}: server CPU per delivery at capacity {cost}{own}; "
            f"capacity at the SLO {cap}{cautions(runs)}")


def executing_line(data: Results, app: str) -> str | None:
    """What the database itself spent on each stored message at capacity (pg_stat_statements: the INSERT and
    its foreign-key check), beside the database call's wall time as the server timed it."""
    edge = at_capacity(data, app)
    counted = [(r, st["storing"]) for r in edge if (st := r.db_statements) and "storing" in st]
    runs = [r for r, _ in counted]
    if not runs and any(r.db_statements is None and on_postgres(r) for r in edge):
        return f"{app} at capacity: the database's statements were not counted (no pg_stat_statements figures)"
    stored = sum(r.server.delta.app.messages_stored for r in runs if r.server.delta)
    if not stored:
        return None
    calls, ms = sum(st.calls for _, st in counted), sum(st.ms for _, st in counted)
    s = stages(runs)
    return (f"{app} at capacity, the database itself: {calls / stored:.1f} statements and "
            f"{fmt('us', 1e3 * ms / stored)} µs executing them per stored message (pg_stat_statements)"
            + (f", of the {fmt('us', s.db_us)} µs the database call takes as the server times it" if s else ""))


def history_line(data: Results, app: str) -> str | None:
    """Members rejoining a busy room and asking for its stored history (scenario `history`)."""
    runs = data.runs_of("history", app)
    if not runs:
        return None
    r = runs[-1]
    return (f"{app}, history on join (`?history={r.params.history}`): p50 {fmt('ms', r.history_ms.p50)} / p95 "
            f"{fmt('ms', r.history_ms.p95)} ms for {fmt('int', r.history_ms.count)} joins, "
            f"{fmt('int', r.history_received)} stored messages handed over; the room's RTT p95 meanwhile "
            f"{fmt('ms', r.rtt_ms.p95)} ms{cautions([r])}")


def database_line(data: Results, app: str) -> str | None:
    """The app target's connections to its database: sampled through its runs (PostgreSQL), else before and
    after its run at capacity."""
    if seen := connections(data, app):
        back = ("every run's connections were back to idle once the servers settled" if not seen.left else
                f"{len(seen.left)} run{'s' * (len(seen.left) != 1)} left some active or in a transaction "
                f"({', '.join(where(r) for r in seen.left)})")
        return (f"{app}: PostgreSQL connections to the chat database, {sampled(seen.runs)} through "
                f"{len(seen.runs)} runs: at most {fmt('int', seen.peak)} open ({where(seen.top)}), "
                f"{fmt('int', seen.peak_active)} active at once at most; {fmt('int', seen.last.after)} open after "
                f"its last run; {back}")
    db = next((r.evidence.database for r in reversed(at_capacity(data, app)) if r.evidence.database), None)
    if db is None:
        return None
    return (f"{app}: {db.engine} connections {fmt('int', db.connections_before)} before the run, "
            f"{fmt('int', db.connections_after)} after" + (f" ({db.note})" if db.note else ""))


def middleware_line(data: Results) -> str | None:
    """The premise's other half, middleware: what a signed-in handshake costs each app target in the sign-in
    storm (Channels signs in through Django's session and auth, wrapped as ASGI middleware), on servers already
    up and right after a restart."""
    cpu = {app: {kind: v for kind, runs in found.items() if (v := handshake_cpu_ms(runs)) is not None}
           for app in app_targets(data) if (found := storms(data, app))}
    if not any(WARM in v for v in cpu.values()):
        return None
    return ("sign-in, server CPU per signed-in handshake in the sign-in storm (claim 7d): "
            + ", ".join(f"{t} ≤ {fmt('ms', v[WARM])} ms" + (f" ({fmt('ms', v[RESTARTED])} ms {RESTARTED})"
                                                            if RESTARTED in v else "")
                        for t, v in cpu.items() if WARM in v))


def connections_table(data: Results) -> Table | None:
    """Per app target on PostgreSQL: its database connections before, during (sampled) and after its runs."""
    rows, runs = [], []
    for app in app_targets(data):
        if not (seen := connections(data, app)):
            continue
        runs += seen.runs
        left, last = len(seen.left), seen.last
        rows.append([app, fmt("int", len(seen.runs)), fmt("int", seen.before),
                     f"{fmt('int', seen.peak)} ({where(seen.top)})", fmt("int", seen.peak_active),
                     f"{fmt('int', last.after)} ({', '.join(f'{n} {s}' for s, n in last.after_states.items()) or '—'})",
                     "yes" if not left else f"no: {left} run{'s' * (left != 1)}"])
    if not rows:
        return None
    return Table(f"Connections to the chat database (PostgreSQL's pg_stat_activity, {sampled(runs)})",
                 ["target", "runs", "before the first", "at most (where)", "active at once, at most",
                  "after the last (by state)", "back to idle after every run"], rows)


def bottleneck(data: Results, app: str) -> tuple[str, str]:
    """What bounds the app target, as measured: "none" when storing did not lower the capacity beyond the
    search's tolerance; else the largest part of a stored message's time, µs per message: waiting for a
    worker (the thread pool), the database call, or the framework and server layers' CPU (the profile's
    µs per delivery × the deliveries of one message)."""
    relay, cap = relay_of(data, app), searched(data, app)
    before, after = (capacity_value(data, relay) if relay else None), capacity_value(data, app)
    if cap and before and after is not None and after >= before * (1 - cap.tolerance):
        return NONE, (f"storing did not lower {app}'s capacity beyond the search's ±{cap.tolerance:.0%} "
                      f"({fmt('rate', before)} → {fmt('rate', after)} deliveries/s)")
    s = stages(at_capacity(data, app))
    run = profiled(data, app)
    parts, said = {}, []
    if s and s.wait_us is not None:
        pool = THREAD_POOL if "thread" in s.wait_for else CONNECTION_POOL
        parts[pool] = s.wait_us
        said.append(f"waiting for {pool} {fmt('us', s.wait_us)} (wall)")
    if s and s.db_us is not None:
        parts[DATABASE] = s.db_us
        said.append(f"the database call {fmt('us', s.db_us)} (wall)")
    if run and run.profile:
        layers = run.profile.layers_us
        parts[FRAMEWORK] = (layers.get("framework", 0) + layers.get("server", 0)) * run.params.room_size
        said.append(f"the framework and server layers {fmt('us', parts[FRAMEWORK])} (CPU, for the "
                    f"{run.params.room_size} deliveries of one message)")
    if not parts:
        return "", f"{app}: no stage or profile was measured"
    top = max(parts, key=lambda part: parts[part])
    return top, f"{app}, µs per stored message: " + ", ".join(said) + f"; the largest is {top}"


def claim_premise(data: Results) -> Claim:
    figures: list[str] = []
    for app in app_targets(data):
        figures.append(delta_line(data, app))
        if s := stages(at_capacity(data, app)):
            figures.append(f"{app} at capacity, " + s.text())
        if executing := executing_line(data, app):
            figures.append(executing)
        figures += [x for x in (database_line(data, app), history_line(data, app), knob_line(data, app)) if x]
    if signin := middleware_line(data):
        figures.append(signin)
    if STACK_APP["Channels"] in app_targets(data) and not sweep(data, STACK_APP["Channels"]):
        figures.append("The ASGI_THREADS sweep did not run here: it is in `make bench-full`, or `python -m bench "
                       "--targets django-app --scenarios ramp,threads`.")
    found = {stack: bottleneck(data, app) for stack, app in STACK_APP.items() if app in app_targets(data)}
    figures += [f"{stack}: bottleneck measured: {name or 'not settled'} ({why})"
                for stack, (name, why) in found.items()]
    verdict, why = premise_verdict(data, found)
    if at_best := tuned_reading(data):
        why += " " + at_best
    if knob := sweep_effect(data, STACK_APP["Channels"]):
        why += f" The knob a Django user turns first: {knob}."
    return Claim("0", "The premise: Django's synchronous parts (database access, middleware) make Channels the "
                 "bottleneck; FastAPI's async-first stack removes it.",
                 "The same chat on both stacks with signed-in members and every message stored in PostgreSQL (the "
                 "app targets `django-app`, `fastapi-app`), its capacity at the SLO searched like the relay "
                 "targets' and profiled at it; per stored message, the servers' /stats time it: waiting for a "
                 "worker (Django: its database thread), the database call, and the event loop's lag. PostgreSQL's "
                 "connections are sampled through every run (do they come back?); in `make bench-full`, Django's "
                 "thread pool (ASGI_THREADS: 1, daphne's default, 64) is swept at the capacity its search found.",
                 figures, verdict, why, tables=[x for x in (connections_table(data), sweep_table(data)) if x])


def relay_gap(data: Results) -> str:
    """"; as relays, without sign-in or database, 1,680 and 18,520": the gap the app mode starts from."""
    relay = {stack: capacity_value(data, t) if (t := relay_of(data, app)) else None for stack, app in STACK_APP.items()}
    if None in relay.values():
        return ""
    kept = {stack: caps / base for stack, app in STACK_APP.items()
            if (base := relay[stack]) and (caps := capacity_value(data, app)) is not None}
    share = (f"; storing kept {kept['Channels']:.0%} of Channels' relay capacity and {kept['FastAPI']:.0%} of "
             "FastAPI's" if len(kept) == 2 else "")
    return (f"; as relays, with no sign-in and no database, {fmt('rate', relay['Channels'])} and "
            f"{fmt('rate', relay['FastAPI'])}{share}")


def tuned_reading(data: Results) -> str:
    """The premise re-read with each stack at its best in app mode (CONTRACT.md "Tuned"): whether the verdict on
    stock holds once the tuned targets that ran are counted; "" when none of them held a capacity."""
    apps = app_targets(data)
    ch_best, fa_best = (best_configuration(data, STACK_APP[s]) if STACK_APP[s] in apps else None
                        for s in ("Channels", "FastAPI"))
    if ch_best is None or fa_best is None or (ch_best[0], fa_best[0]) == (STACK_APP["Channels"], STACK_APP["FastAPI"]):
        return ""
    (ch_target, ch), (fa_target, fa) = ch_best, fa_best
    said = (f"Each stack at its best measured in app mode, Channels as {ch_target} takes {fmt('rate', ch)} and "
            f"FastAPI as {fa_target} {fmt('rate', fa)} deliveries/s: ")
    ch_stat, fa_stat = held_capacity(data, ch_target), held_capacity(data, fa_target)
    if ch_stat and fa_stat and (rule := differ(ch_stat, fa_stat)):  # the report's one rule for "not significant"
        return said + f"not significantly apart ({rule}): tuned, the gap closes."
    if fa > ch:
        return said + f"FastAPI still takes {fa / ch:.1f}× as much."
    return said + "tuned, Channels takes more: the verdict on stock does not survive tuning."


def premise_verdict(data: Results, found: dict[str, tuple[str, str]]) -> tuple[Verdict, str]:
    caps = {stack: capacity_value(data, app) for stack, app in STACK_APP.items()}
    ch, fa = caps["Channels"], caps["FastAPI"]
    if ch is None or fa is None:
        return UNMEASURED, ("It takes the app targets of both stacks: run the bench with `--targets "
                            "django,fastapi,django-app,fastapi-app` (their suite runs the searched `ramp`, "
                            "`ramp-profile` and `signin`).")
    cap = searched(data, STACK_APP["Channels"])
    assert cap is not None  # where capacity_value found Channels' capacity
    tolerance = cap.tolerance
    name = found.get("Channels", ("", ""))[0]
    took = (f"In app mode Channels takes {fmt('rate', ch)} and FastAPI {fmt('rate', fa)} deliveries/s under the "
            "SLO" + relay_gap(data) + ". ")
    if fa > ch * (1 + tolerance):
        if name == THREAD_POOL:
            return HOLDS, took + ("On Channels a stored message waits longer for the database thread than the "
                                  "database takes: the synchronous database access is what bounds it.")
        return OTHER, took + (f"FastAPI takes more, but what bounds Channels as measured is {name or 'unsettled'}, "
                              "not its wait for the synchronous database thread.")
    if ch > fa * (1 + tolerance):
        return FAILS, took + "Channels takes more in app mode: its synchronous parts are not the bottleneck here."
    return UNSETTLED, took + f"They are within the search's ±{tolerance:.0%} of each other."
