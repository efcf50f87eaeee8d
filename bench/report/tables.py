"""The results by scenario: every figure side by side per target, median and [min–max] over repeats,
each compared with the best target of its row. Built here as tables of cells; templates/scenario.html
draws them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from bench.record import Results, Run
from bench.report.loss import buckets
from bench.report.numbers import FmtKind, fmt, plural, ratio
from bench.report.repeats import MIN_SAMPLES, Stat, differ, fmt_range, fmt_stat, fold, usable
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    P95,
    Measure,
    failed,
    flag_notes,
    offered_deliveries,
    param,
)
from bench.report.steps import describe_step, scenario_about, short_step


@dataclass(frozen=True)
class Row:
    label: str
    key: Measure
    kind: FmtKind
    better: str | None = None  # "low" or "high": the row compares targets
    sub: bool = False
    alarm: bool = False  # the worst run's value, in red when above zero
    samples: Measure | None = None  # how many messages a percentile came from


PCTS = ("p50", "p95", "p99", "max")


def percentile(which: str, p: str) -> Measure:
    """A percentile of the senders' round trips ("rtt_ms") or of the recipients' deliveries ("latency_ms")."""
    return lambda run: getattr(getattr(run, which), p)


def samples(which: str) -> Measure:
    return lambda run: getattr(run, which).count


RTT = [P95 if p == "p95" else percentile("rtt_ms", p) for p in PCTS]
ROWS = [
    Row("offered send rate (msg/s)", lambda r: r.offered_send_rate, "rate"),
    Row("achieved send rate (msg/s)", lambda r: r.achieved_send_rate, "rate", "high"),
    Row("deliveries/s", DPS, "rate", "high"),
    *[Row(f"{name} {p} (ms)", P95 if (which, p) == ("rtt_ms", "p95") else percentile(which, p), "ms",
          "low" if p != "max" else None, samples=samples(which))
      for name, which in (("RTT", "rtt_ms"), ("delivery latency", "latency_ms")) for p in PCTS],
    Row("loss %", LOSS, "pct", "low"),
]
ROWS_AFTER = [
    Row("server CPU µs/delivery", COST, "us", "low"),
    Row("server CPU % of a core (mean)", lambda r: r.server.cpu_pct_mean, "pct1"),
    Row("server peak RSS (MiB)", lambda r: r.server.rss_peak_bytes, "mib", "low"),
    Row("server RSS per connection (KiB)", lambda r: r.server.rss_per_connection_bytes, "kib"),  # a lower bound
    Row("load generator: busiest process CPU %", lambda r: r.client.busiest_process_cpu_pct, "pct1"),
    Row("CPU steal % (mean)", lambda r: r.steal_pct.mean, "pct1"),
]


def bucket_value(run: Run, group: str, name: str) -> float | None:
    """One ledger bucket of a run, in percent of what it was owed."""
    n = next((count for g, bucket, count in buckets(run.ledger) if (g, bucket) == (group, name)), 0)
    return 100.0 * n / run.ledger.expected if run.ledger.expected else None


def rows_for(runs: list[Run]) -> list[Row]:
    seen = sorted({(g, n) for r in runs for g, n, _ in buckets(r.ledger) if g != "unexplained"})
    shares = [Row(f"↳ {g}{': ' + n if n else ''} (% of expected)",
                  partial(bucket_value, group=g, name=n), "pct", sub=True) for g, n in seen]
    unexplained = Row("↳ unexplained (deliveries, worst run)", lambda r: r.ledger.unexplained, "int", sub=True,
                      alarm=True)
    rows = [*ROWS, *shares, unexplained, *ROWS_AFTER]
    return [r for r in rows if r.alarm or any(r.key(run) is not None for run in runs)]


@dataclass
class Cell:
    """One table cell: its text, its CSS class, the flags of the runs it came from, and a tag under it."""

    text: str
    cls: str = "num"
    flags: list[tuple[str, str]] = field(default_factory=list)
    tag: str = ""
    ns: bool = False  # the tag says "not significant"
    span: int = 1
    rng: str = ""  # [min–max] over repeats, under the median


@dataclass
class Line:
    label: str
    cells: list[Cell]
    cls: str = ""
    target: str = ""  # a step table's line: one target at one step
    offered: str = ""  # the step's offered deliveries/s, on its first line
    rows: int = 0  # how many lines the step spans, on its first line


@dataclass
class Table:
    """A comparison (a column per target) or a scenario's steps at a glance (a line per step and target)."""

    heads: list[tuple[str, list[tuple[str, str]]]]  # target and the flags of its runs
    lines: list[Line]
    spread: bool = False  # figures over repeats: the median with [min–max] under it
    columns: list[str] = field(default_factory=list)  # a step table's figures
    absent: str = ""  # the targets that did not run here
    where: str = ""
    failures: list[Run] = field(default_factory=list)


