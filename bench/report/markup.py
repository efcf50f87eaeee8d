"""Small HTML pieces every section uses: target colours, flags on a figure, escaped computed text."""

from __future__ import annotations

from html import escape

from bench.report.runs import flag_notes, target_names

COLORS = {"django": "#2f7d4f", "django-redis": "#79b28e", "django-redis-pubsub": "#4f9a6c",
          "django-uvicorn": "#9a7b1c", "fastapi": "#2f6db5", "fastapi-seed": "#d0652f",
          "fastapi-redis": "#7ba7d9"}
PALETTE = ["#8a5bb5", "#b5475b", "#3f9aa8", "#6b7280", "#b08d57"]
NEUTRAL = "#9aa3b2"


def colors(data: dict) -> dict[str, str]:
    names = target_names(data)
    spare = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return {t: COLORS.get(str(t)) or next(spare) for t in names}


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


FLAG_CLASS = {"client-bound": "cb", "noisy": "noisy", "failed": "failed"}


def flag(name: str) -> str:
    return f'<span class="flag {FLAG_CLASS[name]}">{name}</span>'


def labelled(text: str) -> str:
    """Escape computed text; `names` become code, [client-bound] and [noisy] flags, and "not significant"
    verdicts get the report's label."""
    parts = escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    for name in ("client-bound", "noisy"):
        text = text.replace(f"[{name}]", flag(name))
    return text.replace("not significant", '<span class="ns">not significant</span>')


def flags(runs: list[dict]) -> str:
    return "".join(flag(name) + (f'<span class="fnote">{escape(note)}</span>' if note else "")
                   for name, note in flag_notes(runs))


def scroll(table: str) -> str:
    return f'<div class="scroll">{table}</div>'


def kv_table(items: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v)) if v not in (None, '') else '—'}</td></tr>"
                   for k, v in items)
    return f'<table class="kv">{rows}</table>'
