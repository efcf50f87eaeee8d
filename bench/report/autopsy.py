"""The loss autopsy: every expected delivery of every run in exactly one ledger bucket, with the
evidence beside it (the server's /stats difference, socket queues, kernel TCP counters, server log)."""

from __future__ import annotations

from html import escape

from bench.report.loss import ZERO_WINDOW, kernel_drops
from bench.report.markup import flags, scroll, swatch
from bench.report.numbers import codes_text, fmt, map_text, plural
from bench.report.runs import get, num, runs_of
from bench.report.steps import short_step


def evidence(run: dict) -> list[str]:
    """What the server's /stats difference, the clients, the sockets, the kernel and the server's memory and
    log say beside the ledger."""
    d = get(run, "server", "delta")
    if not isinstance(d, dict):
        out = ["no /stats difference: the server was not reachable at the end of the run"]
    else:
        sent, got = d.get("deliveries"), get(run, "ledger", "delivered")
        gap = (f" (out − delivered {fmt('int', sent - got)})"
               if isinstance(sent, int | float) and isinstance(got, int | float) else "")
        out = [f"/stats: in {fmt('int', d.get('messages_in'))}; out {fmt('int', sent)}{gap}; drops "
               f"{map_text({k: v for k, v in (d.get('drops') or {}).items() if v})}; close codes "
               f"{codes_text(d.get('close_codes') or {})}; backlog at end {fmt('int', d.get('backlog'))}"]
    if run.get("client_closes"):
        out.append(f"clients saw close codes {codes_text(run['client_closes'])}")
    q = get(run, "socket_queues_peak")
    if isinstance(q, dict) and any(q.values()):
        size = lambda k: fmt("size", q.get(k) or 0)  # noqa: E731
        out.append(f"socket queues, peak: server Send-Q {size('server_send_q')} (largest socket "
                   f"{size('server_send_q_max')}), server Recv-Q {size('server_recv_q')}, clients' Recv-Q "
                   f"{size('client_recv_q')}")
    tcp = get(run, "evidence", "tcp_counters")
    if isinstance(tcp, dict) and tcp:
        out.append(f"kernel: {fmt('int', tcp.get(ZERO_WINDOW, 0))} zero-window advertisements, "
                   f"{fmt('int', kernel_drops([run]))} TCP drops, {fmt('int', tcp.get('RetransSegs', 0))} "
                   "retransmits")
    before, peak = num(run, ("server", "rss_before_bytes")), num(run, ("server", "rss_peak_bytes"))
    if before is not None and peak is not None and peak > before:
        out.append(f"server memory: {fmt('size', before)} before, {fmt('size', peak)} at the peak")
    redis = get(run, "evidence", "redis")
    if isinstance(redis, dict):
        closed = redis.get("output_buffer_closures") or []
        through = get(run, "ledger", "in_flight_through_redis") or 0
        out.append(f"Redis log: {plural(len(closed), 'subscriber')} closed for falling behind"
                   + (f"; {fmt('int', through)} of the in-flight deliveries inferred inside Redis (read by a "
                      "server, not yet taken out; Redis and the servers logged no lost subscriber)" if through
                      else ""))
    members = run.get("membership") or {}
    if members.get("left"):
        out.append(f"churn: {fmt('int', members['left'])} members left, {fmt('int', members.get('joined_again'))} "
                   "joined again")
    log = get(run, "evidence", "server_log")
    if isinstance(log, list) and log:
        out.append(f"server log: {plural(len(log), 'line')}, first: {str(log[0])[:160]}")
    return out


def share(n: float | None, expected: float | None) -> str:
    return f" ({fmt('pct', 100.0 * n / expected)}%)" if expected and n else ""


def bucket_cell(items: list[tuple[str, int]], expected: float | None) -> str:
    return "<br>".join(f"{escape(name)} {fmt('int', n)}{share(n, expected)}" for name, n in items) or "0"


def autopsy_row(r: dict) -> str:
    led = r.get("ledger") or {}
    exp = led.get("expected")
    dropped = [(k, n) for k, n in sorted((led.get("dropped_by_server") or {}).items()) if n]
    closed = [(k, n) for k, n in sorted((led.get("lost_with_close") or {}).items()) if n]
    unexplained, inflight = led.get("unexplained") or 0, led.get("in_flight") or 0
    step = short_step(r)
    label = f"{r.get('scenario')}{' ' + step if step else ''}, run {(r.get('repeat') or 0) + 1}"
    return (f"<tr><th>{escape(label)}{flags([r])}</th><td class=\"num\">{fmt('int', exp)}</td>"
            f"<td class=\"num\">{fmt('int', led.get('delivered'))}{share(led.get('delivered'), exp)}</td>"
            f"<td>{bucket_cell(dropped, exp)}</td><td>{bucket_cell(closed, exp)}</td>"
            f"<td class=\"num\">{fmt('int', inflight)}{share(inflight, exp)}</td>"
            f"<td class=\"num{' bad' if unexplained > 0 else ''}\">{fmt('int', unexplained)}"
            f"{share(unexplained, exp)}</td><td class=\"num{' over' if (led.get('loss_pct') or 0) > 0 else ''}\">"
            f"{fmt('pct', led.get('loss_pct'))}</td><td>{fmt('int', led.get('duplicates'))} / "
            f"{fmt('int', led.get('reordered'))}</td></tr>"
            f'<tr class="ev"><td colspan="9">{"<br>".join(escape(e) for e in evidence(r))}</td></tr>')


def autopsy_section(data: dict, targets: list[str], col: dict) -> str:
    out = ['<p class="about">Every expected delivery of every run, in exactly one bucket, with the evidence '
           "beside it: the server's <code>/stats</code> difference, peak socket queues, and the kernel's TCP "
           "counters (machine-wide) when the run recorded them, the server's memory and its log.</p>"]
    for t in targets:
        runs = runs_of(data, target=t)
        out.append(f"<h3>{swatch(col[t])}{escape(str(t))}</h3>")
        if not runs:
            out.append("<p>No runs.</p>")
            continue
        out.append(scroll('<table class="cmp autopsy"><thead><tr><th>run</th><th class="num">expected</th>'
                          '<th class="num">delivered</th><th>dropped by server</th><th>lost with close</th>'
                          '<th class="num">in flight</th><th class="num">unexplained</th>'
                          '<th class="num">loss %</th><th>dup / reord</th></tr></thead>'
                          "<tbody>"
                          + "".join(autopsy_row(r) for r in runs) + "</tbody></table>"))
    return "".join(out)