def compare(row: Row, stats: dict[str, Stat | None]) -> tuple[str | None, dict[str, tuple[str, bool]]]:
    """The best target of a row (None unless it differs significantly from another) and a tag for each
    other target: how far it is from the best, or "not significant" (the tag's text, and whether it is that)."""
    have = {t: s for t, s in stats.items() if s is not None}
    if row.better is None or len(have) < 2:
        return None, {}
    best = (min if row.better == "low" else max)(have, key=lambda t: have[t].median)
    b, tags = have[best], {}
    for t, s in have.items():
        if t == best or fmt(row.kind, s.median) == fmt(row.kind, b.median):
            continue  # the same figure as shown: nothing to compare
        rule = differ(b, s)
        tags[t] = (f"not significant ({rule})", True) if rule else (distance(row, b.median, s.median), False)
    return (best if any(not ns for _, ns in tags.values()) else None), tags


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


def comparison_table(data: Results, scenario: str, step: str, targets: list[str],
                     where: str = "in this scenario") -> Table | None:
    """Every figure side by side, one column group per target: median, [min–max], and how it compares."""
    groups = {t: g for t in targets if (g := data.runs_of(scenario, t, step))}
    if not groups:
        return None
    spread = any(len(usable(g)) > 1 for g in groups.values())
    lines = []
    for row in rows_for([r for g in groups.values() for r in g]):
        stats = {t: fold(g, row.key, every=row.alarm) for t, g in groups.items()}
        few = {t: n for t, g in groups.items()
               if row.samples and (n := fold(g, row.samples)) and 0 < n.median < MIN_SAMPLES}
        best, tags = compare(row, {t: s for t, s in stats.items() if t not in few})
        tags |= {t: (f"from {plural(int(n.median), 'message')}", False) for t, n in few.items()}
        cells = []
        for t, s in stats.items():
            cls = "num" + (" best" if t == best else "") + (" bad" if row.alarm and s and s.hi > 0 else "")
            shown = fmt(row.kind, s.hi) if row.alarm and s else fmt_stat(row.kind, s)
            tag, ns = tags.get(t, ("", False))
            cells.append(Cell(shown, cls, tag=tag, ns=ns, rng="" if row.alarm else fmt_range(row.kind, s)))
        lines.append(Line(row.label, cells, "sub" if row.sub else ""))
    return Table([(t, flag_notes(g)) for t, g in groups.items()], lines, spread,
                 absent=", ".join(t for t in targets if t not in groups), where=where,
                 failures=failed([r for g in groups.values() for r in g]))


STEP_FIGURES: list[tuple[str, Measure, FmtKind]] = [("deliveries/s", DPS, "rate"), ("RTT p95 ms", P95, "ms"),
                                                    ("loss %", LOSS, "pct"), ("server µs/delivery", COST, "us")]


def step_table(data: Results, scenario: str, targets: list[str]) -> Table:
    """A multi-step scenario at a glance: a line per step and target with its headline figures, the targets
    of a step together (as many targets as ran fit the page's width)."""
    slo = param(data, scenario, "slo_p95_ms")
    targets = [t for t in targets if data.runs_of(scenario, t)]
    lines = []
    for step in data.steps_of(scenario):
        runs = data.runs_of(scenario, step=step)
        step_lines = []
        for t in targets:
            g = data.runs_of(scenario, t, step)
            if not g:
                step_lines.append(Line("", [Cell("not run", "na", span=len(STEP_FIGURES))], target=t))
                continue
            cells = []
            for _, key, kind in STEP_FIGURES:
                s = fold(g, key)
                warn = (key is P95 and slo is not None and (s is None or s.median > slo)) or \
                    (key is LOSS and s is not None and s.median > 0)
                cells.append(Cell(fmt_stat(kind, s), "num over" if warn else "num",
                                  flags=flag_notes(g) if key is DPS else []))
            step_lines.append(Line("", cells, target=t))
        first = step_lines[0]
        first.label, first.offered, first.rows = short_step(runs[0]), fmt("rate", offered_deliveries(runs[0])), \
            len(step_lines)
        lines += step_lines
    return Table([(t, []) for t in targets], lines, columns=[name for name, _, _ in STEP_FIGURES])


@dataclass
class Scenario:
    name: str
    about: str
    table: Table | None  # a single step's comparison, or the steps at a glance
    steps: list[tuple[str, str, Table | None]]  # each step's comparison: what it is, offered deliveries/s
    searched: bool = False  # its steps are a capacity search's probes, per target in Capacity at the SLO


def scenario_view(data: Results, scenario: str, targets: list[str]) -> Scenario:
    steps = data.steps_of(scenario)
    if any(c.scenario == scenario for c in data.capacities):  # each target probed rates of its own
        first = data.runs_of(scenario)[0]
        return Scenario(scenario, f"{fmt('int', first.params.users)} members in rooms of "
                        f"{fmt('int', first.params.room_size)}, the send rate searched per target", None, [], True)
    about = scenario_about(data, scenario)
    if len(steps) == 1:
        return Scenario(scenario, about, comparison_table(data, scenario, steps[0], targets), [])
    details = []
    for step in steps:
        first = data.runs_of(scenario, step=step)[0]
        details.append((describe_step(first), fmt("rate", offered_deliveries(first)),
                        comparison_table(data, scenario, step, targets, "at this step")))
    return Scenario(scenario, about, step_table(data, scenario, targets), details)
