"""The results by scenario: every figure side by side per target, median and [min–max] over repeats,
each compared with the best target of its row."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from bench.report.loss import buckets
from bench.report.markup import flags, scroll, swatch
from bench.report.numbers import fmt, plural, ratio
from bench.report.repeats import MIN_SAMPLES, Stat, differ, fmt_range, fmt_stat, fold, usable
from bench.report.runs import COST, DPS, LOSS, P95, Key, failed, num, offered_deliveries, param, runs_of, steps_of
from bench.report.steps import describe_step, scenario_about, short_step, where


@dataclass(frozen=True)
class Row:
    label: str
    path: Key
    kind: str
    better: str | None = None  # "low" or "high": the row compares targets
    sub: bool = False
    alarm: bool = False  # the worst run's value, in red when above zero
    samples: tuple[str, ...] | None = None  # how many messages a percentile came from


PCTS = ("p50", "p95", "p99", "max")
ROWS = [
    Row("offered send rate (msg/s)", ("offered_send_rate",), "rate"),
    Row("achieved send rate (msg/s)", ("achieved_send_rate",), "rate", "high"),
    Row("deliveries/s", DPS, "rate", "high"),
    *[Row(f"{name} {p} (ms)", (key, p), "ms", "low" if p != "max" else None, samples=(key, "count"))
      for name, key in (("RTT", "rtt_ms"), ("delivery latency", "latency_ms")) for p in PCTS],
    Row("loss %", LOSS, "pct", "low"),
]
ROWS_AFTER = [
    Row("server CPU µs/delivery", COST, "us", "low"),
    Row("server CPU % of a core (mean)", ("server", "cpu_pct_mean"), "pct1"),
    Row("server peak RSS (MiB)", ("server", "rss_peak_bytes"), "mib", "low"),
    Row("server RSS per connection (KiB)", ("server", "rss_per_connection_bytes"), "kib"),  # a lower bound
    Row("load generator: busiest process CPU %", ("client", "busiest_process_cpu_pct"), "pct1"),
    Row("CPU steal % (mean)", ("steal_pct", "mean"), "pct1"),
]


def bucket_value(run: dict, group: str, name: str) -> float | None:
    led = run.get("ledger") or {}
    key = {"dropped by server": "dropped_by_server", "lost with close": "lost_with_close"}.get(group)
    n = (led.get(key) or {}).get(name, 0) if key else led.get(group.replace(" ", "_"))
    return 100.0 * n / led["expected"] if led.get("expected") and isinstance(n, int | float) else None


def rows_for(runs: list[dict]) -> list[Row]:
    seen = sorted({(g, n) for r in runs for g, n, _ in buckets(r.get("ledger")) if g != "unexplained"})
    shares = [Row(f"↳ {g}{': ' + n if n else ''} (% of expected)",
                  lambda r, g=g, n=n: bucket_value(r, g, n), "pct", sub=True) for g, n in seen]
    unexplained = Row("↳ unexplained (deliveries, worst run)", ("ledger", "unexplained"), "int", sub=True,
                      alarm=True)
    rows = [*ROWS, *shares, unexplained, *ROWS_AFTER]
    return [r for r in rows if r.alarm or any(num(run, r.path) is not None for run in runs)]


def compare(row: Row, stats: dict[str, Stat | None]) -> tuple[str | None, dict[str, str]]:
    """The best target of a row (None unless it differs significantly from another) and a tag for each
    other target: how far it is from the best, or "not significant"."""
    have = {t: s for t, s in stats.items() if s is not None}
    if row.better is None or len(have) < 2:
        return None, {}
    best = (min if row.better == "low" else max)(have, key=lambda t: have[t].median)
    b, tags = have[best], {}
    for t, s in have.items():
        if t == best or fmt(row.kind, s.median) == fmt(row.kind, b.median):
            continue  # the same figure as shown: nothing to compare
        rule = differ(b, s)
        tags[t] = (f'<span class="tag ns">not significant ({escape(rule)})</span>' if rule
                   else f'<span class="tag">{distance(row, b.median, s.median)}</span>')
    return (best if any("ns" not in tag for tag in tags.values()) else None), tags


def distance(row: Row, best: float, other: float) -> str:
    """How much worse `other` is than `best`: points for percentages, else percent or a factor."""
    if row.kind == "pct":
        return f"+{fmt('pct', abs(other - best))} pts"
    worse, better = (other, best) if row.better == "low" else (best, other)
    if better <= 0:
        return "more" if row.better == "low" else "less"
    r = worse / better
    if r < 2:
        return f"+{r - 1:.0%}" if row.better == "low" else f"−{1 - 1 / r:.0%}"
    return ratio(better, worse) + (" more" if row.better == "low" else " less")


def comparison_table(data: dict, scenario: str, step: object, targets: list[str], col: dict,
                     where: str = "in this scenario") -> str:
    """Every figure side by side, one column group per target: median, [min–max], and how it compares."""
    groups = {t: g for t in targets if (g := runs_of(data, scenario, t, step))}
    absent = [t for t in targets if t not in groups]
    if not groups:
        return "<p>No run at this step.</p>"
    spread = any(len(usable(g)) > 1 for g in groups.values())
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
        stats = {t: fold(g, row.path, every=row.alarm) for t, g in groups.items()}
        few = {t: n for t, g in groups.items()
               if row.samples and (n := fold(g, row.samples)) and 0 < n.median < MIN_SAMPLES}
        best, tags = compare(row, {t: s for t, s in stats.items() if t not in few})
        tags |= {t: f'<span class="tag">from {plural(int(n.median), "message")}</span>' for t, n in few.items()}
        cells = []
        for t, s in stats.items():
            cls = "num" + (" best" if t == best else "") + (" bad" if row.alarm and s and s.hi > 0 else "")
            shown = fmt(row.kind, s.hi) if row.alarm and s else fmt_stat(row.kind, s)
            cells.append(f'<td class="{cls}">{shown}{tags.get(t, "")}</td>')
            if spread:
                cells.append(f'<td class="rng">{"" if row.alarm else fmt_range(row.kind, s)}</td>')
        cls = "sub" if row.sub else ""
        out.append(f'<tr class="{cls}"><th>{escape(row.label)}</th>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    note = f'<p class="about">Not run {where}: {escape(", ".join(map(str, absent)))}.</p>' if absent else ""
    return scroll("".join(out)) + note + failure_notes([r for g in groups.values() for r in g])


def failure_notes(runs: list[dict]) -> str:
    items = "".join(f'<li><b>{escape(str(r.get("target")))}</b>, {escape(where(r))}, run '
                    f'{(r.get("repeat") or 0) + 1} <span class="flag failed">failed</span>'
                    f'<pre>{escape(str(r.get("failure") or ""))}</pre></li>' for r in failed(runs))
    return f'<ul class="failures">{items}</ul>' if items else ""


def step_table(data: dict, scenario: str, targets: list[str], col: dict) -> str:
    """A multi-step scenario at a glance: one row per step, the headline figures per target."""
    slo = param(data, scenario, "slo_p95_ms")
    targets = [t for t in targets if runs_of(data, scenario, t)]
    figs = [("deliveries/s", DPS, "rate"), ("RTT p95 ms", P95, "ms"), ("loss %", LOSS, "pct"),
            ("µs/dlv", COST, "us")]
    head = "".join(f'<th colspan="{len(figs)}" class="tgt" style="border-top-color:{col[t]}">{swatch(col[t])}'
                   f'{escape(str(t))}</th>' for t in targets)
    sub = "".join(f'<th class="num">{name}</th>' for name, _, _ in figs) * len(targets)
    out = [f'<table class="cmp steps"><thead><tr><th rowspan="2">step</th><th rowspan="2" class="num">offered'
           f'<br>deliveries/s</th>{head}</tr><tr>{sub}</tr></thead><tbody>']
    for step in steps_of(data, scenario):
        runs = runs_of(data, scenario, step=step)
        cells = []
        for t in targets:
            g = runs_of(data, scenario, t, step)
            if not g:
                cells.append(f'<td class="na" colspan="{len(figs)}">not run</td>')
                continue
            for _, path, kind in figs:
                s = fold(g, path)
                warn = (path == P95 and slo is not None and (s is None or s.median > slo)) or \
                    (path == LOSS and s is not None and s.median > 0)
                extra = flags(g) if path == DPS else ""
                cells.append(f'<td class="num{" over" if warn else ""}">{fmt_stat(kind, s)}{extra}</td>')
        out.append(f'<tr><th>{escape(short_step(runs[0]))}</th><td class="num">'
                   f'{fmt("rate", offered_deliveries(runs[0]))}</td>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return scroll("".join(out))


def scenario_section(data: dict, scenario: str, targets: list[str], col: dict) -> str:
    steps = steps_of(data, scenario)
    out = [f'<h3 id="scenario-{escape(str(scenario))}">{escape(str(scenario))}</h3>',
           f'<p class="about">{escape(scenario_about(data, scenario))}</p>']
    if len(steps) == 1:
        out.append(comparison_table(data, scenario, steps[0], targets, col))
        return "".join(out)
    out.append(step_table(data, scenario, targets, col))
    for step in steps:
        first = runs_of(data, scenario, step=step)[0]
        out.append(f"<details><summary>All figures at {escape(describe_step(first))} (offered "
                   f"{fmt('rate', offered_deliveries(first))} deliveries/s)</summary>"
                   f"{comparison_table(data, scenario, step, targets, col, 'at this step')}</details>")
    return "".join(out)

