"""The "Hostile clients" section: what one misbehaving client made each target hold or suffer, as the
stack ships (stock, CHAT_HARDENING=off) and with this project's limits (hardened), side by side
(Results.hostile, measured by bench/run/hostile.py on fresh servers), one row a figure; and what the
limits cost per delivery on steady chat (bench/run/hardening_cost.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from markupsafe import Markup

from bench.record import TARGET_ORDER, Died, Errored, Failed, Fragments, HardeningCost, HostileFigures, Results, Storm
from bench.report.numbers import fmt
from bench.report.repeats import differ, fmt_spread, of
from bench.report.svg import MUTED, Axis, Series, line_chart

MODES = ("stock", "hardened")
T = TypeVar("T")


def _size(n: float) -> str:
    return fmt("size", n)


def _seconds(value: float, cap: float | None) -> str:
    """How long a connection lived; one still open at the figures' cap lived at least that."""
    return f"≥ {value:g} s (still open at the cap)" if cap is not None and value >= cap else f"{value:g} s"


def _shown(figure: T | Failed | None, show: Callable[[T], str]) -> str:
    """A figure through show(); one the run could not take: its server died under it (a finding), or the
    client failed; "—": not measured."""
    if isinstance(figure, Died):
        return f"died ({figure.died})"
    if isinstance(figure, Errored):
        return f"not measured: {figure.error}"
    return "—" if figure is None else show(figure)


def _fragments(g: Fragments) -> str:
    return ((f"{g.bystander_worst_rtt_s:g} s, " if g.bystander_worst_rtt_s else "< 0.01 s, ")
            + (f"closed {g.close_code}" if g.close_code else "not closed") + f", RSS +{_size(g.rss_peak_growth_bytes)}")


def _storm(g: Storm) -> str:
    """"5,000 of 5,000 admitted in 6.9 s (5,000× 101); the last admitted 6.8 s in; a pair trying 1 s in chatted
    after 3.2 s; server RSS +187 MiB at its peak; server CPU 9.5 s; second by second: …"."""
    answers = ", ".join(f"{n:,}× {s}" for s, n in sorted(g.answers.items()))
    text = f"{g.answers.get('101', 0):,} of {g.connections:,} admitted in {g.seconds:g} s ({answers}"
    text += ", each member refused 503 trying again after its Retry-After)" if g.retries and "503" in g.answers \
        else ")"
    if g.last_admitted_s is not None:
        text += f"; the last admitted {g.last_admitted_s:g} s in"
    if g.pair_after_s is not None:
        text += (f"; a pair trying {g.pair_after_s:g} s in chatted after {g.pair_join_s:g} s" if g.pair_join_s
                 is not None else f"; a pair trying {g.pair_after_s:g} s in did not get to chat")
    if g.rss_growth_bytes is not None:
        text += f"; server RSS +{_size(g.rss_growth_bytes)} at its peak"
    if g.cpu_s is not None:
        text += f"; server CPU {g.cpu_s:g} s"
    if g.by_second:
        text += "; second by second: " + "; ".join(
            f"{second}–{second + 1} s " + ", ".join(f"{n:,}× {kind}" for kind, n in counts.items())
            for second, counts in g.by_second.items())
    return text


def _listed(counts: dict[str, int], none: str) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items()) or none


Cell = Callable[[HostileFigures], str]  # one mode's figures -> a row's cell
ROWS: list[tuple[str, Cell]] = [  # (figure, with {owed}/{frames}/{storm} from the run; its cell)
    ("server memory for one member that never reads (owed {owed})",
     lambda f: _shown(f.non_reader, lambda n: _size(n.rss_growth_bytes))),
    ("… 3 s after it left", lambda f: _shown(f.non_reader, lambda n: _size(n.rss_after_leaving_bytes))),
    ("… dropped for it (by cause)", lambda f: _shown(f.non_reader, lambda n: _listed(n.dropped, "nothing"))),
    ("a zero-window member lives", lambda f: _shown(f.non_reader, lambda n: _seconds(n.zero_window_s, f.capped_at_s))),
    ("an idle TCP connection lives", lambda f: _shown(f.idle_s, lambda s: _seconds(s, f.capped_at_s))),
    ("half a request line lives", lambda f: _shown(f.partial_s, lambda s: _seconds(s, f.capped_at_s))),
    ("one message as {frames} one-byte fragments: another pair's worst round trip",
     lambda f: _shown(f.fragments, _fragments)),
    ("{storm} handshakes at once: all answered after", lambda f: _shown(f.storm, _storm)),
    ("file descriptors per idle connection", lambda f: _shown(f.fds_per_idle, str)),
    ("exceptions the server logged meanwhile",  # None: not looked at
     lambda f: _shown(f.server_errors, lambda errors: ", ".join(f"{name} ×{n:,}" for name, n in errors.items())
                      or "none")),
]


def _sizes(data: Results) -> dict[str, str]:
    """The sizes the run used, for the rows' names ("—": not recorded)."""
    sizes = next((h.sizes for h in data.hostile.values() if h.sizes), None)
    owed, frames, storm = (sizes.owed_bytes, sizes.frames, sizes.storm) if sizes else (None, None, None)
    return {"owed": fmt("bytes", owed) if owed else "—", "frames": f"{frames:,}" if frames else "—",
            "storm": f"{storm:,}" if storm else "—"}


def _cell(value: Cell, figures: HostileFigures | None) -> str:
    return "—" if figures is None else value(figures)


