"""The comparison report: one self-contained HTML page, a Markdown summary, the results JSON as given,
and a short table for the terminal. It reads the typed run record (bench/record.py) and nothing else.

Reading the results: `runs`, `steps`, `repeats` (median, range, significance), `loss`, `capacity` (a ramp's
steps), `searched` (Results.capacities: the capacity the bench searched), `layers` (where the CPU goes, from
the profiled runs), `appmode` (signed-in, stored chat beside the relay);
what they say: `answer` (the plain words of `plain` and the headline table of `headline`) and `claims`; how they look:
`page` with the Jinja2 templates in templates/ and the views its sections draw (`tables`, `sections`,
`autopsy`, `environment`), `charts` (on `svg`), `markdown`, `terminal`; `repeatability` shows the capacities
beside the bench before (Results.repeated).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.record import Results
from bench.report.markdown import markdown_report
from bench.report.page import SECTIONS, html_report
from bench.report.terminal import print_answer, print_summary

__all__ = ["SECTIONS", "print_answer", "print_summary", "write_report"]


def write_report(data: Results, out: Path) -> dict[str, Path]:
    """Write report.html, report.md and results.json into `out`; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "md": out / "report.md", "json": out / "results.json"}
    paths["json"].write_text(json.dumps(data.to_json(), indent=1))
    paths["html"].write_text(html_report(data), encoding="utf-8")
    paths["md"].write_text(markdown_report(data), encoding="utf-8")
    return paths
