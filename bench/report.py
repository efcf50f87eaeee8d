"""The comparison report: one self-contained HTML page (inline CSS and SVG, opens from disk), a Markdown
summary to paste, the results JSON as given, and a short table for the terminal.

What the numbers mean (repeats, significance, capacity, the seed's claims) is worked out in
`bench.claims`; the charts are drawn by `bench.charts`; this module lays them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

from bench import claims as c
from bench.charts import OFFERED, sweep_charts, timeline_chart

COLORS = {"django": "#2f7d4f", "django-redis": "#79b28e", "django-uvicorn": "#9a7b1c",
          "fastapi": "#2f6db5", "fastapi-seed": "#d0652f", "fastapi-redis": "#7ba7d9"}
PALETTE = ["#8a5bb5", "#b5475b", "#3f9aa8", "#6b7280", "#b08d57"]
STEAL_FLAG_PCT = 10.0  # a run whose mean CPU steal reached this is flagged as noisy
SECTIONS = {"Verdict": "verdict", "Results by scenario": "scenarios", "Charts": "charts",
            "Capacity at the SLO": "capacity", "Loss autopsy": "autopsy",
            "The seed's claims, tested": "claims",
            "Environment": "environment", "Method notes": "method"}


@dataclass(frozen=True)
class Row:
    label: str
    path: c.Path
    kind: str
    better: str | None = None  # "low" or "high": the row compares targets
    sub: bool = False
    alarm: bool = False  # the worst run's value, in red when above zero


PCTS = ("p50", "p95", "p99", "max")
ROWS = [
    Row("offered send rate (msg/s)", ("offered_send_rate",), "rate"),
    Row("achieved send rate (msg/s)", ("achieved_send_rate",), "rate", "high"),
    Row("deliveries/s", c.DPS, "rate", "high"),
    *[Row(f"RTT {p} (ms)", ("rtt_ms", p), "ms", "low" if p != "max" else None) for p in PCTS],
    *[Row(f"delivery latency {p} (ms)", ("latency_ms", p), "ms", "low" if p != "max" else None)
      for p in PCTS],
    Row("loss %", c.LOSS, "pct", "low"),
]
ROWS_AFTER = [
    Row("server CPU µs/delivery", c.COST, "us", "low"),
    Row("server CPU % of a core (mean)", ("server", "cpu_pct_mean"), "pct1"),
    Row("server peak RSS (MiB)", ("server", "rss_peak_bytes"), "mib", "low"),
    Row("server RSS per connection (KiB)", ("server", "rss_per_connection_bytes"), "kib", "low"),
    Row("load generator: busiest process CPU %", ("client", "busiest_process_cpu_pct"), "pct1"),
    Row("CPU steal % (mean)", ("steal_pct", "mean"), "pct1"),
]


def write_report(data: dict, out: Path) -> dict:
    """Write report.html, report.md and results.json into `out`; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "md": out / "report.md", "json": out / "results.json"}
    paths["json"].write_text(json.dumps(data, indent=1))
    paths["html"].write_text(html_report(data), encoding="utf-8")
    paths["md"].write_text(markdown_report(data), encoding="utf-8")
    return paths


# ---------------------------------------------------------------- small pieces

def colors(data: dict) -> dict[str, str]:
    names = c.target_names(data)
    spare = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return {t: COLORS.get(str(t)) or next(spare) for t in names}


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def labelled(text: str) -> str:
    """Escape computed text; `names` become code, and "not significant" verdicts get the report's label."""
    parts = escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    return text.replace("not significant", '<span class="ns">not significant</span>')


def flags(runs: list[dict]) -> str:
    out = []
    if bound := c.client_bound(runs):
        busiest = max(c.num(r, ("client", "busiest_process_cpu_pct")) or 0 for r in bound)
        share = f" {len(bound)}/{len(runs)}" if len(runs) > 1 else ""
        out.append(f'<span class="flag cb">client-bound</span><span class="fnote">load generator '
                   f'{c.fmt("pct1", busiest)}%{share}</span>')
    if c.failed(runs):
        out.append('<span class="flag failed">failed</span>')
    steal = max((c.num(r, ("steal_pct", "mean")) or 0 for r in runs), default=0)
    if steal >= STEAL_FLAG_PCT:
        out.append(f'<span class="flag steal">steal {c.fmt("pct1", steal)}%</span>')
    return "".join(out)


def scenario_about(data: dict, scenario: str) -> str:
    """The scenario in words, from its runs' parameters (what the steps vary listed per step)."""
    p = lambda k: c.param(data, scenario, k)  # noqa: E731
    first = c.runs_of(data, scenario)[:1]
    several = len(c.steps_of(data, scenario)) > 1
    varied = {k for r in c.runs_of(data, scenario) for k in c.step_params(r)} if several else set()
    part = lambda k, text: None if k in varied else text  # noqa: E731
    bits = [part("users", f"{c.fmt('int', p('users'))} members"),
            part("room_size", f"rooms of {c.fmt('int', p('room_size'))}"),
            part("rate", f"{c.fmt('step', p('rate'))} msg/s each"),
            part("size", f"{c.fmt('bytes', p('size'))} {p('kind')} messages") or f"{p('kind')} messages",
            f"{c.fmt('int', p('nonreading'))} member(s) per room never reading" if p("nonreading") else None,
            f"bursts of {c.fmt('int', p('burst'))} messages per member" if p("burst") else None]
    steps = [c.describe_step(c.runs_of(data, scenario, step=s)[0]) for s in c.steps_of(data, scenario)]
    reps = max((r.get("repeat") or 0 for r in c.runs_of(data, scenario)), default=0) + 1
    text = ", ".join(b for b in bits if b) + (f"; steps: {'; '.join(steps)}" if len(steps) > 1 else "")
    text += (f"; measured over {c.fmt('step', p('window'))} s (warm-up {c.fmt('step', p('warmup'))} s, drain "
             f"{c.fmt('step', p('drain'))} s), {reps} repeat{'s' * (reps != 1)}")
    if p("slo_p95_ms") is not None:
        text += f"; SLO: RTT p95 under {c.fmt('ms', p('slo_p95_ms'))} ms with no loss"
    return text if first else ""


