"""The report's charts, drawn with `bench.report.svg`: what a sweep varies against latency, loss,
throughput or cost, and deliveries per second through each measurement window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from bench.record import Results, Run, probe_runs, searched
from bench.report.numbers import fmt, fmt_bytes
from bench.report.repeats import fold
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    P95,
    Measure,
    client_bound,
    offered_deliveries,
    param,
    stack_of,
    timeline,
    unique,
)
from bench.report.steps import short_step, sweep_axis
from bench.report.svg import OFFERED, Axis, Series, line_chart

RTT_AXIS = Axis("RTT p95 (ms, log scale)", log=True)
SHAPES = {"Channels": "circle", "FastAPI": "square", "reference": "triangle"}  # as markup.MARKERS in tables


def shape(data: Results, target: str) -> str:
    return SHAPES[stack_of(data, target)]


@dataclass
class Figure:
    svg: Markup  # drawn by bench.report.svg, which escapes every text it puts in
    title: str
    caption: str = ""


def _points(data: Results, scenario: str, target: str, x_of: Callable[[Run], float | None],
            y: Measure, kind: str | None = None) -> tuple[list[tuple[float, float]], set]:
    """One point per step (of frames of `kind`, if given): x from the step's first run, y the median over
    its repeats; hollow if client-bound. A step where nothing was expected (every message refused) has no
    loss to plot."""
    pts, hollow = [], set()
    for step in data.steps_of(scenario, target):
        g = data.runs_of(scenario, target, step)
        if kind is not None and g[0].params.kind != kind:
            continue
        if y is LOSS and not any(r.ledger.expected for r in g):
            continue
        x, s = x_of(g[0]), fold(g, y)
        if x is not None and s is not None:
            pts.append((x, s.median))
            if client_bound(g):
                hollow.add((x, s.median))
    return sorted(pts), hollow


def sweep_charts(data: Results, scenario: str, targets: list[str], col: dict) -> list[Figure]:
    """Two charts of what a multi-step scenario varies: load (a ramp), message size, or room size."""
    axis = sweep_axis(data, scenario)
    runs = data.runs_of(scenario)
    if axis == "size":
        x_of = lambda r: r.params.size  # noqa: E731
        xa = Axis("message size (log scale)", log=True, at=[v for r in runs if (v := x_of(r))],
                  fmt=lambda v: fmt_bytes(v, short=True))
        refused = sorted({fmt_bytes(x_of(r)) for r in runs if x_of(r) and not r.ledger.expected})
        note = f"Nothing to measure at {', '.join(refused)}: no message was accepted." if refused else ""
        charts = [(LOSS, Axis("loss %"), "Loss against message size", note),
                  (P95, RTT_AXIS, "Senders' round trip p95 against message size", "")]
    elif axis == "room_size":
        x_of = lambda r: r.params.room_size  # noqa: E731
        xa = Axis("room size (members, log scale)", log=True, at=[v for r in runs if (v := x_of(r))],
                  fmt=lambda v: f"{v:,.0f}")
        charts = [(P95, RTT_AXIS, "Senders' round trip p95 against room size", ""),
                  (COST, Axis("server CPU µs/delivery"), "Server CPU per delivery against room size", "")]
    else:
        x_of = offered_deliveries
        offered = [v for r in runs if (v := x_of(r))]
        wide = bool(offered) and min(offered) > 0 and max(offered) / min(offered) >= 8
        xa = Axis("offered deliveries/s (members × rate × room size)", log=wide)
        charts = [(P95, RTT_AXIS, "Senders' round trip p95 against offered load",
                   "The dashed red line is the SLO."),
                  (DPS, Axis("deliveries/s" + (" (log scale)" if wide else ""), log=wide),
                   "Deliveries/s achieved against offered load",
                   "The dashed grey line is everything offered being delivered.")]
    slo = param(data, scenario, "slo_p95_ms")
    # a sweep of sizes in both frame types draws one line per target and type, text dashed
    kinds = unique(r.params.kind for r in runs) if axis == "size" else []
    lines = [(t, k) for t in targets for k in kinds] if len(kinds) > 1 else [(t, None) for t in targets]
    out = []
    for key, ya, title, caption in charts:
        series, hollow_seen = [], False
        for t, kind in lines:
            pts, hollow = _points(data, scenario, t, x_of, key, kind)
            hollow_seen |= bool(hollow)
            name = f"{t} {kind}" if kind else str(t)
            series += [Series(name, col[t], [pts], hollow, dashed=kind == "text", shape=shape(data, t))] if pts else []
        if key is DPS and (offered := sorted(v for r in runs if (v := x_of(r)))):
            series.append(Series("offered", OFFERED, [[(offered[0], offered[0]), (offered[-1], offered[-1])]],
                                 dashed=True, markers=False))
        hl = [(float(slo), f"SLO {fmt('ms', slo)} ms")] if key is P95 and slo is not None else []
        svg = line_chart(f"{scenario}: {title}", series, xa, ya, hlines=hl,
                         note="hollow marker: client-bound" if hollow_seen else "")
        out.append(Figure(Markup(svg), title, caption))
    return out


def timeline_chart(data: Results, scenario: str, targets: list[str], col: dict) -> Figure:
    """Deliveries per second through each measurement window, the scenario's runs one after another."""
    runs = data.runs_of(scenario)
    segments = unique((r.step, r.repeat) for r in runs)
    several_steps = len(data.steps_of(scenario)) > 1
    x, marks, offered = 0.0, [], []
    lines: dict[str, list[list[tuple[float, float]]]] = {t: [] for t in targets}
    for step, rep in segments:
        seg = [r for r in runs if (r.step, r.repeat) == (step, rep)]
        width = max((len(timeline(r)) for r in seg), default=0) or 1
        if len(segments) > 1:
            step_text = short_step(seg[0]) + (f" r{rep + 1}" if rep else "")
            marks.append((x, step_text if several_steps else f"run {rep + 1}"))
        off = offered_deliveries(seg[0])
        offered.append([(x, off), (x + width, off)])
        for r in seg:
            if (seconds := timeline(r)) and r.target in lines:
                lines[r.target].append([(x + i + 0.5, v) for i, v in enumerate(seconds)])
        x += width
    series = [Series(t, col[t], lines[t], shape=shape(data, t)) for t in targets if lines[t]]
    if offered:
        series.append(Series("offered", OFFERED, offered, dashed=True, markers=False))
    xlabel = "seconds into the measurement window" + (" (runs one after another)" * (len(segments) > 1))
    chart = line_chart(f"{scenario}: deliveries per second over time", series, Axis(xlabel),
                       Axis("deliveries/s"), marks=marks)
    return Figure(Markup(chart), scenario)


