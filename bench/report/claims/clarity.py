"""Claim 7c, clarity: event-driven Channels is clearer. Clarity itself is not measurable; what is: each stack's
code for the same jobs (the relay chat; sign-in and storage), measured with radon (bench/run/codemetrics.py):
lines, branches, blocks, and the framework names a newcomer must learn. The verdict speaks of those proxies."""

from __future__ import annotations

from bench.record import CodePart, Results
from bench.report.claims.base import FAILS, HOLDS, UNMEASURED, UNSETTLED, Claim, Table, Verdict

PROXIES = ("sloc", "branches", "concepts")


def size(part: CodePart, proxy: str) -> int:
    return len(part.concepts) if proxy == "concepts" else getattr(part, proxy)


def metrics_table(parts: list[CodePart]) -> Table:
    rows = [[f"{p.stack}: {p.part}", str(len(p.files)), str(p.sloc), str(p.lloc), str(p.comments), str(p.branches),
             str(p.blocks), f"{len(p.concepts)}: {', '.join(c.rsplit('.', 1)[-1] for c in p.concepts) or '—'}"]
            for p in parts]
    return Table("The chat code of each stack, by job (radon)", ["stack: part", "files", "lines of code",
                 "logical lines", "comment lines", "branches", "functions and classes", "framework names imported"],
                 rows)


def smaller(parts: list[CodePart], job: str) -> str | None:
    """"Channels" or "FastAPI" when its code for `job` is smaller on every proxy, "" when they split, None
    when a stack's code for it was not measured."""
    found = {p.stack: p for p in parts if p.part == job}
    if not {"Channels", "FastAPI"} <= set(found):
        return None
    ch, fa = found["Channels"], found["FastAPI"]
    if all(size(ch, k) < size(fa, k) for k in PROXIES):
        return "Channels"
    if all(size(fa, k) < size(ch, k) for k in PROXIES):
        return "FastAPI"
    return ""


def claim_clarity(data: Results) -> Claim:
    parts = data.code.parts
    jobs = list(dict.fromkeys(p.part for p in parts))
    outcome = {job: smaller(parts, job) for job in jobs}
    figures = [f"{job}: " + ("; ".join(f"{p.stack} {p.sloc} lines, {p.branches} branches, {len(p.concepts)} "
                                       "framework names" for p in parts if p.part == job))
               for job in jobs]
    verdict, why = clarity_verdict(outcome)
    return Claim("7c", "Code clarity: event-driven Channels is clearer.",
                 "The same contract on both stacks (django_chat/, fastapi_chat/), its code measured by job with "
                 "radon: lines of code, branches (cyclomatic complexity beyond the straight path), functions and "
                 "classes, and the framework names each imports, a proxy for the concepts a newcomer must learn "
                 "(consumer events and a channel layer; a receive loop, dependencies and a session lookup).",
                 figures, verdict, why, tables=[metrics_table(parts)] if parts else [])


def clarity_verdict(outcome: dict[str, str | None]) -> tuple[Verdict, str]:
    measured = {job: o for job, o in outcome.items() if o is not None}
    if not measured:
        return UNMEASURED, ("These results hold no code metrics (Results.code): any `python -m bench` run of "
                            "this version records them.")
    note = (" Smaller is not clearer by itself: these are proxies, and the code is there to read (django_chat/, "
            "fastapi_chat/).")
    said = "; ".join(f"{job}: " + (f"{o} is smaller on lines, branches and framework names" if o else
                                   "neither is smaller on all three") for job, o in measured.items())
    if all(o == "Channels" for o in measured.values()):
        return HOLDS, f"On the measured proxies only. {said}.{note}"
    if all(o == "FastAPI" for o in measured.values()):
        return FAILS, f"On the measured proxies only. {said}.{note}"
    return UNSETTLED, f"{said}.{note}"