def bucket_value(run: dict, group: str, name: str) -> float | None:
    led = run.get("ledger") or {}
    key = {"dropped by server": "dropped_by_server", "lost with close": "lost_with_close"}.get(group)
    n = (led.get(key) or {}).get(name, 0) if key else led.get(group.replace(" ", "_"))
    return 100.0 * n / led["expected"] if led.get("expected") and isinstance(n, int | float) else None


def rows_for(runs: list[dict]) -> list[Row]:
    seen = sorted({(g, n) for r in runs for g, n, _ in c.buckets(r.get("ledger")) if g != "unexplained"})
    buckets = [Row(f"↳ {g}{': ' + n if n else ''} (% of expected)",
                   lambda r, g=g, n=n: bucket_value(r, g, n), "pct", sub=True) for g, n in seen]
    unexplained = Row("↳ unexplained (deliveries, worst run)", ("ledger", "unexplained"), "int", sub=True,
                      alarm=True)
    rows = [*ROWS, *buckets, unexplained, *ROWS_AFTER]
    return [r for r in rows if r.alarm or any(c.num(run, r.path) is not None for run in runs)]


def compare(row: Row, stats: dict[str, c.Stat | None]) -> tuple[str | None, dict[str, str]]:
    """The best target of a row (None unless it differs significantly from another) and a tag for each
    other target: how far it is from the best, or "not significant"."""
    have = {t: s for t, s in stats.items() if s is not None}
    if row.better is None or len(have) < 2:
        return None, {}
    best = (min if row.better == "low" else max)(have, key=lambda t: have[t].median)
    b, tags = have[best], {}
    for t, s in have.items():
        if t == best or c.fmt(row.kind, s.median) == c.fmt(row.kind, b.median):
            continue  # the same figure as shown: nothing to compare
        rule = c.differ(b, s)
        tags[t] = (f'<span class="tag ns">not significant ({escape(rule)})</span>' if rule
                   else f'<span class="tag">{distance(row, b.median, s.median)}</span>')
    return (best if any("ns" not in tag for tag in tags.values()) else None), tags


def distance(row: Row, best: float, other: float) -> str:
    """How much worse `other` is than `best`: points for percentages, else percent or a factor."""
    if row.kind == "pct":
        return f"+{c.fmt('pct', abs(other - best))} pts"
    worse, better = (other, best) if row.better == "low" else (best, other)
    if better <= 0:
        return "more" if row.better == "low" else "less"
    r = worse / better
    if r < 2:
        return f"+{r - 1:.0%}" if row.better == "low" else f"−{1 - 1 / r:.0%}"
    return c.ratio(better, worse) + (" more" if row.better == "low" else " less")


def scroll(table: str) -> str:
    return f'<div class="scroll">{table}</div>'


# ---------------------------------------------------------------- results by scenario

