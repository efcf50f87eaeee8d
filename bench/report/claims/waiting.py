"""Claims 2 and 3: does the receive loop busy-poll while it waits, and are messages sent faster than
it reads (a burst) lost?"""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.claims.base import (
    FAILS,
    HOLDS,
    UNMEASURED,
    UNSETTLED,
    Claim,
    Verdict,
    by_step,
    cautions,
    count,
    figure,
    glosses,
    is_burst,
    is_idle,
    picked,
)
from bench.report.loss import causes, lossy, total
from bench.report.numbers import fmt, plural
from bench.report.runs import LOSS, Measure, offered_deliveries, ran, stack_of
from bench.report.steps import where

BUSY_POLL_PCT = 50.0  # a busy-polling loop holds a core near 100%; a waiting one stays far below
CPU: Measure = lambda run: run.server.cpu_pct_mean  # noqa: E731


def claim_busy(data: Results) -> Claim:
    figures, fastapi_cpu, idle_seen = [], [], False
    for t in ran(data):
        idle = picked(data, t, lambda r: is_idle(r) and CPU(r) is not None)
        if not idle and stack_of(data, t) != "FastAPI":
            continue  # the claim is about the FastAPI loop; the others only beside it when idle ran
        runs = idle
        if not runs:
            lowest = min(picked(data, t, lambda r: CPU(r) is not None and not r.fault), key=offered_deliveries,
                         default=None)
            if lowest is None:
                continue
            runs = [lowest]
        idle_seen |= bool(idle)
        per_conn = (f"; {figure(idle, lambda r: r.server.rss_per_connection_bytes, 'kib')} KiB of server "
                    "memory per connection" if idle else "")
        figures.append(f"{t}: {figure(runs, CPU, 'pct1')}% of a core (mean server CPU) with "
                       f"{count(runs[0].params.users)} members connected"
                       + (" and silent" if idle else f", {fmt('rate', offered_deliveries(runs[0]))} "
                          "deliveries/s offered, its lowest load") + f" ({where(runs[0])}){per_conn}")
        if stack_of(data, t) == "FastAPI":
            fastapi_cpu += [cpu for r in runs if (cpu := CPU(r)) is not None]  # every one: picked for it
    if not fastapi_cpu:
        verdict, why = UNMEASURED, "No FastAPI run recorded server CPU; the `idle` scenario measures it."
    elif all(cpu < BUSY_POLL_PCT for cpu in fastapi_cpu):
        verdict, why = HOLDS, ("A loop that polled would hold a core near 100% whatever the load; every "
                               f"FastAPI target stayed under {BUSY_POLL_PCT:.0f}% "
                               + ("with its members connected and silent: `receive_text()` waits." if idle_seen
                                  else "at its lowest load (the `idle` scenario measures it with no load)."))
    else:
        verdict, why = UNSETTLED, ("At its lowest load here a FastAPI server was already busy; the `idle` "
                                   "scenario (connections, no messages) separates waiting from working.")
    return Claim("2", "The receive loop does not busy-poll: `receive_text()` waits, like `input()`.",
                 "The `idle` scenario: members connect and never send; the servers' mean CPU over the window "
                 "and their memory per connection (RSS peak − RSS before the run, over the members: a lower "
                 "bound when earlier scenarios left freed memory to reuse). Without it, the FastAPI targets' "
                 "lowest offered load.", figures, verdict, why)


def _burst_figure(data: Results, target: str, runs: list[Run], step: str) -> str:
    led = lambda key: total(runs, lambda r: getattr(r.ledger, key))  # noqa: E731
    label = f"{target} ({step})" if step else target
    text = (f"{label}: {count(led('delivered'))} of {count(led('expected'))} deliveries arrived, "
            f"{count(led('reordered'))} out of order, {count(led('duplicates'))} duplicated, "
            f"{figure(runs, LOSS, 'pct')}% lost")
    if led("in_flight"):
        text += f", {count(led('in_flight'))} still in flight at the end (late, not lost)"
    if lossy(runs):
        text += f" — {causes(runs, glosses(data, target))}"
    return text + cautions(runs)


def _stack_verdict(runs: list[Run]) -> Verdict:
    if any(r.ledger.unexplained for r in runs):
        return UNSETTLED
    if lossy(runs) or any(r.ledger.reordered or r.ledger.duplicates for r in runs):
        return FAILS
    return HOLDS


def claim_buffered(data: Results) -> Claim:
    figures: list[str] = []
    by_stack: dict[str, Verdict] = {}
    bursts = {t: picked(data, t, is_burst) for t in ran(data)}
    for t, runs in bursts.items():
        figures += [_burst_figure(data, t, g, step) for step, g in by_step(runs).items()]
    for fam in ("FastAPI", "Channels"):
        # the claim is about messages sent before the loop waits: the burst on connect decides it; the
        # mid-session bursts are figures beside it
        runs = [r for t in ran(data, fam) for r in bursts[t] if not r.params.burst_every]
        if runs:
            by_stack[fam] = _stack_verdict(runs)
    experiment = ("The `burst` scenario: the moment its room is full, every member sends a burst of messages "
                  "back to back, faster than any loop reads them; the ledger counts every delivery, its order "
                  "and where each missing one went. That burst decides the verdict; another step, bursts every "
                  "few seconds in the middle of steady chat, is shown beside it.")
    fastapi = by_stack.get("FastAPI")
    if fastapi is None:
        every = [r for t in ran(data, "FastAPI") for r in data.runs_of(target=t)]
        unexplained = total(every, lambda r: r.ledger.unexplained)
        if not every:
            return Claim("3", CLAIM_3, experiment, figures, UNMEASURED, "No FastAPI target ran.", by_stack)
        figures.append(f"no burst in this run; every FastAPI run's ledger ({plural(len(every), 'run')}): "
                       f"{count(unexplained)} deliveries unexplained")
        verdict = UNSETTLED if unexplained else HOLDS
        why = ("A message that vanished before the loop read it would be missing for its whole room and "
               "unexplained; " + ("some were." if unexplained else "none was. The `burst` scenario tests it "
                                   "directly."))
        return Claim("3", CLAIM_3, experiment, figures, verdict, why, by_stack)
    why = {HOLDS: "Every FastAPI target delivered the whole burst, in order: the messages waited until the "
                  "loop read them (where, per uvicorn's source: in the kernel's receive buffer while it pauses "
                  "reading).",
           FAILS: "A FastAPI target lost or reordered part of the burst; its bucket above says where.",
           UNSETTLED: "Some of the burst's deliveries have no counted cause (see the loss autopsy)."}[fastapi]
    if by_stack.get("Channels") == FAILS:
        why += (" Channels lost part of the same burst, in a counted bucket: the channel layer skips a member "
                "whose channel is full (its capacity), which is the layer's bound, not the consumer failing to "
                "wait.")
    return Claim("3", CLAIM_3, experiment, figures, fastapi, why, by_stack)


CLAIM_3 = "Messages sent before the loop starts waiting are not lost: they wait in a buffer."
