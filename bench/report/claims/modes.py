"""Relay mode beside app mode for claims 7a, 7b and 8: per mode, which stack is cheaper per delivery and which
takes more under the SLO, each target at its own searched capacity. A verdict that flips between the modes is
the finding, so it is said in so many words."""

from __future__ import annotations

from collections.abc import Callable

from bench.record import Results
from bench.report.appmode import app_targets, capacity_value, cost_at_capacity, relay_targets
from bench.report.numbers import FmtKind, fmt

MODES = {"relay": relay_targets, "app mode": app_targets}


def per_mode(data: Results, value: Callable[[Results, str], float | None], kind: FmtKind, unit: str,
             less_wins: bool) -> dict[str, tuple[str | None, str]]:
    """mode -> (the winning stack, "" on a tie, None when one stack has no figure; a line of the figures)."""
    out = {}
    for mode, targets in MODES.items():
        have = {t: v for t in targets(data) if (v := value(data, t)) is not None}
        if not have:
            continue
        best = {}
        for fam in ("Channels", "FastAPI"):
            mine = [t for t in targets(data, fam) if t in have]
            if mine:
                best[fam] = (min if less_wins else max)(mine, key=lambda t: have[t])
        line = f"{mode}: " + ", ".join(f"{t} {fmt(kind, v)}{unit}" for t, v in have.items())
        winner = ""
        if len(best) == 2 and have[best["Channels"]] != have[best["FastAPI"]]:
            pick = min if less_wins else max
            winner = pick(best, key=lambda fam: have[best[fam]])
        out[mode] = (winner if len(best) == 2 else None, line)
    return out


def costs_by_mode(data: Results) -> dict[str, tuple[str | None, str]]:
    return per_mode(data, cost_at_capacity, "us", " µs", less_wins=True)


def capacities_by_mode(data: Results) -> dict[str, tuple[str | None, str]]:
    return per_mode(data, capacity_value, "rate", "", less_wins=False)


def across_modes(found: dict[str, tuple[str | None, str]], what: str) -> str:
    """" The verdict flips between relay and app mode: …" when each mode names a different stack; that the app
    mode agrees, when it does."""
    relay, app = (found.get(m, (None, ""))[0] for m in MODES)
    if relay and app and relay != app:
        return (f" The verdict flips between relay and app mode: {relay} {what} as a relay, {app} once members "
                "sign in and every message is stored.")
    if relay and app:
        return f" App mode agrees: {app} {what} there too, with members signed in and every message stored."
    return ""
