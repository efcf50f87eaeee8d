"""The loss autopsy: every expected delivery of every run in exactly one ledger bucket, with the
evidence beside it (the server's /stats difference, socket queues, kernel TCP counters, server log);
templates/autopsy.html draws it."""

from __future__ import annotations

from dataclasses import dataclass

from bench.record import Results, Run
from bench.report.loss import ZERO_WINDOW, kernel_drops
from bench.report.numbers import codes_text, fmt, map_text, plural
from bench.report.runs import flag_notes
from bench.report.steps import short_step


def evidence(run: Run) -> list[str]:
    """What the server's /stats difference, the clients, the sockets, the kernel and the server's memory and
    log say beside the ledger."""
    d = run.server.delta
    if d is None:
        out = ["no /stats difference: the server was not reachable at the end of the run"]
    else:
        gap = f" (out − delivered {fmt('int', d.deliveries - run.ledger.delivered)})"
        out = [f"/stats: in {fmt('int', d.messages_in)}; out {fmt('int', d.deliveries)}{gap}; drops "
               f"{map_text({k: v for k, v in d.drops.items() if v})}; close codes "
               f"{codes_text(d.close_codes)}; backlog at end {fmt('int', d.backlog)}"]
    if run.client_closes:
        out.append(f"clients saw close codes {codes_text(run.client_closes)}")
    q = run.socket_queues_peak
    if any(q.model_dump().values()):
        size = lambda k: fmt("size", getattr(q, k))  # noqa: E731
        out.append(f"socket queues, peak: server Send-Q {size('server_send_q')} (largest socket "
                   f"{size('server_send_q_max')}), server Recv-Q {size('server_recv_q')}, clients' Recv-Q "
                   f"{size('client_recv_q')}")
    tcp = run.evidence.tcp_counters
    if tcp:
        out.append(f"kernel: {fmt('int', tcp.get(ZERO_WINDOW, 0))} zero-window advertisements, "
                   f"{fmt('int', kernel_drops([run]))} TCP drops, {fmt('int', tcp.get('RetransSegs', 0))} "
                   "retransmits")
    before, peak = run.server.rss_before_bytes, run.server.rss_peak_bytes
    if peak > before:
        out.append(f"server memory: {fmt('size', before)} before, {fmt('size', peak)} at the peak")
    redis = run.evidence.redis
    if redis is not None:
        closed = redis.output_buffer_closures
        through = run.ledger.in_flight_through_redis
        out.append(f"Redis log: {plural(len(closed), 'subscriber')} closed for falling behind"
                   + (f"; {fmt('int', through)} of the in-flight deliveries inferred inside Redis (read by a "
                      "server, not yet taken out; Redis and the servers logged no lost subscriber)" if through
                      else ""))
    if run.membership.left:
        out.append(f"churn: {fmt('int', run.membership.left)} members left, "
                   f"{fmt('int', run.membership.joined_again)} joined again")
    log = run.evidence.server_log
    if log:
        out.append(f"server log: {plural(len(log), 'line')}, first: {log[0][:160]}")
    return out


def share(n: float | None, expected: float | None) -> str:
    return f" ({fmt('pct', 100.0 * n / expected)}%)" if expected and n else ""


def bucket_lines(items: list[tuple[str, int]], expected: float | None) -> list[str]:
    return [f"{name} {fmt('int', n)}{share(n, expected)}" for name, n in items] or ["0"]


@dataclass
class Row:
    """One run's ledger, every figure as the table shows it."""

    label: str
    flags: list[tuple[str, str]]
    expected: str
    delivered: str
    dropped: list[str]
    closed: list[str]
    in_flight: str
    unexplained: str
    bad: bool  # some deliveries unexplained
    loss: str
    over: bool  # some lost
    dup_reord: str
    evidence: list[str]


def autopsy_row(r: Run) -> Row:
    led = r.ledger
    exp = led.expected
    dropped = [(k, n) for k, n in sorted(led.dropped_by_server.items()) if n]
    closed = [(x.label, x.count) for x in sorted(led.lost_with_close, key=lambda x: x.label) if x.count]
    step = short_step(r)
    return Row(f"{r.scenario}{' ' + step if step else ''}, run {r.repeat + 1}", flag_notes([r]), fmt("int", exp),
               f"{fmt('int', led.delivered)}{share(led.delivered, exp)}", bucket_lines(dropped, exp),
               bucket_lines(closed, exp), f"{fmt('int', led.in_flight)}{share(led.in_flight, exp)}",
               f"{fmt('int', led.unexplained)}{share(led.unexplained, exp)}", led.unexplained > 0,
               fmt("pct", led.loss_pct), led.loss_pct > 0,
               f"{fmt('int', led.duplicates)} / {fmt('int', led.reordered)}", evidence(r))


def autopsy_view(data: Results, targets: list[str]) -> list[tuple[str, list[Row]]]:
    """Per target, a row per run in the order they ran."""
    return [(t, [autopsy_row(r) for r in data.runs_of(target=t)]) for t in targets]


def unexplained_words(data: Results) -> str:
    """The ledger's closing line: how many expected deliveries of all the runs no bucket explains."""
    n = sum(r.ledger.unexplained for r in data.runs)
    expected = sum(r.ledger.expected for r in data.runs)
    return (f"{fmt('int', expected)} expected deliveries in {plural(len(data.runs), 'run')}, each in one bucket; "
            f"{fmt('int', n)} unexplained" + (" (in red below)" if n else ""))
