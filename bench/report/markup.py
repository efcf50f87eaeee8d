"""What the HTML templates share beyond the record: target colours, the flags' CSS classes, and computed
text made safe for the page (escaped, with `names` as code and [flags] as labels)."""

from __future__ import annotations

from markupsafe import Markup, escape

from bench.record import Results
from bench.report.runs import target_names

COLORS = {"django": "#2f7d4f", "django-redis": "#79b28e", "django-redis-pubsub": "#4f9a6c",
          "django-uvicorn": "#9a7b1c", "fastapi": "#2f6db5", "fastapi-seed": "#d0652f",
          "fastapi-redis": "#7ba7d9"}
PALETTE = ["#8a5bb5", "#b5475b", "#3f9aa8", "#6b7280", "#b08d57"]


def colors(data: Results) -> dict[str, str]:
    names = target_names(data)
    spare = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return {t: COLORS.get(t) or next(spare) for t in names}


FLAG_CLASS = {"client-bound": "cb", "noisy": "noisy", "failed": "failed"}


def labelled(text: str) -> Markup:
    """Escape computed text; `names` become code, [client-bound] and [noisy] flags, and "not significant"
    verdicts get the report's label."""
    parts = str(escape(text)).split("`")
    html = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    for name in FLAG_CLASS:
        html = html.replace(f"[{name}]", f'<span class="flag {FLAG_CLASS[name]}">{name}</span>')
    return Markup(html.replace("not significant", '<span class="ns">not significant</span>'))
