"""The HTML page: one self-contained file (inline CSS and SVG, no script, nothing fetched), its
sections in a fixed order. The figures are computed here and in the section modules; the markup is in
templates/ (Jinja2, autoescaped: every text from the record is escaped, the charts come in as SVG)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader

from bench.plan import HEADROOM
from bench.record import NOISY_PCT, SLOW_SPEED_PCT, Results
from bench.report.answer import answer
from bench.report.autopsy import autopsy_view, unexplained_words
from bench.report.browsers import browsers_view, reconnect_view
from bench.report.charts import probe_charts
from bench.report.claims import KNOWN, claims
from bench.report.environment import environment_view
from bench.report.hostile import hostile_view
from bench.report.layers import layers_view
from bench.report.markup import FLAG_CLASS, MARKERS, colors, labelled
from bench.report.numbers import plural
from bench.report.plan import plan_view, scale_view
from bench.report.repeatability import repeat_view
from bench.report.repeats import SIGNIFICANT
from bench.report.runs import failed, first_line, scenario_names, stack_of, target_names
from bench.report.searched import search_view
from bench.report.sections import VERDICT_CLASS, capacity_view, charts_view
from bench.report.steps import where
from bench.report.tables import scenario_view
from bench.report.tuned import tuned_view

# in the page's order: the answer and what it stands on open, the evidence folded
SECTIONS = {"The answer": "answer", "Capacity at the SLO": "capacity", "The seed's claims, tested": "claims",
            "Results by scenario": "scenarios", "Charts": "charts", "Where the CPU goes": "layers",
            "Each stack tuned": "tuned", "As browsers connect": "browsers", "A capacity plan": "plan",
            "Loss autopsy": "autopsy", "Hostile clients": "hostile", "Environment": "environment",
            "Method notes": "method"}

TEMPLATES = Environment(loader=PackageLoader("bench.report"), autoescape=True, trim_blocks=True,
                        lstrip_blocks=True, keep_trailing_newline=True)
TEMPLATES.filters["labelled"] = labelled
TEMPLATES.globals.update(where=where, first_line=first_line, flag_class=FLAG_CLASS, verdict_class=VERDICT_CLASS)

UNFINISHED = {"interrupted": "was interrupted", "running": "was still running when this report was written"}


def status_banner(data: Results) -> dict | None:
    """What a reader must know first when the run did not complete."""
    status = data.status or "unknown"
    if status == "complete":
        return None
    idle = [t for t in target_names(data) if not data.runs_of(target=t)]
    return {"name": status, "what": UNFINISHED.get(status, "did not complete"), "runs": len(data.runs),
            "idle": ", ".join(idle)}


def html_report(data: Results) -> str:
    targets, col = target_names(data), colors(data)
    bad = failed(data.runs)
    return TEMPLATES.get_template("report.html").render(
        title="Real-time chat benchmark: " + (" vs ".join(targets) or "no targets"),
        meta=(f"started {data.started or '—'} · finished {data.finished or '—'} · status "
              f"{data.status or 'unknown'} · {len(data.runs)} runs"),
        sections=SECTIONS, colors=col, marks={t: MARKERS[stack_of(data, t)] for t in targets},
        status=status_banner(data),
        answer=answer(data),
        failed=bad, failed_count=plural(len(bad), "failed run"),
        unexplained=unexplained_words(data),
        scenarios=[scenario_view(data, sc, targets) for sc in scenario_names(data)],
        chart_view=charts_view(data, targets, col),
        ramps=capacity_view(data, targets), searches=search_view(data, targets),
        probe_charts=probe_charts(data, targets, col), repeat=repeat_view(data),
        layers=layers_view(data), tuned=tuned_view(data), browsers=browsers_view(data), reconnects=reconnect_view(data),
        autopsy_rows=autopsy_view(data, targets),
        plans=plan_view(data), plan_headroom=f"{HEADROOM:.0%}", scale=scale_view(data),
        hostile=hostile_view(data, col),
        found=claims(data), known=KNOWN,
        env=environment_view(data),
        format_version=data.format_version, significant=SIGNIFICANT, noisy_pct=NOISY_PCT,
        slow_speed_pct=SLOW_SPEED_PCT,
    )