def cost_cells(cost: HardeningCost | None) -> dict | None:
    """Server µs per delivery stock and hardened (median [range]), and the difference or "not significant"."""
    if cost is None:
        return None
    stock, hardened = of(cost.stock_us), of(cost.hardened_us)
    failed = f"; failed: {cost.error}" if cost.error else ""  # beside what the other runs measured
    if stock is None or hardened is None:
        return {"stock": _us(stock), "hardened": _us(hardened), "difference": "not compared" + failed}
    delta = hardened.median - stock.median
    rule = differ(stock, hardened)
    steals = [p for p in cost.steal_pct if p is not None]
    steal = f"; steal up to {max(steals):.0f}%" if steals else ""
    restarts = f"; {cost.restarts} server restart(s) between runs" if cost.restarts else ""
    said = f"not significant ({rule})" if rule else f"{delta:+.1f} µs ({delta / stock.median:+.0%})"
    return {"stock": _us(stock), "hardened": _us(hardened),
            "difference": f"hardening: {said}, {stock.n} stock and {hardened.n} hardened runs{steal}{restarts}"
                          + (", noisy" if cost.noisy else "") + failed}


def _us(stat) -> str:
    return fmt_spread("us", stat) + " µs" if stat else "not measured"


def storm_chart(data: Results, targets: list[str], colors: dict[str, str]) -> Markup | None:
    """Members in through each storm, second by second (its `by_second` 101s, summed), stock dashed: when each
    target got its storm in, beside the others; None when no storm recorded its seconds."""
    series, size = [], 0
    for t in targets:
        for mode in MODES:
            figures = getattr(data.hostile[t], mode)
            storm = figures.storm if figures else None
            if not isinstance(storm, Storm) or not storm.by_second:
                continue
            size, admitted, points = max(size, storm.connections), 0, [(0.0, 0.0)]
            for second in range(max(storm.by_second) + 1):
                admitted += storm.by_second.get(second, {}).get("101", 0)
                points.append((second + 1.0, float(admitted)))
            series.append(Series(f"{t} {mode}", colors.get(t, MUTED), [points], dashed=mode == "stock", markers=False))
    if not series:
        return None
    return Markup(line_chart(f"A storm of {size:,} handshakes: members in, second by second", series,  # escaped
                             Axis("seconds into the storm"), Axis("members admitted (101)"),
                             hlines=[(size, f"all {size:,}")]))


def hostile_view(data: Results, colors: dict[str, str] | None = None) -> dict | None:
    """Per target, each figure stock and hardened, and with the page's `colors` the storms' chart; None when the
    run measured no hostile client."""
    # a wss:// target's storm is read beside its plain target's, as browsers connect (bench.report.browsers)
    targets = sorted((t for t in data.hostile if not (data.targets.get(t) and data.targets[t].tls)),
                     key=lambda t: (TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER)))
    if not targets:
        return None
    sizes = _sizes(data)
    rows = [{"figure": name.format(**sizes),
             "cells": [cell for t in targets for cell in (_cell(value, data.hostile[t].stock),
                                                          _cell(value, data.hostile[t].hardened))]}
            for name, value in ROWS]
    rows = [r for r in rows if any(c != "—" for c in r["cells"])]  # make bench: the storm alone
    costs = {t: cost_cells(data.hostile[t].cost) for t in targets}
    # the short timers decide only the lifetimes (bench/run/hostile.py SETTINGS): said when one was measured
    timed = any(f is not None and (f.non_reader or f.idle_s is not None or f.partial_s is not None)
                for h in data.hostile.values() for f in (h.stock, h.hardened))
    settings = next((h.settings for h in data.hostile.values() if h.settings), {}) if timed else {}
    cost = next((h.cost for h in data.hostile.values() if h.cost), None)
    fd_limit = next((h.stock_fd_limit for h in data.hostile.values() if h.stock_fd_limit), None)
    return {"targets": targets, "modes": MODES, "rows": rows,
            "costs": [costs[t] for t in targets] if any(costs.values()) else None,
            "cost_run": cost.scenario if cost else "", "cost_room_size": cost.room_size if cost else None,
            "stock_fd_limit": f"{fd_limit:,}" if fd_limit else None,
            "storm_chart": storm_chart(data, targets, colors) if colors is not None else None,  # HTML only
            "signed_in": [t for t in targets if data.targets.get(t) and data.targets[t].env.get("CHAT_APP") == "full"],
            "settings": ", ".join(f"{k}={v}" for k, v in settings.items())}


def _both(stock: str, hardened: str) -> str:
    """One Markdown cell: "stock → hardened", or the one measured, named."""
    if stock != "—" and hardened != "—":
        return f"{stock} → {hardened}"
    if hardened != "—":
        return f"{hardened} (hardened)"
    if stock != "—":
        return f"{stock} (stock)"
    return "—"


def hostile_lines(data: Results) -> list[str]:
    """The section for the Markdown summary: a row per figure, "stock → hardened" per target."""
    view = hostile_view(data)
    if view is None:
        return []
    out = ["## Hostile clients", "", "| figure | " + " | ".join(f"{t}: stock → hardened" for t in view["targets"])
           + " |", "|---|" + "---|" * len(view["targets"])]
    out += [f"| {r['figure']} | " + " | ".join(_both(*pair) for pair in zip(r["cells"][::2], r["cells"][1::2],
                                                                             strict=True)) + " |"
            for r in view["rows"]]
    if view["costs"]:
        out.append("| server µs per delivery, " + view["cost_run"] + " | " + " | ".join(
            f"{c['stock']} → {c['hardened']}: {c['difference']}" if c else "—" for c in view["costs"]) + " |")
    return out + [""]
