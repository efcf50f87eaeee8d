"""Claim 7d, authentication: Channels ships auth middleware, so it is easier. Answered with the code each
stack needed to sign members in (verbatim, and its size measured with radon), what one stack writes by hand
that the other ships, what a signed-in handshake costs in a sign-in storm, and who each keeps out."""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.appmode import app_targets, on_postgres
from bench.report.claims.base import FAILS, HOLDS, UNMEASURED, UNSETTLED, Claim, Table, Verdict
from bench.report.numbers import codes_text, fmt
from bench.report.runs import CPU_MS_PER_CONNECTION, cautions, sampled, stack_of

PART = "sign-in and storage"
SIGN_IN = "signin"
SHIPPED = ("Channels signs members in with `AuthMiddlewareStack` (channels.auth), which it ships: Django's own "
           "session cookie and user lookup. FastAPI ships no session sign-in: fastapi_chat/auth.py re-implements "
           "Django's session decoding by hand (read the cookie, load the session row, decode it, check expiry, "
           "load the user), so it must follow Django's session format as Django changes it.")


def size_line(data: Results, stack: str) -> str | None:
    part = next((p for p in data.code.parts if p.stack == stack and p.part == PART), None)
    if part is None:
        return None
    return (f"{stack}, {PART} ({', '.join(part.files)}): {part.sloc} lines of code, {part.branches} branches, "
            f"{part.blocks} functions and classes, {len(part.concepts)} framework names imported")


WARM, RESTARTED = "warm", "after a restart"


def storms(data: Results, target: str) -> dict[str, list[Run]]:
    """The sign-in storm's runs of a target: on servers already up ("warm"), and on servers started right
    before it ("after a restart": cold processes, no database connection yet, as in a reconnect storm)."""
    runs = data.runs_of(SIGN_IN, target)
    found = {WARM: [r for r in runs if not r.params.restart], RESTARTED: [r for r in runs if r.params.restart]}
    return {kind: rs for kind, rs in found.items() if rs}


def connect_ms(r: Run) -> str:
    return " / ".join(fmt("ms", getattr(r.connect_ms, k)) for k in ("p50", "p95", "p99"))


def refusals(r: Run) -> str:
    """Refused handshakes by HTTP status (the client's view), and the server's causes (its /stats)."""
    causes = r.server.delta.app.handshakes_refused if r.server.delta else {}
    status = codes_text({str(k): v for k, v in r.handshakes_refused.items()})
    return status + (f" ({codes_text(causes)})" if any(causes.values()) else "")


def storm_line(data: Results, target: str, runs: list[Run], kind: str = WARM) -> str:
    """Connect latency, and server CPU per handshake: the run's server CPU over its members (chatting a
    little afterwards included, so an upper bound)."""
    r = runs[-1]
    members, per = r.params.users, handshake_cpu_ms(runs)
    return (f"{target}, sign-in storm {kind} ({fmt('int', members)} members at once): connect p50 / p95 / p99 "
            f"{connect_ms(r)} ms; {pace(r)}; server CPU ≤ {fmt('ms', per)} ms per handshake; refused "
            f"{refusals(r)}; {fmt('int', r.membership.connect_failed)} failed to connect{cautions([r])}")


def pace(r: Run) -> str:
    """"500 accepted in ≤ 1.9 s (≥ 263/s)", from the servers' counts sampled in the run."""
    h = r.handshakes
    if h is None:  # not an app target's run, the counts unread, or a server restarted mid-run
        return "handshakes/s not sampled"
    if not h.accepted:
        return "no handshake accepted"
    return f"{fmt('int', h.accepted)} accepted in ≤ {fmt('ms', h.within_s)} s (≥ {fmt('rate', h.per_s)}/s)"


def opened(r: Run) -> str:
    """Database connections before the storm → the most seen during it, and after (PostgreSQL)."""
    c = r.db_connections
    if c is None:
        return "—"
    return f"{fmt('int', c.before)} → {fmt('int', c.peak)} (after: {fmt('int', c.after)})"


def per_handshake(r: Run) -> str:
    """The sign-in statements the database ran (pg_stat_statements) per handshake accepted, and the time it
    spent executing them."""
    if r.db_statements is None and on_postgres(r):
        return "not counted"
    s = (r.db_statements or {}).get("sign-in")
    n = r.handshakes.accepted if r.handshakes else 0
    return f"{s.calls / n:.1f} ({fmt('us', 1e3 * s.ms / n)} µs)" if s and n else "—"


