"""Claim 7d, authentication: Channels ships auth middleware, so it is easier. Answered with the code each
stack needed to sign members in (verbatim, and its size measured with radon), what one stack writes by hand
that the other ships, what a signed-in handshake costs in a sign-in storm, and who each keeps out."""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.appmode import app_targets
from bench.report.claims.base import FAILS, HOLDS, UNMEASURED, UNSETTLED, Claim, Table
from bench.report.numbers import codes_text, fmt
from bench.report.runs import cautions, family, runs_of

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


def storm_line(data: Results, target: str, runs: list[Run]) -> str:
    """Connect latency, and server CPU per handshake: the run's server CPU over its members (chatting a
    little afterwards included, so an upper bound)."""
    r = runs[-1]
    members, per = r.params.users, handshake_cpu_ms(runs)
    refused = codes_text({str(k): v for k, v in r.handshakes_refused.items()})
    ms = " / ".join(f"{k} {fmt('ms', getattr(r.connect_ms, k))}" for k in ("p50", "p95", "p99"))
    return (f"{target}, sign-in storm ({fmt('int', members)} members at once): connect {ms} ms; "
            f"server CPU ≤ {fmt('ms', per)} ms per handshake; refused {refused}; "
            f"{fmt('int', r.membership.connect_failed)} failed to connect{cautions([r])}")


def security_table(data: Results) -> Table | None:
    targets = list(dict.fromkeys(c.target for c in data.security))
    checks = list(dict.fromkeys(c.check for c in data.security))
    if not targets:
        return None
    got = {(c.target, c.check): c for c in data.security}
    rows = [[check, *[("✓ " if (c := got.get((t, check))).passed else "✗ ") + f"{c.got} (expected {c.expected})"
                      if (t, check) in got else "—" for t in targets]] for check in checks]
    return Table("Handshakes each app target must refuse (403) or, signed in, accept (101)", ["check", *targets],
                 rows)


def claim_auth(data: Results) -> Claim:
    figures = [x for stack in ("Channels", "FastAPI") if (x := size_line(data, stack))]
    storms = {t: runs for t in app_targets(data) if (runs := runs_of(data, SIGN_IN, t))}
    figures += [storm_line(data, t, runs) for t, runs in storms.items()]
    table = security_table(data)
    tables = [table] if table else []
    sources = {stack: files for stack, files in data.code.sign_in.items() if files}
    verdict, why = auth_verdict(data, storms)
    return Claim("7d", "Authentication: Channels ships auth middleware, so it is easier.",
                 "The same sign-in on both stacks (Django's session cookie, the same users): the code each needed, "
                 "measured with radon; a sign-in storm (scenario `signin`: 500 members with valid sessions at "
                 "once) for the cost per connection; and handshakes each must refuse: anonymous, a forged or "
                 "expired session, a foreign Origin.", figures + ([SHIPPED] if sources else []), verdict, why,
                 tables=tables, sources=sources)


def handshake_cpu_ms(runs: list[Run]) -> float | None:
    r = runs[-1]
    return 1e3 * r.server.delta.cpu_seconds / r.params.users if r.server.delta and r.params.users else None


def auth_verdict(data: Results, storms: dict[str, list[Run]]) -> tuple[str, str]:
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
    cpu = {family(data, t): v for t, runs in storms.items() if (v := handshake_cpu_ms(runs)) is not None}
    cost = (f" It is not cheaper to run: a signed-in handshake cost the server ≤ {fmt('ms', cpu['Channels'])} ms "
            f"of CPU on Channels and ≤ {fmt('ms', cpu['FastAPI'])} ms on FastAPI in the sign-in storm."
            if {"Channels", "FastAPI"} <= set(cpu) and cpu["Channels"] > cpu["FastAPI"] else "")
    kept = "Both stacks refused every handshake they had to and accepted the signed-in one. "
    if ships:
        return HOLDS, (kept + "Easier to write, as claimed: Channels signs members in with the middleware it ships; "
                       "FastAPI's side decodes Django's session by hand." + size + cost)
    return FAILS, kept + "Channels' sign-in here does not use the middleware it ships." + size + cost
