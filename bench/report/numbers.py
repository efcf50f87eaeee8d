"""Numbers as the report writes them: one format per kind of figure, the same in every section."""

from __future__ import annotations

from typing import Literal

# what a number is, and so how it is written: "step" (a knob's value) and anything unnamed print as given
FmtKind = Literal["int", "rate", "ms", "us", "pct", "pct1", "mib", "kib", "bytes", "size", "step"]


def _fixed(v: float, small: int) -> str:
    a = abs(v)
    return f"{v:,.{small if a < 1 else 2 if a < 10 else 1 if a < 100 else 0}f}"


def fmt_bytes(v: float, short: bool = False) -> str:
    """A message size, exactly: 1 MiB, 16 MiB + 1 B (`short`: 16 MiB+)."""
    n = int(v)
    if n >= 1 << 20 and n % (1 << 20) < 1024:
        rest = n % (1 << 20)
        return f"{n >> 20:,} MiB" + (("+" if short else f" + {rest:,} B") if rest else "")
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10:,} KiB"
    return f"{n:,} B"


def fmt(kind: FmtKind, v: object) -> str:
    """One number of a kind ("rate", "ms", "pct", "bytes", …); "—" when nothing was measured."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        return "—" if v is None else str(v)
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "rate":
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}".removesuffix(".0")
    if kind in ("ms", "us"):
        return _fixed(v, 3 if kind == "ms" else 2)
    if kind == "pct":
        return "0" if v == 0 else "<0.01" if abs(v) < 0.01 else _fixed(v, 2)
    if kind == "pct1":
        return f"{v:.1f}"
    if kind == "mib":
        return f"{v / 2**20:,.1f}"
    if kind == "kib":
        return f"{v / 2**10:,.1f}"
    if kind == "bytes":
        return fmt_bytes(v)
    if kind == "size":  # an amount of memory or queue, rounded
        if abs(v) >= 2**20:
            return f"{v / 2**20:,.1f} MiB"
        return f"{v / 2**10:,.0f} KiB" if abs(v) >= 2**10 else f"{v:,.0f} B"
    return f"{v:g}"


def ratio(a: float, b: float) -> str:
    """How many times a is b, as the report writes it."""
    if a == 0:
        return "∞×"
    r = b / a
    return f"{r:.1f}×" if r < 10 else f"{r:,.0f}×"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def map_text(m: dict[str, int]) -> str:
    return ", ".join(f"{k} {fmt('int', n)}" for k, n in sorted(m.items())) or "none"


def codes_text(m: dict) -> str:
    return ", ".join(f"{k}×{fmt('int', n)}" for k, n in sorted(m.items()) if n) or "none"
