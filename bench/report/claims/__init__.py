"""The seed's claims (../shared/SEED.md), each answered with the experiment that tests it, the figures
this run measured, and a verdict."""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.claims.auth import claim_auth
from bench.report.claims.base import (
    FAILS,
    HOLDS,
    OTHER,
    UNMEASURED,
    UNSETTLED,
    Claim,
    count,
    figure,
    glosses,
    picked,
)
from bench.report.claims.buffers import claim_overflow, claim_where
from bench.report.claims.clarity import claim_clarity
from bench.report.claims.photos import claim_photo
from bench.report.claims.premise import claim_premise
from bench.report.claims.speed import claim_conclusion, claim_scale, claim_speed
from bench.report.claims.waiting import claim_buffered, claim_busy
from bench.report.loss import causes, lossy, total
from bench.report.runs import LOSS, P95, info, ran, stack_of

__all__ = ["FAILS", "HOLDS", "KNOWN", "OTHER", "UNMEASURED", "UNSETTLED", "Claim", "claims"]


def claims(data: Results) -> list[Claim]:
    """One entry per numbered claim of SEED.md, the premise as 0 (claim 7's four rows as 7a–7d)."""
    speed, scale = claim_speed(data), claim_scale(data)
    return [claim_premise(data), claim_loop(data), claim_busy(data), claim_buffered(data), claim_where(data),
            claim_overflow(data), claim_photo(data), speed, scale, claim_clarity(data), claim_auth(data),
            claim_conclusion(data, speed, scale)]


def claim_loop(data: Results) -> Claim:
    figures = []
    for t in ran(data):
        churn = picked(data, t, lambda r: r.params.churn > 0)
        figures.append(churn_figure(data, t, churn) if churn else
                       f"{t} ({stack_of(data, t)}, fan-out {info(data, t).fanout or 'unknown'}): "
                       f"{len(data.runs_of(target=t))} runs")
    return Claim("1", "FastAPI needs a `while` loop because it has no event-driven consumer; Channels calls "
                 "methods on events.",
                 "None can: it describes the programming model, not a behaviour. Both models run side by "
                 "side in every scenario; what each costs is claim 7a. Where the two shapes differ in code, "
                 "joining and leaving (Channels' connect and disconnect events, the loop's accept and its "
                 "`WebSocketDisconnect` exit), the `churn` scenario tests them: members leave and join again "
                 "all through the run, and each is owed exactly what was sent while it was in the room.",
                 figures, UNMEASURED, "A statement about the code's shape; read django_chat/ and fastapi_chat/.")


def churn_figure(data: Results, target: str, runs: list[Run]) -> str:
    led = lambda key: total(runs, lambda r: getattr(r.ledger, key))  # noqa: E731
    text = (f"{target}, churn: {count(total(runs, lambda r: r.membership.left))} members left and "
            f"{count(total(runs, lambda r: r.membership.joined_again))} joined again; {count(led('delivered'))} of "
            f"{count(led('expected'))} deliveries owed arrived, {figure(runs, LOSS, 'pct')}% lost")
    if lossy(runs):
        text += f" ({causes(runs, glosses(data, target))})"
    return text + f"; RTT p95 {figure(runs, P95, 'ms')} ms"


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
