"""The "Hostile clients" section: what one misbehaving client made each target hold or suffer, as the
stack ships (stock, CHAT_HARDENING=off) and with this project's limits (hardened), side by side
(Results.hostile, measured by bench/run/hostile.py on fresh servers), one row a figure; and what the
limits cost per delivery on steady chat (bench/run/hardening_cost.py)."""

from __future__ import annotations

from bench.record import TARGET_ORDER, HardeningCost, Results
from bench.report.numbers import fmt
from bench.report.repeats import differ, fmt_spread, of

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
    ("exceptions the server logged meanwhile", _of("server_errors", lambda errors: ", ".join(
        f"{name} ×{n:,}" for name, n in errors.items()) or "none")),  # a record without the key: not looked at
]


def _sizes(data: Results) -> dict[str, str]:
    """The sizes the run used, for the rows' names, as it recorded them; a record from before `sizes` kept
    them in its figures ("—": in neither)."""
    sizes = next((h.sizes for h in data.hostile.values() if h.sizes), {})
    figures = [f for h in data.hostile.values() for f in (h.hardened, h.stock) if f]

    def figure(key: str, field: str):
        return next((f[key][field] for f in figures if isinstance(f.get(key), dict) and field in f[key]), None)

    owed = sizes.get("owed_bytes") or figure("non_reader", "owed_bytes")
    frames = sizes.get("frames") or figure("fragments", "frames")
    storm = sizes.get("storm") or figure("storm", "connections")
    return {"owed": fmt("bytes", owed) if owed else "—", "frames": f"{frames:,}" if frames else "—",
            "storm": f"{storm:,}" if storm else "—"}


def _cell(value, figures: dict) -> str:
    if not figures:
        return "—"
    try:
        return value(figures)
    except (KeyError, TypeError):
        return "—"


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
    cost = next((h.cost for h in data.hostile.values() if h.cost), None)
    fd_limit = next((h.stock_fd_limit for h in data.hostile.values() if h.stock_fd_limit), None)
    return {"targets": targets, "modes": MODES, "rows": rows,
            "costs": [costs[t] for t in targets] if any(costs.values()) else None,
            "cost_run": cost.scenario if cost else "", "cost_room_size": cost.room_size if cost else None,
            "stock_fd_limit": f"{fd_limit:,}" if fd_limit else None,
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
