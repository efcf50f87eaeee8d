"""Claim 0, the blog's premise: Django's synchronous parts (database access, middleware) make Channels the
bottleneck, and FastAPI's async-first stack removes it. Tested on the app targets (signed-in members, every
message stored) against the relay targets of the same stack, each at its searched capacity."""

from __future__ import annotations

from bench.record import Results
from bench.report.appmode import (
    app_targets,
    at_capacity,
    backing_us,
    capacity_value,
    cost_at_capacity,
    relay_of,
    stages,
)
from bench.report.claims.auth import SIGN_IN, handshake_cpu_ms
from bench.report.claims.base import FAILS, HOLDS, OTHER, UNMEASURED, UNSETTLED, Claim
from bench.report.layers import profiled
from bench.report.numbers import fmt, ratio
from bench.report.runs import cautions, info, runs_of
from bench.report.searched import searched

THREAD_POOL, CONNECTION_POOL = "the thread pool", "the connection pool"
DATABASE, FRAMEWORK, NONE = "the database", "the framework", "none"
STACK_APP = {"Channels": "django-app", "FastAPI": "fastapi-app"}  # the PostgreSQL app target of each stack


def change(before: float | None, after: float | None, kind: str, unit: str) -> str:
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


def history_line(data: Results, app: str) -> str | None:
    """Members rejoining a busy room and asking for its stored history (scenario `history`)."""
    runs = runs_of(data, "history", app)
    if not runs:
        return None
    r = runs[-1]
    return (f"{app}, history on join (`?history={r.params.history}`): p50 {fmt('ms', r.history_ms.p50)} / p95 "
            f"{fmt('ms', r.history_ms.p95)} ms for {fmt('int', r.history_ms.count)} joins, "
            f"{fmt('int', r.history_received)} stored messages handed over; the room's RTT p95 meanwhile "
            f"{fmt('ms', r.rtt_ms.p95)} ms{cautions([r])}")


def database_line(data: Results, app: str) -> str | None:
    db = next((r.evidence.database for r in reversed(at_capacity(data, app)) if r.evidence.database), None)
    if not db:
        return None
    before, after = db.get("connections_before"), db.get("connections_after")
    return (f"{app}: {db.get('engine', 'database')} connections {fmt('int', before)} before the run, "
            f"{fmt('int', after)} after" + (f" ({db['note']})" if db.get("note") else ""))


def knob_line(data: Results, app: str) -> str | None:
    """A target that turns the thread pool's size (ASGI_THREADS): does the knob move the capacity?"""
    turned = [t for t in app_targets(data) if "ASGI_THREADS" in info(data, t).env and t != app
              and relay_of(data, t) == relay_of(data, app)]
    base, cap = capacity_value(data, app), searched(data, app)
    out = []
    for t in turned:
        v = capacity_value(data, t)
        if v is None or base is None or cap is None:
            continue
        moved = abs(v - base) > cap.tolerance * base
        out.append(f"{t} (ASGI_THREADS={info(data, t).env['ASGI_THREADS']}): capacity {fmt('rate', v)} against "
                   f"{app}'s {fmt('rate', base)} deliveries/s: "
                   + (f"the knob moves it ({ratio(base, v)})" if moved else
                      f"within the search's ±{cap.tolerance:.0%}: the knob does not move it"))
    return "; ".join(out) or None


def middleware_line(data: Results) -> str | None:
    """The premise's other half, middleware: what a signed-in handshake costs each app target in the sign-in
    storm (Channels signs in through Django's session and auth, wrapped as ASGI middleware)."""
    cpu = {app: v for app in app_targets(data) if (runs := runs_of(data, SIGN_IN, app))
           and (v := handshake_cpu_ms(runs)) is not None}
    if not cpu:
        return None
    return ("sign-in, server CPU per signed-in handshake in the sign-in storm (claim 7d): "
            + ", ".join(f"{t} ≤ {fmt('ms', v)} ms" for t, v in cpu.items()))


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
    top = max(parts, key=parts.get)
    return top, f"{app}, µs per stored message: " + ", ".join(said) + f"; the largest is {top}"


def claim_premise(data: Results) -> Claim:
    figures: list[str] = []
    for app in app_targets(data):
        figures.append(delta_line(data, app))
        if s := stages(at_capacity(data, app)):
            figures.append(f"{app} at capacity, " + s.text())
        figures += [x for x in (database_line(data, app), history_line(data, app), knob_line(data, app)) if x]
    if signin := middleware_line(data):
        figures.append(signin)
    found = {stack: bottleneck(data, app) for stack, app in STACK_APP.items() if app in app_targets(data)}
    figures += [f"{stack}: bottleneck measured: {name or 'not settled'} ({why})"
                for stack, (name, why) in found.items()]
    verdict, why = premise_verdict(data, found)
    return Claim("0", "The premise: Django's synchronous parts (database access, middleware) make Channels the "
                 "bottleneck; FastAPI's async-first stack removes it.",
                 "The same chat on both stacks with signed-in members and every message stored in PostgreSQL (the "
                 "app targets `django-app`, `fastapi-app`), its capacity at the SLO searched like the relay "
                 "targets' and profiled at it; per stored message, the servers' /stats time it: waiting for a "
                 "worker (Django: its database thread), the database call, and the event loop's lag.",
                 figures, verdict, why)


def relay_gap(data: Results) -> str:
    """"; as relays, without sign-in or database, 1,680 and 18,520": the gap the app mode starts from."""
    relay = {stack: capacity_value(data, t) if (t := relay_of(data, app)) else None for stack, app in STACK_APP.items()}
    if None in relay.values():
        return ""
    kept = {stack: caps / relay[stack] for stack, app in STACK_APP.items()
            if relay[stack] and (caps := capacity_value(data, app)) is not None}
    share = (f"; storing kept {kept['Channels']:.0%} of Channels' relay capacity and {kept['FastAPI']:.0%} of "
             "FastAPI's" if len(kept) == 2 else "")
    return (f"; as relays, with no sign-in and no database, {fmt('rate', relay['Channels'])} and "
            f"{fmt('rate', relay['FastAPI'])}{share}")


def premise_verdict(data: Results, found: dict[str, tuple[str, str]]) -> tuple[str, str]:
    caps = {stack: capacity_value(data, app) for stack, app in STACK_APP.items()}
    if None in caps.values():
        return UNMEASURED, ("It takes the app targets of both stacks: run the bench with `--targets "
                            "django,fastapi,django-app,fastapi-app` (their suite runs the searched `ramp`, "
                            "`ramp-profile` and `signin`).")
    ch, fa = caps["Channels"], caps["FastAPI"]
    tolerance = searched(data, STACK_APP["Channels"]).tolerance
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