def probe_chart(data: Results, scenario: str, targets: list[str], col: dict) -> Figure:
    """Each target's capacity search: every probe's offered deliveries/s against its RTT p95, filled where
    it passed the SLO rule and hollow where it failed, so the edge shows between the last filled and the
    first hollow point."""
    series, slo = [], None
    for t in targets:
        cap = searched(data, t, scenario)
        if cap is None:
            continue
        slo = cap.slo_p95_ms
        pts = {(cap.deliveries_per_s(p.rate), r.rtt_ms.p95): p.passed
               for p, r in zip(cap.probes, probe_runs(data, cap), strict=True) if r is not None and r.rtt_ms.p95}
        series.append(Series(t, col[t], [[p] for p in sorted(pts)], hollow={p for p, ok in pts.items() if not ok},
                             shape=shape(data, t)))
    svg = line_chart(f"{scenario}: the capacity search's probes", series,
                     Axis("offered deliveries/s (log scale)", log=True), RTT_AXIS,
                     hlines=[(slo, f"SLO {fmt('ms', slo)} ms")] if slo else [])
    return Figure(Markup(svg), f"{scenario}: every probe of the search",
                  "Filled: the probe passed the capacity rule (RTT p95 under the SLO, nothing lost, no growing "
                  "backlog); hollow: it failed. A hold repeats a rate for the sustained window: two points at one "
                  "load.")


def probe_charts(data: Results, targets: list[str], col: dict) -> list[Figure]:
    return [probe_chart(data, sc, targets, col) for sc in unique(c.scenario for c in data.capacities)]
