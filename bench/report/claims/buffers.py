"""Claims 4 and 5: where each stack's undelivered messages wait when a member stops reading, and
whether a full TCP buffer loses them (so that FastAPI "needs Redis")."""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.claims.base import (
    FAILS,
    OTHER,
    UNMEASURED,
    UNSETTLED,
    Claim,
    by_step,
    cautions,
    count,
    figure,
    glosses,
    is_burst,
    is_nonreading,
    is_payload,
    is_slow,
    picked,
)
from bench.report.loss import (
    ZERO_WINDOW,
    causes,
    first_losses,
    kernel_drops,
    kernel_text,
    lossy,
    tcp_counters,
    total,
    with_kernel,
)
from bench.report.numbers import fmt, plural
from bench.report.repeats import MIN_SAMPLES, fmt_stat, fold
from bench.report.runs import (
    DPS,
    LOSS,
    P95,
    Measure,
    is_seed,
    offered_deliveries,
    ran,
    redis_targets,
    stack_of,
    timeline,
)
from bench.report.steps import describe_step, where

IN_FLIGHT: Measure = lambda run: run.ledger.in_flight_pct  # noqa: E731


def slow_members(run: Run) -> float:
    """How many members never read or read slowly in a run: `nonreading` + `slow_readers` per room."""
    p = run.params
    return max(1.0, p.users // (p.room_size or 1)) * (p.nonreading + p.slow_readers)


def slow_kind(run: Run) -> str:
    return "never reads" if is_nonreading(run) else f"reads {fmt('bytes', run.params.read_rate)}/s"


def growth_per_slow_member(run: Run) -> float:
    return (run.server.rss_peak_bytes - run.server.rss_before_bytes) / slow_members(run)


def few(run: Run) -> str:
    n = run.rtt_ms.count
    return f" (from {plural(n, 'round trip')})" if 0 < n < MIN_SAMPLES else ""


def slow_figure(data: Results, target: str, runs: list[Run]) -> str:
    r = runs[0]
    low = min(timeline(r) or [0])
    text = (f"{target}, one member per room {slow_kind(r)}: {figure(runs, DPS, 'rate')} deliveries/s of "
            f"{fmt('rate', offered_deliveries(r))} "
            f"offered, slowest second {fmt('rate', low)}; RTT p95 {figure(runs, P95, 'ms')} ms{few(r)}; "
            f"{figure(runs, LOSS, 'pct')}% lost")
    if lossy(runs):
        text += f" ({causes(runs, glosses(data, target))})"
    text += f", {figure(runs, IN_FLIGHT, 'pct')}% in flight at the end"
    text += f"; peak server Send-Q {fmt('size', r.socket_queues_peak.server_send_q)}"
    grew = growth_per_slow_member(r)
    text += f"; server memory {'+' if grew >= 0 else ''}{fmt('size', grew)} per slow member"
    return text + cautions(runs)


def claim_where(data: Results) -> Claim:
    figures = [slow_figure(data, t, g) for t in ran(data) for g in by_step(picked(data, t, is_slow)).values()]
    slow = {t: g for t in ran(data) if (g := picked(data, t, is_nonreading))}  # the verdict's experiment
    channels_dropped = [r for t in ran(data, "Channels") for r in data.runs_of(target=t)
                        if any(r.ledger.dropped_by_server.values())]
    if channels_dropped:
        figures.append("Channels' layer dropping: " + "; ".join(
            f"{r.target} {where(r)}: {causes(r, glosses(data, r.target))}"
            for r in channels_dropped[:4])
            + ("; …" if len(channels_dropped) > 4 else ""))
    seeds = [r for t in slow if is_seed(data, t) for r in slow[t]]
    held, lost = fold(seeds, IN_FLIGHT), fold(seeds, LOSS)
    daphne_grew = [t for t in slow if stack_of(data, t) == "Channels"
                   and growth_per_slow_member(slow[t][0]) >= 1 << 20]
    queued_dropped = [t for t in slow if stack_of(data, t) == "FastAPI" and not is_seed(data, t)
                      and lossy(slow[t])]
    if not slow:
        verdict, why = UNMEASURED, ("The `slow` scenario (a member that never reads) did not run; it shows "
                                    "where each stack's messages wait.")
    elif not seeds:
        verdict, why = UNMEASURED, "The seed's loop (target fastapi-seed) did not run the `slow` scenario."
    elif held and lost and held.median > lost.median:
        parts = [f"The seed's loop keeps no queue of its own, as claimed: with one member that does not read, "
                 f"{fmt_stat('pct', held)}% of its room's deliveries were still waiting at the end, in TCP (the "
                 f"server's Send-Q) behind its own `await send`, and the whole room stalled with them (its "
                 f"deliveries/s above); {fmt_stat('pct', lost)}% was lost, in the buckets named above"]
        if channels_dropped:
            parts.append("Channels' queue is the channel layer, as claimed, but bounded: it dropped what did "
                         "not fit")
        if daphne_grew:
            parts.append(f"daphne also holds what a member does not read in its own unbounded send buffer "
                         f"(memory above, {', '.join(daphne_grew)})")
        if queued_dropped:
            parts.append(f"the queued FastAPI loop ({', '.join(queued_dropped)}) has a bounded queue of its own "
                         "and drops at it, so the room keeps flowing")
        if pace := slow_reader_pace(data):
            parts.append("with one member per room that reads, but slowly, the run delivers " + pace)
        verdict, why = OTHER, ("; ".join(parts) + ". Where the blog puts the risk, TCP, messages waited and "
                               "slowed everyone; where they were lost was a bounded queue above it.")
    else:
        verdict, why = UNSETTLED, ("The seed's loop lost more of its room's deliveries than it held: see its "
                                   "buckets.")
    return Claim("4", "FastAPI has no message buffer of its own: it relies on the OS TCP receive buffer; "
                 "Channels keeps its queue in the channel layer.",
                 "The `slow` scenario: one member per room never reads while the others chat; in another step "
                 "it reads, slowly (a fixed number of bytes per second, less than it is owed). Per target: what "
                 "still arrived (a stalled room shows as a collapsed slowest second), what was lost and in "
                 "which bucket, what was still in flight, the server's Send-Q, and the server's memory growth "
                 "(RSS peak − before) per slow member.", figures, verdict, why)


def slow_reader_pace(data: Results) -> str:
    """Head-of-line blocking in one phrase: each target's deliveries/s with a slow reader per room."""
    groups = {t: g for t in ran(data) if (g := picked(data, t, lambda r: is_slow(r) and not is_nonreading(r)))}
    paces = [f"{fmt_stat('rate', dps)} deliveries/s on {t}" for t, g in groups.items() if (dps := fold(g, DPS))]
    if not paces:
        return ""
    offered = offered_deliveries(next(iter(groups.values()))[0])
    return ", ".join(paces) + f", of {fmt('rate', offered)} offered"


def first_loss_figures(data: Results) -> list[str]:
    out = []
    for t in ran(data):
        found = first_losses(data, t)
        if not found:
            out.append(f"{t}: lost nothing in {plural(len(data.runs_of(target=t)), 'run')}")
            continue
        out.append(f"{t} first lost: " + "; ".join(
            f"{sc}" + (f" from {describe_step(g[0])}" if describe_step(g[0]) else "")
            + f" ({fmt('rate', offered_deliveries(g[0]))} deliveries/s offered): {figure(g, LOSS, 'pct')}% — "
            f"{causes(g, glosses(data, t))}" for sc, g in found))
    return out


def claim_overflow(data: Results) -> Claim:
    runs = data.runs
    stressed = [r for r in runs if is_slow(r) or is_payload(r) or is_burst(r)]
    figures = [f for f in (kernel_text(stressed or runs),) if f] + first_loss_figures(data)
    redis = redis_targets(data)
    figures.append("Redis scale-out (targets django-redis, django-redis-pubsub, fastapi-redis; the `ramp`): "
                   + (f"ran: {', '.join(redis)} (claim 7b)" if redis else "not measured in this run"))
    unexplained = [r for r in runs if r.ledger.unexplained]
    beside_drops = all(r.ledger.dropped_total or r.ledger.lost_with_close_total for r in unexplained)
    kernel = with_kernel(stressed + unexplained or runs)
    clean = bool(kernel) and not kernel_drops(kernel)
    n = total(unexplained, lambda r: r.ledger.unexplained)
    if not lossy(runs):
        verdict, why = UNMEASURED, ("Nothing was lost in this run; `slow`, `burst` and `payload` push "
                                    "buffers past their bounds.")
    elif unexplained and not (beside_drops and clean):
        verdict, why = UNSETTLED, (f"{count(n)} lost deliveries have no counted cause, in runs where no "
                                   "application bound was dropping or the kernel counted drops.")
    else:
        caveat = (f" The ledger leaves {count(n)} deliveries unexplained (in red in the loss autopsy), all in runs "
                  "where the server was dropping at one of those bounds and the kernel counted no drop."
                  if n else "")
        zero_windows = tcp_counters(kernel).get(ZERO_WINDOW, 0)
        verdict, why = FAILS, ("TCP lost nothing: "
                               + ("a full receive buffer made the kernel advertise a zero window and the sender's "
                                  "Send-Q grow (flow control)" if zero_windows else
                                  "no zero window was even advertised in these runs")
                               + (", and it counted no receive-queue drop. " if clean else ". ")
                               + "Lost deliveries sit in counted application buckets, named above: a bounded "
                                 "queue (the channel layer's capacity, the queued loop's per-member queue), a send "
                                 "to a closed connection, or the message-size limit closing with 1009." + caveat
                               + " Redis moves messages between processes; it does not lift those bounds"
                               + ("." if redis else " (and is not measured in this run)."))
    return Claim("5", "When that buffer overflows, messages are lost, so FastAPI needs Redis.",
                 "Every run's ledger puts each lost delivery in a bucket (dropped by the server by cause, lost "
                 "with a close code, or unexplained); beside it the kernel's TCP counters during the runs that "
                 "fill buffers (`slow`, `burst`, `payload`): zero-window advertisements are flow control, "
                 "receive-queue drops would be TCP losing data.", figures, verdict, why)

