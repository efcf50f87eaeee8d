"""What the HTML templates share beyond the record: target colours, stack markers, the flags' CSS classes,
and computed text made safe for the page (escaped, with `names` as code and [flags] as labels)."""

from __future__ import annotations

from markupsafe import Markup, escape

from bench.record import Results
from bench.report.runs import target_names

# Okabe & Ito's colour-blind-safe palette, then Tol's muted ones past eight targets; each known target keeps
# its own colour from report to report, and no two targets of one report share one.
PALETTE = ["#0072B2", "#D55E00", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#000000", "#332288",
           "#882255", "#44AA99", "#999933", "#AA4499"]
PREFERRED = {"django": 0, "fastapi": 1, "fastapi-seed": 5, "django-uvicorn": 4, "reference": 6, "django-redis": 3,
             "fastapi-redis": 2, "django-redis-pubsub": 7, "django-app": 9, "fastapi-app": 8,
             "django-app-sqlite": 10, "fastapi-app-sqlite": 11}
MARKERS = {"Channels": "●", "FastAPI": "■", "reference": "▲"}  # the stack, in tables and charts alike


def colors(data: Results) -> dict[str, str]:
    """One distinct colour per target; past the palette's length they repeat (the stack's marker still tells)."""
    out: dict[str, str] = {}
    for t in target_names(data):
        free = [c for c in PALETTE if c not in out.values()] or PALETTE
        preferred = PALETTE[PREFERRED[t]] if t in PREFERRED else None
        out[t] = preferred if preferred in free else free[0]
    return out


FLAG_CLASS = {"client-bound": "cb", "noisy": "noisy", "failed": "failed", "physics": "failed", "not held": "cb",
              "failed again": "failed"}


def labelled(text: str) -> Markup:
    """Escape computed text; `names` become code, [client-bound] and [noisy] flags, and "not significant"
    verdicts get the report's label."""
    parts = str(escape(text)).split("`")
    html = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    for name in FLAG_CLASS:
        html = html.replace(f"[{name}]", f'<span class="flag {FLAG_CLASS[name]}">{name}</span>')
    return Markup(html.replace("not significant", '<span class="ns">not significant</span>'))
