"""A small line-chart drawer as inline SVG (no scripts, no fonts, nothing fetched): linear or log
axes, ticks, a wrapped legend, labelled lines for an SLO or a step."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 560, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_BOTTOM = 64, 18, 46
AXIS, GRID, MUTED, SLO_RED, OFFERED = "#8a94a6", "#eceef2", "#667085", "#c62828", "#9aa3b2"
CHAR_PX = 6.6  # width of one legend character at 12px, to lay the legend out without measuring text


def value(v: float) -> str:
    """A plotted value written beside its point: whole above 100, else three significant digits."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def short(v: float) -> str:
    a = abs(v)
    return f"{v / 1e6:g}M" if a >= 1e6 else f"{v / 1e3:g}k" if a >= 1e3 else f"{v:g}"


@dataclass
class Series:
    name: str
    color: str
    lines: list[list[tuple[float, float]]]  # one polyline per segment; a gap between segments
    hollow: set[tuple[float, float]] = field(default_factory=set)  # points drawn hollow (client-bound)
    dashed: bool = False
    markers: bool = True
    shape: str = "circle"  # the marker: "circle", "square" or "triangle" (the report gives one per stack)


def marker(shape: str, x: float, y: float, fill: str, color: str, r: float = 3.4) -> str:
    paint = f'fill="{fill}" stroke="{color}" stroke-width="1.6"'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" {paint}/>'
    if shape == "triangle":
        h = r * 1.25
        corners = f"{x:.1f},{y - h:.1f} {x + h:.1f},{y + h * 0.8:.1f} {x - h:.1f},{y + h * 0.8:.1f}"
        return f'<polygon points="{corners}" {paint}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" {paint}/>'


@dataclass
class Axis:
    label: str
    log: bool = False
    at: list[float] | None = None  # ticks exactly here (the values a sweep tried) instead of round numbers
    fmt: Callable[[float], str] = short

    def domain(self, values: list[float]) -> tuple[float, float]:
        lo, hi = min(values), max(values)
        if self.log:
            lo, hi = _nice(lo, floor=True), _nice(hi, floor=False)
            return lo, hi if hi > lo else lo * 10
        lo, hi = min(0.0, lo), hi if hi > min(0.0, lo) else min(0.0, lo) + 1
        step = nice_step(hi - lo)
        return math.floor(lo / step) * step, math.ceil(hi / step) * step

    def ticks(self, lo: float, hi: float) -> list[float]:
        if self.at:
            kept: list[float] = []
            for t in sorted(v for v in self.at if lo <= v <= hi):
                if not kept or (t / kept[-1] >= 1.5 if self.log else t - kept[-1] >= (hi - lo) / 12):
                    kept.append(t)
            return kept
        if self.log:
            first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
            steps = (1,) if last - first > 3 else (1, 2, 5)
            ticks = [t for e in range(first, last + 1) for m in steps if lo <= (t := 10.0 ** e * m) <= hi]
            return sorted(ticks + [v for v in (lo, hi) if all(max(v, t) / min(v, t) >= 2 for t in ticks)])
        step = nice_step(hi - lo)
        return [lo + i * step for i in range(int(round((hi - lo) / step)) + 1)]


def _nice(v: float, floor: bool) -> float:
    """The nearest 1, 2 or 5 × 10^n below (floor) or above `v`: where a log axis starts or ends."""
    e = 10.0 ** math.floor(math.log10(v))
    if floor:
        return max(m * e for m in (1, 2, 5) if m * e <= v * (1 + 1e-9))
    return min(m * e for m in (1, 2, 5, 10) if m * e >= v * (1 - 1e-9))


def nice_step(span: float, target: int = 5) -> float:
    power = 10 ** math.floor(math.log10(span / target))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= span / target)