def comparison_table(data: dict, scenario: str, step: object, targets: list[str], col: dict,
                     where: str = "in this scenario") -> str:
    """Every figure side by side, one column group per target: median, [min–max], and how it compares."""
    groups = {t: g for t in targets if (g := c.runs_of(data, scenario, t, step))}
    absent = [t for t in targets if t not in groups]
    if not groups:
        return "<p>No run at this step.</p>"
    spread = any(len(c.usable(g)) > 1 for g in groups.values())
    span = 2 if spread else 1
    rows = rows_for([r for g in groups.values() for r in g])
    head = "".join(f'<th colspan="{span}" class="tgt" style="border-top-color:{col[t]}">{swatch(col[t])}'
                   f'{escape(str(t))}{flags(g)}</th>' for t, g in groups.items())
    out = [f'<table class="cmp"><thead><tr><th rowspan="{1 + spread}">figure</th>{head}</tr>']
    if spread:
        pair = '<th class="num">median</th><th class="rng">[min–max]</th>'
        out.append(f"<tr>{pair * len(groups)}</tr>")
    out.append("</thead><tbody>")
    for row in rows:
        stats = {t: c.fold(g, row.path, every=row.alarm) for t, g in groups.items()}
        best, tags = compare(row, stats)
        cells = []
        for t, s in stats.items():
            cls = "num" + (" best" if t == best else "") + (" bad" if row.alarm and s and s.hi > 0 else "")
            shown = c.fmt(row.kind, s.hi) if row.alarm and s else c.fmt_stat(row.kind, s)
            cells.append(f'<td class="{cls}">{shown}{tags.get(t, "")}</td>')
            if spread:
                ranged = s and s.n > 1 and not row.alarm
                rng = f"[{c.fmt(row.kind, s.lo)}–{c.fmt(row.kind, s.hi)}]" if ranged else ""
                cells.append(f'<td class="rng">{rng}</td>')
        cls = "sub" if row.sub else ""
        out.append(f'<tr class="{cls}"><th>{escape(row.label)}</th>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    note = f'<p class="about">Not run {where}: {escape(", ".join(map(str, absent)))}.</p>' if absent else ""
    return scroll("".join(out)) + note + failure_notes([r for g in groups.values() for r in g])


def failure_notes(runs: list[dict]) -> str:
    items = "".join(f'<li><b>{escape(str(r.get("target")))}</b>, {escape(c.where(r))}, run '
                    f'{(r.get("repeat") or 0) + 1} <span class="flag failed">failed</span>'
                    f'<pre>{escape(str(r.get("failure") or ""))}</pre></li>' for r in c.failed(runs))
    return f'<ul class="failures">{items}</ul>' if items else ""


def step_table(data: dict, scenario: str, targets: list[str], col: dict) -> str:
    """A multi-step scenario at a glance: one row per step, the headline figures per target."""
    slo = c.param(data, scenario, "slo_p95_ms")
    targets = [t for t in targets if c.runs_of(data, scenario, t)]
    figs = [("deliveries/s", c.DPS, "rate"), ("RTT p95 ms", c.P95, "ms"), ("loss %", c.LOSS, "pct"),
            ("µs/dlv", c.COST, "us")]
    head = "".join(f'<th colspan="{len(figs)}" class="tgt" style="border-top-color:{col[t]}">{swatch(col[t])}'
                   f'{escape(str(t))}</th>' for t in targets)
    sub = "".join(f'<th class="num">{name}</th>' for name, _, _ in figs) * len(targets)
    out = [f'<table class="cmp steps"><thead><tr><th rowspan="2">step</th><th rowspan="2" class="num">offered'
           f'<br>deliveries/s</th>{head}</tr><tr>{sub}</tr></thead><tbody>']
    for step in c.steps_of(data, scenario):
        runs = c.runs_of(data, scenario, step=step)
        cells = []
        for t in targets:
            g = c.runs_of(data, scenario, t, step)
            if not g:
                cells.append(f'<td class="na" colspan="{len(figs)}">not run</td>')
                continue
            for _, path, kind in figs:
                s = c.fold(g, path)
                warn = (path == c.P95 and slo is not None and (s is None or s.median > slo)) or \
                    (path == c.LOSS and s is not None and s.median > 0)
                extra = flags(g) if path == c.DPS else ""
                cells.append(f'<td class="num{" over" if warn else ""}">{c.fmt_stat(kind, s)}{extra}</td>')
        out.append(f'<tr><th>{escape(c.short_step(runs[0]))}</th><td class="num">'
                   f'{c.fmt("rate", c.offered_deliveries(runs[0]))}</td>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return scroll("".join(out))


def scenario_section(data: dict, scenario: str, targets: list[str], col: dict) -> str:
    steps = c.steps_of(data, scenario)
    out = [f'<h3 id="scenario-{escape(str(scenario))}">{escape(str(scenario))}</h3>',
           f'<p class="about">{escape(scenario_about(data, scenario))}</p>']
    if len(steps) == 1:
        out.append(comparison_table(data, scenario, steps[0], targets, col))
        return "".join(out)
    out.append(step_table(data, scenario, targets, col))
    for step in steps:
        first = c.runs_of(data, scenario, step=step)[0]
        out.append(f"<details><summary>All figures at {escape(c.describe_step(first))} (offered "
                   f"{c.fmt('rate', c.offered_deliveries(first))} deliveries/s)</summary>"
                   f"{comparison_table(data, scenario, step, targets, col, 'at this step')}</details>")
    return "".join(out)


def charts_section(data: dict, targets: list[str], col: dict) -> str:
    scenarios = c.scenario_names(data)
    if not scenarios:
        return "<p>No run was measured: nothing to chart.</p>"
    what = {"load": "latency and throughput against load", "size": "loss and latency against message size",
            "room_size": "latency and cost against room size"}
    out = [f'<h3>{escape(str(sc))}: {what[c.sweep_axis(data, sc)]}</h3><div class="grid">'
           f"{sweep_charts(data, sc, targets, col)}</div>"
           for sc in scenarios if len(c.steps_of(data, sc)) > 1]
    out.append('<h3>Deliveries per second over time</h3><p class="about">Per target, second by second '
               "through each measurement window (runs one after another; the dashed grey line is what "
               "was offered). A stalled room shows here as a dip even when the percentiles of what did "
               "arrive look fine.</p>"
               '<div class="grid">' + "".join(timeline_chart(data, sc, targets, col) for sc in scenarios)
               + "</div>")
    return "".join(out)


# ---------------------------------------------------------------- capacity, autopsy

def capacity_section(data: dict, targets: list[str], col: dict) -> str:
    ramps = c.ramp_scenarios(data)
    if not ramps:
        return ("<p>No ramp scenario in this run: capacity at an SLO is not measured (scenario "
                "<code>ramp</code>).</p>")
    out = []
    for sc in ramps:
        slo = c.fmt("ms", c.param(data, sc, "slo_p95_ms"))
        out.append(f"<h3>{escape(sc)}</h3><p class=\"about\">The largest step whose runs all kept the "
                   f"senders' RTT p95 under {slo} ms with zero loss.</p>"
                   '<table class="cmp"><thead><tr><th>target</th><th>capacity</th><th class="num">offered '
                   'deliveries/s</th><th class="num">deliveries/s</th><th class="num">RTT p95 ms</th>'
                   '<th class="num">server µs/delivery</th><th>next step</th></tr></thead><tbody>')
        for t in targets:
            cap = c.capacity(data, sc, t)
            at = cap.state in ("at", "beyond")
            cells = "".join(f'<td class="num">{c.fmt_stat(kind, c.fold(cap.runs, path)) if at else "—"}</td>'
                            for path, kind in ((c.DPS, "rate"), (c.P95, "ms"), (c.COST, "us")))
            nxt = (f"{cap.stopped_label}: {cap.stopped_why}" if cap.stopped_why
                   else "the ramp ended under the SLO" if cap.state == "beyond" else "")
            out.append(f"<tr><th>{swatch(col[t])}{escape(str(t))}</th><td>"
                       f"{escape(cap.label if at else c.capacity_text(cap))}{flags(cap.runs)}</td>"
                       f'<td class="num">{c.fmt("rate", cap.offered) if at else "—"}</td>{cells}'
                       f"<td>{escape(nxt)}</td></tr>")
        out.append("</tbody></table>")
    return "".join(out)


def evidence(run: dict) -> list[str]:
    """What the server's /stats difference, the sockets and the kernel say beside the ledger."""
    d = c.get(run, "server", "delta")
    if not isinstance(d, dict):
        out = ["no /stats difference: the server was not reachable at the end of the run"]
    else:
        closes = c.codes_text(d.get("close_codes") or {})
        sent, got = d.get("deliveries"), c.get(run, "ledger", "delivered")
        gap = (f" (out − delivered {c.fmt('int', sent - got)})"
               if isinstance(sent, int | float) and isinstance(got, int | float) else "")
        out = [f"/stats: in {c.fmt('int', d.get('messages_in'))}; out {c.fmt('int', sent)}{gap}; drops "
               f"{c.map_text({k: v for k, v in (d.get('drops') or {}).items() if v})}; close codes "
               f"{closes}; backlog at end {c.fmt('int', d.get('backlog'))}"]
    q = c.get(run, "socket_queues_peak")
    if isinstance(q, dict) and any(q.values()):
        size = lambda k: c.fmt("size", q.get(k) or 0)  # noqa: E731
        out.append(f"socket queues, peak: server Send-Q {size('server_send_q')} (largest socket "
                   f"{size('server_send_q_max')}), server Recv-Q {size('server_recv_q')}, clients' Recv-Q "
                   f"{size('client_recv_q')}")
    tcp = c.get(run, "evidence", "tcp_counters")
    if isinstance(tcp, dict) and tcp:
        drops = sum(tcp.get(k, 0) for k in c.KERNEL_DROPS)
        out.append(f"kernel: {c.fmt('int', tcp.get(c.ZERO_WINDOW, 0))} zero-window advertisements, "
                   f"{c.fmt('int', drops)} TCP drops, {c.fmt('int', tcp.get('RetransSegs', 0))} retransmits")
    log = c.get(run, "evidence", "server_log")
    if isinstance(log, list) and log:
        out.append(f"server log: {len(log)} line{'s' * (len(log) != 1)}, first: {str(log[0])[:160]}")
    return out


def bucket_cell(items: list[tuple[str, int]], expected: float | None) -> str:
    pct = lambda n: f" ({c.fmt('pct', 100.0 * n / expected)}%)" if expected else ""  # noqa: E731
    return "<br>".join(f"{escape(name)} {c.fmt('int', n)}{pct(n)}" for name, n in items) or "0"


def autopsy_row(r: dict) -> str:
    led = r.get("ledger") or {}
    exp = led.get("expected")
    pct = lambda n: f" ({c.fmt('pct', 100.0 * n / exp)}%)" if exp and n else ""  # noqa: E731
    dropped = [(k, n) for k, n in sorted((led.get("dropped_by_server") or {}).items()) if n]
    closed = [(k, n) for k, n in sorted((led.get("lost_with_close") or {}).items()) if n]
    unexplained, inflight = led.get("unexplained") or 0, led.get("in_flight") or 0
    step = c.short_step(r)
    label = f"{r.get('scenario')}{' ' + step if step else ''}, run {(r.get('repeat') or 0) + 1}"
    return (f"<tr><th>{escape(label)}{flags([r])}</th><td class=\"num\">{c.fmt('int', exp)}</td>"
            f"<td class=\"num\">{c.fmt('int', led.get('delivered'))}{pct(led.get('delivered') or 0)}</td>"
            f"<td>{bucket_cell(dropped, exp)}</td><td>{bucket_cell(closed, exp)}</td>"
            f"<td class=\"num\">{c.fmt('int', inflight)}{pct(inflight)}</td>"
            f"<td class=\"num{' bad' if unexplained > 0 else ''}\">{c.fmt('int', unexplained)}"
            f"{pct(unexplained)}</td><td class=\"num{' over' if (led.get('loss_pct') or 0) > 0 else ''}\">"
            f"{c.fmt('pct', led.get('loss_pct'))}</td><td>{c.fmt('int', led.get('duplicates'))} / "
            f"{c.fmt('int', led.get('reordered'))}</td>"
            f'<td class="ev">{"<br>".join(escape(e) for e in evidence(r))}</td></tr>')


def autopsy_section(data: dict, targets: list[str], col: dict) -> str:
    out = ['<p class="about">Every expected delivery of every run, in exactly one bucket, with the evidence '
           "beside it: the server's <code>/stats</code> difference, peak socket queues, and the kernel's TCP "
           "counters (machine-wide) when the run recorded them.</p>"]
    for t in targets:
        runs = c.runs_of(data, target=t)
        out.append(f"<h3>{swatch(col[t])}{escape(str(t))}</h3>")
        if not runs:
            out.append("<p>No runs.</p>")
            continue
        out.append(scroll('<table class="cmp autopsy"><thead><tr><th>run</th><th class="num">expected</th>'
                          '<th class="num">delivered</th><th>dropped by server</th><th>lost with close</th>'
                          '<th class="num">in flight</th><th class="num">unexplained</th>'
                          '<th class="num">loss %</th><th>dup / reord</th><th>evidence</th></tr></thead>'
                          "<tbody>"
                          + "".join(autopsy_row(r) for r in runs) + "</tbody></table>"))
    return "".join(out)


# ---------------------------------------------------------------- claims, environment, method

VERDICT_CLASS = {c.HOLDS: "holds", c.FAILS: "fails", c.OTHER: "other", c.UNMEASURED: "unmeasured",
                 c.UNSETTLED: "unsettled"}


def verdict_badge(verdict: str) -> str:
    return f'<span class="verdict {VERDICT_CLASS[verdict]}">{escape(verdict)}</span>'


def claims_section(data: dict) -> str:
    found = c.claims(data)
    overview = "".join(f'<tr><th><a href="#claim-{cl.number}">{cl.number}</a></th>'
                       f"<td>{labelled(cl.claim)}</td><td>{verdict_badge(cl.verdict)}</td></tr>"
                       for cl in found)
    out = ['<table class="cmp overview"><thead><tr><th>#</th><th>claim (SEED.md)</th><th>verdict</th></tr>'
           f"</thead><tbody>{overview}</tbody></table>"]
    for cl in found:
        figs = "".join(f"<li>{labelled(f)}</li>" for f in cl.figures)
        out.append(f'<div class="claim" id="claim-{cl.number}"><div class="claim-head"><span class="cnum">'
                   f'{cl.number}</span><span class="ctext">{labelled(cl.claim)}</span>'
                   f"{verdict_badge(cl.verdict)}</div><p><b>Experiment.</b> {labelled(cl.experiment)}</p>"
                   + (f"<p><b>Measured in this run.</b></p><ul>{figs}</ul>" if figs else "")
                   + f"<p><b>Why.</b> {labelled(cl.why)}</p></div>")
    out.append('<div class="known"><h3>Context: what the libraries\' source already says</h3><p>From '
               "SEED.md's \"What is already known\", read from the libraries' source code: <b>not measured "
               "by this run</b>, stated so that the figures above can be read against it.</p><ul>"
               + "".join(f"<li>{labelled(k)}</li>" for k in c.KNOWN) + "</ul></div>")
    return "".join(out)


def kv_table(items: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v)) if v not in (None, '') else '—'}</td></tr>"
                   for k, v in items)
    return f'<table class="kv">{rows}</table>'


