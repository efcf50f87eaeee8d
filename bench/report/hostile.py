"""The "Hostile clients" section: what one misbehaving client made each target hold or suffer
(Results.hostile, measured by bench/run/hostile.py on a fresh server per figure), one row a figure,
one column a target. The stock behaviour each limit replaced is a finding of CONTRACT.md's "Hostile
clients", measured before the fixes; what is here was measured in this run, hardened."""

from __future__ import annotations

from bench.record import Results
from bench.report.numbers import fmt
from bench.report.runs import target_names


def _mib(n: object) -> str:
    return f"{fmt('size', n)}" if isinstance(n, int | float) else "—"


def _seconds(value: object, cap: float) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"≥ {value:g} s (still open at the cap)" if value >= cap else f"{value:g} s"


def _lives(key: str, within: str | None = None):
    """How long a connection lived: figures[key], or figures[within][key]."""
    def cell(f: dict) -> str:
        cap = f.get("capped_at_s", float("inf"))
        return _failed(f.get(within)) or _seconds((f.get(within) or {}).get(key), cap) if within \
            else _seconds(f.get(key), cap)
    return cell


def _failed(figure: object) -> str | None:
    return f"not measured: {figure['error']}" if isinstance(figure, dict) and "error" in figure else None


ROWS = [  # (figure, its cell from one target's figures)
    ("server memory for one member that never reads (owed 256 × 1 MiB)",
     lambda f: _failed(f.get("non_reader")) or _mib(f["non_reader"]["rss_growth_bytes"])),
    ("… 3 s after it left",
     lambda f: _failed(f.get("non_reader")) or _mib(f["non_reader"]["rss_after_leaving_bytes"])),
    ("… dropped for it (by cause)",
     lambda f: _failed(f.get("non_reader")) or ", ".join(f"{k} {n:,}" for k, n in
                                                          f["non_reader"]["dropped"].items()) or "nothing"),
    ("a zero-window member lives", _lives("zero_window_s", within="non_reader")),
    ("an idle TCP connection lives", _lives("idle_s")),
    ("half a request line lives", _lives("partial_s")),
    ("one message as 10⁶ one-byte fragments: another pair's worst round trip",
     lambda f: _failed(f.get("fragments")) or f"{f['fragments']['bystander_worst_rtt_s']:g} s, "
                                              f"closed {f['fragments']['close_code']}"),
    ("2,000 handshakes at once: all answered after",
     lambda f: _failed(f.get("storm")) or f"{f['storm']['seconds']:g} s ("
               + ", ".join(f"{n:,}× {s}" for s, n in sorted(f["storm"]["answers"].items())) + ")"),
    ("file descriptors per idle connection", lambda f: str(f.get("fds_per_idle", "—"))),
]


def hostile_view(data: Results) -> dict | None:
    """Rows of (figure, value per target), or None when the run measured no hostile client."""
    targets = [t for t in target_names(data) if t in data.hostile]
    if not targets:
        return None
    rows = []
    for name, value in ROWS:
        cells = []
        for t in targets:
            try:
                cells.append(value(data.hostile[t]))
            except (KeyError, TypeError):
                cells.append("—")
        rows.append({"figure": name, "cells": cells})
    return {"targets": targets, "rows": rows}
