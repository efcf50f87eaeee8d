"""Placeholder until the full report lands: writes the JSON and a bare Markdown table."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(data: dict, out: Path) -> dict:
    paths = {"json": out / "results.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(data, indent=1))
    paths["md"].write_text("\n".join(summary_rows(data)))
    paths["html"].write_text("<pre>" + "\n".join(summary_rows(data)) + "</pre>")
    return paths


def summary_rows(data: dict) -> list[str]:
    return [f"{r['target']} {r['scenario']} {r['step']} {r['deliveries_per_s']:.0f}/s" for r in data["runs"]]


def print_summary(data: dict) -> None:
    print("\n".join(summary_rows(data)))