def harness_text(h: object) -> str:
    if not isinstance(h, dict):
        return "not measured in this run"
    per = h.get("deliveries_per_core_s") or {}
    spread = (f"{c.fmt('rate', per.get('median'))} deliveries per client core-second (median; "
              f"{c.fmt('rate', per.get('min'))}–{c.fmt('rate', per.get('max'))})") if per else ""
    steal = f", steal {c.fmt('pct1', h.get('steal_pct'))}%" if h.get("steal_pct") is not None else ""
    return "; ".join(x for x in (str(h.get("summary") or ""), spread + steal) if x)


def environment_section(data: dict, col: dict) -> str:
    env = data.get("environment") or {}
    plan = env.get("cpu_plan") or {}
    mem = env.get("memory_bytes")
    out = [kv_table([
        ("CPU model", env.get("cpu_model")), ("cores", env.get("cores")),
        ("usable CPUs", ", ".join(map(str, env.get("usable_cpus") or [])) or None),
        ("memory", f"{mem / 2**30:.1f} GiB" if isinstance(mem, int | float) else None),
        ("kernel", env.get("kernel")), ("Python", env.get("python")), ("fd limit", env.get("fd_limit")),
        ("CPU pinning", (f"servers on CPUs {plan.get('server_cpus')}, load generator on "
                         f"{plan.get('client_cpus')} — {plan.get('note', '')}") if plan else None),
        ("harness (load generator self-benchmark)", harness_text(env.get("harness"))),
        ("command", " ".join(map(str, data.get("argv") or [])) or None),
    ])]
    out.append('<div class="cols"><div><h3>Package versions</h3>'
               + kv_table(sorted((env.get("packages") or {}).items()))
               + "</div><div><h3>TCP buffer sysctls</h3>"
               + kv_table(sorted((env.get("sysctls") or {}).items())) + "</div></div><h3>Targets</h3>")
    for t, desc in (data.get("targets") or {}).items():
        desc = desc if isinstance(desc, dict) else {}
        out.append(f"<h4>{swatch(col.get(t, OFFERED))}{escape(str(t))}</h4>" + kv_table([
            ("about", desc.get("about")), ("server", desc.get("server")),
            ("fan-out / layer", f"{desc.get('fanout')} / {desc.get('layer')}"),
            ("processes", desc.get("processes")), ("server command", desc.get("server_command")),
            ("launcher", "; ".join(desc.get("launcher") or [])),
            ("environment", " ".join(f"{k}={v}" for k, v in (desc.get("env") or {}).items()) or "(none)"),
            ("config", json.dumps(desc.get("config"), sort_keys=True)),
        ]))
    return "".join(out)


