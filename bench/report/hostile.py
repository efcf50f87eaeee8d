"""The "Hostile clients" section: what one misbehaving client made each target hold or suffer, as the
stack ships (stock, CHAT_HARDENING=off) and with this project's limits (hardened), side by side
(Results.hostile, measured by bench/run/hostile.py on fresh servers), one row a figure; and what the
limits cost per delivery on steady chat (bench/run/hardening_cost.py)."""

from __future__ import annotations

import statistics

from bench.record import TARGET_ORDER, HardeningCost, Results
from bench.report.numbers import fmt
from bench.report.repeats import Stat, differ, fmt_spread

MODES = ("stock", "hardened")


def _size(n: object) -> str:
    return fmt("size", n) if isinstance(n, int | float) else "—"


def _seconds(value: object, cap: float) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"≥ {value:g} s (still open at the cap)" if value >= cap else f"{value:g} s"


def _failed(figure: object) -> str | None:
    """A figure the run could not take: its server died under it (a finding), or the client failed."""
    if isinstance(figure, dict) and "died" in figure:
        return f"died ({figure['died']})"
    return f"not measured: {figure['error']}" if isinstance(figure, dict) and "error" in figure else None


def _lives(key: str, within: str | None = None):
    """How long a connection lived: figures[key], or figures[within][key]."""
    def cell(f: dict) -> str:
        cap = f.get("capped_at_s", float("inf"))
        if within:
            return _failed(f.get(within)) or _seconds(f[within].get(key), cap)
        return _failed(f.get(key)) or _seconds(f.get(key), cap)
    return cell


def _of(key: str, show):
    """A cell from figures[key] through show(), or why it is missing."""
    return lambda f: _failed(f.get(key)) or show(f[key])


ROWS = [  # (figure, with {owed}/{frames}/{storm} from the run; its cell from one mode's figures)
    ("server memory for one member that never reads (owed {owed})", _of("non_reader", lambda n: _size(
        n["rss_growth_bytes"]))),
    ("… 3 s after it left", _of("non_reader", lambda n: _size(n["rss_after_leaving_bytes"]))),
    ("… dropped for it (by cause)", _of("non_reader", lambda n: ", ".join(
        f"{k} {c:,}" for k, c in n["dropped"].items()) or "nothing")),
    ("a zero-window member lives", _lives("zero_window_s", within="non_reader")),
    ("an idle TCP connection lives", _lives("idle_s")),
    ("half a request line lives", _lives("partial_s")),
    ("one message as {frames} one-byte fragments: another pair's worst round trip",
     _of("fragments", lambda g: (f"{g['bystander_worst_rtt_s']:g} s, " if g["bystander_worst_rtt_s"] else "< 0.01 s, ")
                                + (f"closed {g['close_code']}" if g["close_code"] else "not closed")
                                + f", RSS +{_size(g['rss_peak_growth_bytes'])}")),
    ("{storm} handshakes at once: all answered after", _of("storm", lambda g: f"{g['seconds']:g} s (" + ", ".join(
        f"{n:,}× {s}" for s, n in sorted(g["answers"].items())) + ")")),
    ("file descriptors per idle connection", _of("fds_per_idle", str)),
    ("exceptions the server logged meanwhile", lambda f: ", ".join(
        f"{name} ×{n:,}" for name, n in f.get("server_errors", {}).items()) or "none"),
]


def _sizes(data: Results) -> dict[str, str]:
    """The sizes the run used, for the rows' names (any target's figures say them)."""
    figures = [f for h in data.hostile.values() for f in (h.stock, h.hardened)]
    first = lambda key, field: next((f[key][field] for f in figures  # noqa: E731
                                     if isinstance(f.get(key), dict) and field in f[key]), None)
    owed, frames, storm = first("non_reader", "owed_bytes"), first("fragments", "frames"), first("storm", "connections")
    return {"owed": fmt("bytes", owed) if owed else "many 1 MiB messages",
            "frames": f"{frames:,}" if frames else "10⁶", "storm": f"{storm:,}" if storm else "2,000"}


def _cell(value, figures: dict) -> str:
    if not figures:
        return "—"
    try:
        return value(figures)
    except (KeyError, TypeError):
        return "—"


def _stat(values: list[float]) -> Stat | None:
    return Stat(statistics.median(values), min(values), max(values), len(values)) if values else None


def cost_cells(cost: HardeningCost | None) -> dict | None:
    """Server µs per delivery stock and hardened (median [range]), and the difference or "not significant"."""
    if cost is None:
        return None
    if cost.error:
        return {"stock": f"not measured: {cost.error}", "hardened": "", "difference": ""}
    stock, hardened = _stat(cost.stock_us), _stat(cost.hardened_us)
    if stock is None or hardened is None:
        return {"stock": fmt_spread("us", stock), "hardened": fmt_spread("us", hardened), "difference": "—"}
    delta = hardened.median - stock.median
    rule = differ(stock, hardened)
    steal = f"; steal up to {max(cost.steal_pct):.0f}%" if cost.steal_pct else ""
    said = f"not significant ({rule})" if rule else f"{delta:+.1f} µs ({delta / stock.median:+.0%})"
    return {"stock": fmt_spread("us", stock) + " µs", "hardened": fmt_spread("us", hardened) + " µs",
            "difference": f"hardening: {said}, {hardened.n} runs each{steal}" + (", noisy" if cost.noisy else "")}


def hostile_view(data: Results) -> dict | None:
    """Per target, each figure stock and hardened; None when the run measured no hostile client."""
    targets = sorted(data.hostile, key=lambda t: (TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER)))
    if not targets:
        return None
    sizes = _sizes(data)
    rows = [{"figure": name.format(**sizes),
             "cells": [_cell(value, getattr(data.hostile[t], mode)) for t in targets for mode in MODES]}
            for name, value in ROWS]
    costs = {t: cost_cells(data.hostile[t].cost) for t in targets}
    settings = next((h.settings for h in data.hostile.values() if h.settings), {})
    return {"targets": targets, "modes": MODES, "rows": rows,
            "costs": [costs[t] for t in targets] if any(costs.values()) else None,
            "cost_run": next((h.cost.scenario for h in data.hostile.values() if h.cost), ""),
            "settings": ", ".join(f"{k}={v}" for k, v in settings.items())}


def hostile_lines(data: Results) -> list[str]:
    """The section for the Markdown summary: a row per figure, "stock → hardened" per target."""
    view = hostile_view(data)
    if view is None:
        return []
    def both(stock: str, hardened: str) -> str:
        if "—" in (stock, hardened):
            return f"{hardened} (hardened)" if stock == "—" != hardened else f"{stock} (stock)" if stock != "—" else "—"
        return f"{stock} → {hardened}"

    out = ["## Hostile clients", "", "| figure | " + " | ".join(f"{t}: stock → hardened" for t in view["targets"])
           + " |", "|---|" + "---|" * len(view["targets"])]
    out += [f"| {r['figure']} | " + " | ".join(both(*pair) for pair in zip(r["cells"][::2], r["cells"][1::2],
                                                                             strict=True)) + " |"
            for r in view["rows"]]
    if view["costs"]:
        out.append("| server µs per delivery, " + view["cost_run"] + " | " + " | ".join(
            f"{c['stock']} → {c['hardened']}: {c['difference']}" if c else "—" for c in view["costs"]) + " |")
    return out + [""]