def line_chart(title: str, series: list[Series], x: Axis, y: Axis, *, hlines: Sequence[tuple[float, str]] = (),
               marks: Sequence[tuple[float, str]] = (), note: str = "") -> str:
    """One chart as an inline <svg>; `hlines` are labelled horizontal lines (an SLO), `marks` vertical."""
    ok = lambda v, ax: not ax.log or v > 0  # noqa: E731
    pts = [p for s in series for line in s.lines for p in line if ok(p[0], x) and ok(p[1], y)]
    legend, top = _legend([s for s in series if s.name])
    head = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')
    if not pts:
        return head + (f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}" '
                       'font-size="13">no data to plot</text></svg>')
    x0, x1 = x.domain([p[0] for p in pts])
    y0, y1 = y.domain([p[1] for p in pts] + [v for v, _ in hlines if ok(v, y)])
    left, right, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM

    def scale(v: float, lo: float, hi: float, log: bool) -> float:
        return math.log10(v / lo) / math.log10(hi / lo) if log else (v - lo) / (hi - lo)

    sx = lambda v: left + scale(v, x0, x1, x.log) * (right - left)  # noqa: E731
    sy = lambda v: bottom - scale(v, y0, y1, y.log) * (bottom - top)  # noqa: E731
    out = [head, legend]
    for t in y.ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="{MUTED}">{escape(y.fmt(t))}</text>')
    for t in x.ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{bottom}" y2="{bottom + 4}" '
                   f'stroke="{AXIS}"/>'
                   f'<text x="{sx(t):.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11" '
                   f'fill="{MUTED}">{escape(x.fmt(t))}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="{AXIS}"/>'
               f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="{AXIS}"/>')
    for v, label in marks:
        near_end = sx(v) + 6 * len(label) > right
        out.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{top}" y2="{bottom}" stroke="{AXIS}" '
                   f'stroke-dasharray="2 3"/><text x="{sx(v) + (-3 if near_end else 3):.1f}" y="{top + 11}" '
                   f'font-size="10" text-anchor="{"end" if near_end else "start"}" fill="{MUTED}">'
                   f'{escape(label)}</text>')
    for v, label in [(v, label) for v, label in hlines if ok(v, y)]:
        out.append(f'<line x1="{left}" x2="{right}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="{SLO_RED}" '
                   f'stroke-dasharray="6 4"/><text x="{right - 4}" y="{sy(v) - 5:.1f}" text-anchor="end" '
                   f'font-size="11" fill="{SLO_RED}">{escape(label)}</text>')
    for s in series:
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        lines = [[p for p in line if ok(p[0], x) and ok(p[1], y)] for line in s.lines]
        alone = s.markers and sum(map(len, lines)) == 1  # one point: drawn larger, with its name and value
        for line in lines:
            if len(line) > 1:
                coords = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in line)
                out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.8"{dash} '
                           f'points="{coords}"/>')
            for p in line if s.markers else []:
                fill = "#fff" if p in s.hollow else s.color
                out.append(marker(s.shape, sx(p[0]), sy(p[1]), fill, s.color, 5.5 if alone else 3.4))
                if alone:
                    right_half = sx(p[0]) > (left + right) / 2
                    out.append(f'<text x="{sx(p[0]) + (-9 if right_half else 9):.1f}" y="{sy(p[1]) + 4:.1f}" '
                               f'text-anchor="{"end" if right_half else "start"}" font-size="11" '
                               f'fill="{s.color}">{escape(s.name)}: {value(p[1])}</text>')
    out.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 10}" text-anchor="middle" font-size="12" '
               f'fill="#333">{escape(x.label)}</text>'
               f'<text transform="translate(14 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="12" fill="#333">{escape(y.label)}</text>')
    if note:
        out.append(f'<text x="{right}" y="{HEIGHT - 10}" text-anchor="end" font-size="10" '
                   f'fill="{MUTED}">{escape(note)}</text>')
    return "".join(out) + "</svg>"


def _legend(series: list[Series]) -> tuple[str, float]:
    """The legend across the top, wrapped to the chart's width; returns it and where the plot starts."""
    out, x, y = [], float(MARGIN_LEFT), 14.0
    for s in series:
        w = 22 + CHAR_PX * len(s.name) + 14
        if x + w > WIDTH - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, y = float(MARGIN_LEFT), y + 18
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        out.append(f'<line x1="{x:.0f}" x2="{x + 16:.0f}" y1="{y - 4}" y2="{y - 4}" stroke="{s.color}" '
                   f'stroke-width="2.4"{dash}/>'
                   + (marker(s.shape, x + 8, y - 4, s.color, s.color) if s.markers else "")
                   + f'<text x="{x + 22:.0f}" y="{y}" font-size="12" fill="#333">{escape(s.name)}</text>')
        x += w
    return "".join(out), y + 16