METHOD = [
    ("The ledger.",
     "Expected deliveries are every message sent (warm-up and drain included) times the members of its room "
     "connected when it was sent, the sender included. Each is settled into exactly one bucket: delivered; "
     "dropped by the server (the server's <code>/stats</code> drop counters, by cause); lost with a closed "
     "connection (by close code, and whether the sender's or the recipient's connection closed); in flight "
     "(still on its way when the rooms settled: late, not lost); or unexplained, shown in red. Loss % counts "
     "what will never arrive: expected − delivered − in flight."),
    ("Client-bound.",
     "A run whose busiest load-generator process was saturated during the measurement window (the runner's "
     "<code>client_bound</code> flag) is labelled client-bound, with that process's mean CPU: its throughput "
     "and latency are the load generator's limit, not the server's. Server CPU µs per delivery stays valid "
     "either way, which is why it is the headline cost figure."),
    ("Not significant.",
     "Figures are the median over repeats with the [min–max] range. A difference between two targets is "
     "labelled not significant when their ranges overlap (both have several repeats) or, when either has a "
     f"single run, when it is within {c.SIGNIFICANT:.0%} of the larger value; each label says which rule "
     "applied. Other cells show how far they are from the best target of the row (in bold)."),
    ("Capacity at the SLO.",
     "The largest ramp step before the first step where any run failed, lost messages, or had an RTT p95 "
     "over the scenario's SLO (the rule the runner stops a ramp by). Failed runs keep what was measured; "
     "their figures are used only when every repeat of a step failed, and their failure text is shown."),
    ("Steal.", f"A run whose mean CPU steal reached {STEAL_FLAG_PCT:.0f}% is flagged."),
]