def storm_table(data: Results) -> Table | None:
    """The sign-in storm warm and after a restart, side by side per app target."""
    cols = [(t, kind, runs[-1], runs) for t in app_targets(data) for kind, runs in storms(data, t).items()]
    if not any(kind == RESTARTED for _, kind, _, _ in cols):
        return None
    rows = [
        ["members", *[fmt("int", r.params.users) for _, _, r, _ in cols]],
        ["handshakes accepted, within", *[pace(r) for _, _, r, _ in cols]],
        ["connect p50 / p95 / p99 ms", *[connect_ms(r) for _, _, r, _ in cols]],
        ["refused (HTTP status, server's cause)", *[refusals(r) for _, _, r, _ in cols]],
        ["failed to connect", *[fmt("int", r.membership.connect_failed) for _, _, r, _ in cols]],
        ["server CPU per handshake, ≤ ms", *[fmt("ms", handshake_cpu_ms(runs)) for _, _, _, runs in cols]],
        ["database statements per handshake (µs executing them)", *[per_handshake(r) for _, _, r, _ in cols]],
        ["database connections: before → peak (after)", *[opened(r) for _, _, r, _ in cols]],
    ]
    return Table("Sign-in storm, on servers already up and right after a restart (cold processes, no database "
                 f"connection yet); handshakes/s from the servers' counts {sampled(r for _, _, r, _ in cols)}, "
                 "so a floor",
                 ["", *[f"{t}, {kind}{cold(r, kind)}{cautions([r])}" for t, kind, r, _ in cols]], rows)


def cold(r: Run, kind: str) -> str:
    """A warm storm whose servers had been restarted anyway (the run before left them unsettled) says so."""
    return " (its servers had just started)" if kind == WARM and r.cold_start else ""


def security_table(data: Results) -> Table | None:
    targets = list(dict.fromkeys(c.target for c in data.security))
    checks = list(dict.fromkeys(c.check for c in data.security))
    if not targets:
        return None
    got = {(c.target, c.check): c for c in data.security}
    rows = [[check, *[("✓ " if c.passed else "✗ ") + f"{c.got} (expected {c.expected})"
                      if (c := got.get((t, check))) is not None else "—" for t in targets]] for check in checks]
    return Table("Handshakes each app target must refuse (403) or, signed in, accept (101)", ["check", *targets],
                 rows)


def claim_auth(data: Results) -> Claim:
    figures = [x for stack in ("Channels", "FastAPI") if (x := size_line(data, stack))]
    by_target = {t: found for t in app_targets(data) if (found := storms(data, t))}
    storms_warm = {t: found[WARM] for t, found in by_target.items() if WARM in found}
    figures += [storm_line(data, t, runs) for t, runs in storms_warm.items()]  # after a restart: the table
    tables = [table for table in (storm_table(data), security_table(data)) if table]
    sources = {stack: files for stack, files in data.code.sign_in.items() if files}
    verdict, why = auth_verdict(data, storms_warm)
    return Claim("7d", "Authentication: Channels ships auth middleware, so it is easier.",
                 "The same sign-in on both stacks (Django's session cookie, the same users): the code each needed, "
                 "measured with radon; a sign-in storm (scenario `signin`: 500 members with valid sessions at "
                 "once, then the same 500 again right after the servers restart, as a reconnect storm would) for "
                 "the cost per connection; and handshakes each must refuse: anonymous, a forged or expired "
                 "session, a foreign Origin. A handshake's queries are counted and timed by the database itself "
                 "(pg_stat_statements, on the bench's own PostgreSQL).",
                 figures + ([SHIPPED] if sources else []), verdict, why,
                 tables=tables, sources=sources)


def handshake_cpu_ms(runs: list[Run]) -> float | None:
    return CPU_MS_PER_CONNECTION(runs[-1])


def auth_verdict(data: Results, storms: dict[str, list[Run]]) -> tuple[Verdict, str]:
    """Easier to write: Channels' sign-in is the middleware it ships (AuthMiddlewareStack in its code), while
    FastAPI's is written by hand; it holds only when both keep out the same handshakes. What it costs per
    connection is said beside, not folded in."""
    sources = data.code.sign_in
    if not sources.get("Channels") or not sources.get("FastAPI") or not data.security:
        return UNMEASURED, ("It takes the app targets: run the bench with `--targets django-app,fastapi-app` "
                            "(the code is measured and the security checks run with them; scenario `signin` "
                            "gives the cost per connection).")
    failing = sorted({c.target for c in data.security if not c.passed})
    if failing:
        return UNSETTLED, f"{', '.join(failing)} failed a security check (table below): not a fair comparison."
    ships = any("AuthMiddlewareStack" in text for text in sources["Channels"].values())
    sizes = {p.stack: p.sloc for p in data.code.parts if p.part == PART}
    size = (f" Measured with radon, the sign-in and storage code is {sizes['Channels']} lines on Channels and "
            f"{sizes['FastAPI']} on FastAPI; Channels' count includes the login view that signs members in for "
            "both stacks." if {"Channels", "FastAPI"} <= set(sizes) else "")
    cpu = {stack_of(data, t): v for t, runs in storms.items() if (v := handshake_cpu_ms(runs)) is not None}
    cost = (f" It is not cheaper to run: a signed-in handshake cost the server ≤ {fmt('ms', cpu['Channels'])} ms "
            f"of CPU on Channels and ≤ {fmt('ms', cpu['FastAPI'])} ms on FastAPI in the sign-in storm."
            if {"Channels", "FastAPI"} <= set(cpu) and cpu["Channels"] > cpu["FastAPI"] else "")
    kept = "Both stacks refused every handshake they had to and accepted the signed-in one. "
    if ships:
        return HOLDS, (kept + "Easier to write, as claimed: Channels signs members in with the middleware it ships; "
                       "FastAPI's side decodes Django's session by hand." + size + cost)
    return FAILS, kept + "Channels' sign-in here does not use the middleware it ships." + size + cost