def method_section(data: dict) -> str:
    notes = "".join(f"<p><b>{title}</b> {text}</p>" for title, text in METHOD)
    return (notes + "<p><b>The data.</b> Every figure comes from <code>results.json</code> beside this file "
            f"(format version {escape(str(data.get('format_version')))}), which also holds the per-run "
            "samples and Locust commands.</p>")


# ---------------------------------------------------------------- the page

CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--soft:#f6f7f9;--bad:#c62828;--warn:#a15c00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:#fff}
main{max-width:1240px;margin:0 auto;padding:28px 24px 72px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:44px 0 12px;padding-bottom:6px;
border-bottom:1px solid var(--line)}h3{font-size:16px;margin:26px 0 6px}h4{font-size:14px;margin:18px 0 4px}
.meta,.about,figcaption{color:var(--muted);font-size:13px}
nav{font-size:13px;margin:10px 0 0}nav a{color:var(--muted);margin-right:14px;text-decoration:none}
.banner{border:1px solid #f0c27b;background:#fff8ec;padding:10px 14px;border-radius:6px;margin:16px 0}
.banner.failed{border-color:#f5b5ae;background:#fdf1f0}
.verdict-text{font-size:15.5px;max-width:980px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 6px}
th,td{padding:4px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:600;background:var(--soft)}
tbody th{font-weight:500;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.rng{color:var(--muted);font-size:12px;white-space:nowrap;font-variant-numeric:tabular-nums}
th.tgt{border-top:3px solid;text-align:center;white-space:nowrap}
tr.sub th{font-weight:400;color:var(--muted);padding-left:18px}
td.best{font-weight:700}
td.na{color:var(--muted);font-style:italic;text-align:center}
.tag{display:block;font-size:11px;color:var(--muted);font-weight:400}
.ns{color:var(--muted);font-style:italic}
.bad{color:var(--bad);font-weight:700}
.over{color:var(--warn)}
.flag{display:inline-block;font-size:11px;line-height:16px;padding:0 6px;border-radius:8px;margin-left:5px;
font-weight:600;font-style:normal;vertical-align:1px}
.flag.cb{background:#fff3e0;color:#8a4b00;border:1px solid #f0c27b}
.flag.failed{background:#fdecea;color:var(--bad);border:1px solid #f5b5ae}
.flag.steal{background:#eef2ff;color:#3949ab;border:1px solid #c5cae9}
.fnote{display:block;font-size:11px;color:var(--muted);font-weight:400}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
details{margin:4px 0}summary{cursor:pointer;color:var(--muted);font-size:13px}
.scroll{overflow-x:auto}table.steps th,table.steps td{padding:4px 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px 24px}
figure{margin:0}.ftitle{font-weight:600;font-size:14px;margin:6px 0 0}
svg.chart{max-width:100%;height:auto;font-family:inherit}
pre{white-space:pre-wrap;background:var(--soft);padding:8px 10px;font-size:12px;border-radius:4px;
margin:4px 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
table.kv td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;
word-break:break-all}
.cols{display:flex;gap:48px;flex-wrap:wrap}.cols table.kv th{width:auto}
table.kv th{width:260px;color:var(--muted);font-weight:500}
table.autopsy{width:100%}table.autopsy td.ev{font-size:12px;color:var(--muted);min-width:300px}
table.overview td{font-size:13.5px}table.overview a{color:inherit}
.claim{border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:12px 0}
.claim p{margin:6px 0}.claim ul{margin:4px 0 6px;padding-left:22px;font-size:14px}
.claim-head{display:flex;gap:12px;align-items:baseline}.cnum{font-weight:700;color:var(--muted);min-width:26px}
.ctext{flex:1;font-weight:600}
.verdict{white-space:nowrap;font-size:12px;font-weight:700;padding:1px 9px;border-radius:10px;
border:1px solid}
.verdict.holds{color:#2e7d32;background:#edf7ee;border-color:#a5d6a7}
.verdict.fails{color:var(--bad);background:#fdecea;border-color:#f5b5ae}
.verdict.other{color:#8a4b00;background:#fff3e0;border-color:#f0c27b}
.verdict.unmeasured,.verdict.unsettled{color:#555;background:#f1f2f4;border-color:#d5d8de}
.known{background:var(--soft);border-radius:8px;padding:4px 16px 8px;margin-top:18px;font-size:14px}
"""


def section(title: str, body: str) -> str:
    return f'<section id="{SECTIONS[title]}"><h2>{escape(title)}</h2>{body}</section>'


def banner(data: dict) -> str:
    status = data.get("status") or "unknown"
    runs = data.get("runs") or []
    out = []
    if status != "complete":
        what = {"interrupted": "was interrupted", "running": "was still running when this report was written"}
        idle = [t for t in c.target_names(data) if not c.runs_of(data, target=t)]
        missing = f"; no runs for {escape(', '.join(map(str, idle)))}" if idle else ""
        out.append(f'<div class="banner"><b>Status: {escape(status)}.</b> This run '
                   f'{escape(what.get(status, "did not complete"))}: the report covers the {len(runs)} runs '
                   f"measured{missing}.</div>")
    if bad := c.failed(runs):
        items = "".join(f"<li><b>{escape(str(r.get('target')))}</b> {escape(c.where(r))}, run "
                        f"{(r.get('repeat') or 0) + 1}: {escape(c.first_line(r.get('failure')))}</li>"
                        for r in bad)
        out.append(f'<div class="banner failed"><b>{len(bad)} failed run{"s" * (len(bad) != 1)}</b> '
                   f"(what they measured is kept):<ul>{items}</ul></div>")
    return "".join(out)


def html_report(data: dict) -> str:
    targets, col = c.target_names(data), colors(data)
    title = "Real-time chat benchmark: " + (" vs ".join(map(str, targets)) or "no targets")
    scenarios = "".join(scenario_section(data, sc, targets, col) for sc in c.scenario_names(data))
    nav = "".join(f'<a href="#{anchor}">{escape(name)}</a>' for name, anchor in SECTIONS.items())
    meta = (f"started {data.get('started') or '—'} · finished {data.get('finished') or '—'} · status "
            f"{data.get('status') or 'unknown'} · {len(data.get('runs') or [])} runs")
    body = [
        f'<h1>{escape(title)}</h1><p class="meta">{escape(meta)}</p><nav>{nav}</nav>', banner(data),
        section("Verdict", f'<p class="verdict-text">{labelled(c.summary(data))}</p>'),
        section("Results by scenario", '<p class="about">Median over repeats, [min–max] when there are '
                "several; bold is the best target of the row; a percentage, factor or <i>not significant</i> "
                "tag compares each other target with it.</p>" + (scenarios or "<p>No run was measured.</p>")),
        section("Charts", charts_section(data, targets, col)),
        section("Capacity at the SLO", capacity_section(data, targets, col)),
        section("Loss autopsy", autopsy_section(data, targets, col)),
        section("The seed's claims, tested", claims_section(data)),
        section("Environment", environment_section(data, col)),
        section("Method notes", method_section(data)),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><main>{"".join(body)}</main></body></html>\n')


# ---------------------------------------------------------------- Markdown and the terminal

def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_stat(kind: str, s: c.Stat | None) -> str:
    if s is None:
        return "—"
    return c.fmt(kind, s.median) + (f" [{c.fmt(kind, s.lo)}–{c.fmt(kind, s.hi)}]" if s.n > 1 else "")


def md_flags(runs: list[dict]) -> str:
    out = ["client-bound"] if c.client_bound(runs) else []
    out += ["failed"] if c.failed(runs) else []
    out += ["unexplained"] if any((c.num(r, ("ledger", "unexplained")) or 0) > 0 for r in runs) else []
    return ", ".join(out)


def markdown_report(data: dict) -> str:
    targets = c.target_names(data)
    out = [f"# Real-time chat benchmark: {' vs '.join(map(str, targets)) or 'no targets'}", "",
           f"Status: **{data.get('status') or 'unknown'}**, {len(data.get('runs') or [])} runs, started "
           f"{data.get('started') or '—'}.", "", c.summary(data), ""]
    for sc in c.scenario_names(data):
        out += [f"## {sc}", "", scenario_about(data, sc), "",
                "| target | step | deliveries/s | RTT p50 / p95 / p99 ms | loss % | server µs/delivery | "
                "peak RSS MiB | flags |", "|---|---|---:|---:|---:|---:|---:|---|"]
        for t in targets:
            for step in c.steps_of(data, sc, t):
                g = c.runs_of(data, sc, t, step)
                rtt = " / ".join(c.fmt_stat("ms", c.fold(g, ("rtt_ms", p))) for p in PCTS[:3])
                cells = [md_cell(t), md_cell(c.short_step(g[0]) or "—"), md_stat("rate", c.fold(g, c.DPS)),
                         rtt, md_stat("pct", c.fold(g, c.LOSS)), md_stat("us", c.fold(g, c.COST)),
                         md_stat("mib", c.fold(g, ("server", "rss_peak_bytes"))), md_flags(g)]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if c.ramp_scenarios(data):
        out += ["## Capacity at the SLO", "",
                "| scenario | target | capacity | RTT p95 ms | server µs/delivery |",
                "|---|---|---|---:|---:|"]
        for sc in c.ramp_scenarios(data):
            for t in targets:
                cap = c.capacity(data, sc, t)
                out.append(f"| {sc} | {md_cell(t)} | {md_cell(c.capacity_text(cap))} | "
                           f"{c.fmt_stat('ms', c.fold(cap.runs, c.P95))} | "
                           f"{c.fmt_stat('us', c.fold(cap.runs, c.COST))} |")
        out.append("")
    out += ["## The seed's claims, tested", "", "| # | claim | verdict | figure |", "|---|---|---|---|"]
    for cl in c.claims(data):
        out.append(f"| {cl.number} | {md_cell(cl.claim)} | **{cl.verdict}** | "
                   f"{md_cell('; '.join(cl.figures[:2]) or cl.why)} |")
    env = data.get("environment") or {}
    pk = env.get("packages") or {}
    versions = ", ".join(f"{k} {pk[k]}" for k in ("daphne", "channels", "uvicorn", "fastapi", "locust")
                         if pk.get(k))
    pinning = (env.get("cpu_plan") or {}).get("note", "—")
    out += ["", "## Environment", "",
            f"{env.get('cpu_model', '?')}, {env.get('cores', '?')} cores, Linux {env.get('kernel', '?')}, "
            f"Python {env.get('python', '?')}; {versions}; CPU pinning: {pinning}; harness: "
            f"{harness_text(env.get('harness'))}.", "", "Full report: report.html; data: results.json.", ""]
    return "\n".join(out)


def summary_group(data: dict, scenario: str, target: str) -> tuple[list[dict], str]:
    """The runs a one-line summary shows: the single step; a ramp's capacity step (else its first); a sweep's
    first step that lost messages (else its last)."""
    steps = c.steps_of(data, scenario, target)
    if not steps:
        return [], "not run"
    if c.param(data, scenario, "slo_p95_ms") is not None:
        cap = c.capacity(data, scenario, target)
        if cap.state in ("at", "beyond"):
            return cap.runs, f"SLO capacity at {cap.label}"
        first = c.runs_of(data, scenario, target, steps[0])
        return first, f"over the SLO from the first step ({c.short_step(first[0])})"
    if len(steps) == 1:
        return c.runs_of(data, scenario, target, steps[0]), ""
    groups = [c.runs_of(data, scenario, target, s) for s in steps]
    lossy = next((g for g in groups if (c.fold(g, c.LOSS) or c.Stat(0, 0, 0, 0)).median > 0), None)
    measured = [g for g in groups if any(c.get(r, "ledger", "expected") for r in g)] or groups
    g = lossy or measured[-1]
    return g, f"{'first loss at' if lossy else 'largest step measured:'} {c.short_step(g[0])}"


def print_summary(data: dict) -> None:
    """One line per (scenario, target): deliveries/s, RTT p95, loss, server cost, flags."""
    targets, scenarios = c.target_names(data), c.scenario_names(data)
    tw = max([len(str(t)) for t in targets] + [6])
    sw = max([len(str(s)) for s in scenarios] + [8])
    print(f"{'scenario':<{sw}}  {'target':<{tw}}  {'deliveries/s':>12}  {'rtt p95 ms':>10}  {'loss %':>7}  "
          f"{'server us/dlv':>13}  flags")
    for sc in scenarios:
        for t in targets:
            g, note = summary_group(data, sc, t)
            figures = [c.fmt_stat(kind, c.fold(g, path)) if g else "—"
                       for path, kind in ((c.DPS, "rate"), (c.P95, "ms"), (c.LOSS, "pct"), (c.COST, "us"))]
            flag = ", ".join(x for x in (note, md_flags(g)) if x)
            print(f"{sc!s:<{sw}}  {t!s:<{tw}}  {figures[0]:>12}  {figures[1]:>10}  {figures[2]:>7}  "
                  f"{figures[3]:>13}  {flag}")
    if not scenarios:
        print(f"(no runs; status {data.get('status') or 'unknown'})")
