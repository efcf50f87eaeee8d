"""The HTML page: one self-contained file (inline CSS and SVG, no script, nothing fetched), its
sections in a fixed order."""

from __future__ import annotations

from html import escape

from bench.report.autopsy import autopsy_section
from bench.report.environment import environment_section, method_section
from bench.report.markup import colors, labelled
from bench.report.numbers import plural
from bench.report.runs import failed, first_line, runs_of, scenario_names, target_names
from bench.report.sections import capacity_section, charts_section, claims_section
from bench.report.steps import where
from bench.report.tables import scenario_section
from bench.report.verdict import summary

SECTIONS = {"Verdict": "verdict", "Results by scenario": "scenarios", "Charts": "charts",
            "Capacity at the SLO": "capacity", "Loss autopsy": "autopsy",
            "The seed's claims, tested": "claims",
            "Environment": "environment", "Method notes": "method"}


CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--soft:#f6f7f9;--bad:#c62828;--warn:#a15c00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:#fff}
main{max-width:1240px;margin:0 auto;padding:28px 24px 72px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:44px 0 12px;padding-bottom:6px;
border-bottom:1px solid var(--line)}h3{font-size:16px;margin:26px 0 6px}h4{font-size:14px;margin:18px 0 4px}
.meta,.about,figcaption{color:var(--muted);font-size:13px}
nav{font-size:13px;margin:10px 0 0}nav a{color:var(--muted);margin-right:14px;text-decoration:none}
.banner{border:1px solid #f0c27b;background:#fff8ec;padding:10px 14px;border-radius:6px;margin:16px 0}
.banner.failed{border-color:#f5b5ae;background:#fdf1f0}
.verdict-text{font-size:15px;max-width:1040px;padding-left:20px}.verdict-text li{margin:4px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0 6px}
th,td{padding:4px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:600;background:var(--soft)}
tbody th{font-weight:500;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.rng{color:var(--muted);font-size:12px;white-space:nowrap;font-variant-numeric:tabular-nums}
th.tgt{border-top:3px solid;text-align:center;white-space:nowrap}
tr.sub th{font-weight:400;color:var(--muted);padding-left:18px}
td.best{font-weight:700}
td.na{color:var(--muted);font-style:italic;text-align:center}
.tag{display:block;font-size:11px;color:var(--muted);font-weight:400}
.ns{color:var(--muted);font-style:italic}
.bad{color:var(--bad);font-weight:700}
.over{color:var(--warn)}
.flag{display:inline-block;font-size:11px;line-height:16px;padding:0 6px;border-radius:8px;margin-left:5px;
font-weight:600;font-style:normal;vertical-align:1px}
.flag.cb{background:#fff3e0;color:#8a4b00;border:1px solid #f0c27b}
.flag.failed{background:#fdecea;color:var(--bad);border:1px solid #f5b5ae}
.flag.noisy{background:#eef2ff;color:#3949ab;border:1px solid #c5cae9}
.fnote{display:block;font-size:11px;color:var(--muted);font-weight:400}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
details{margin:4px 0}summary{cursor:pointer;color:var(--muted);font-size:13px}
.scroll{overflow-x:auto}table.steps th,table.steps td{padding:4px 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px 24px}
figure{margin:0}.ftitle{font-weight:600;font-size:14px;margin:6px 0 0}
svg.chart{max-width:100%;height:auto;font-family:inherit}
pre{white-space:pre-wrap;background:var(--soft);padding:8px 10px;font-size:12px;border-radius:4px;
margin:4px 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
table.kv td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;
word-break:break-all}
.cols{display:flex;gap:48px;flex-wrap:wrap}.cols table.kv th{width:auto}
table.kv th{width:260px;color:var(--muted);font-weight:500}
table.autopsy{width:100%}table.autopsy tr:has(+tr.ev)>*{border-bottom:0}
table.autopsy tr.ev td{font-size:12px;color:var(--muted);padding:0 9px 8px 24px}
table.overview td{font-size:13.5px}table.overview a{color:inherit}
.claim{border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:12px 0}
.claim p{margin:6px 0}.claim ul{margin:4px 0 6px;padding-left:22px;font-size:14px}
.claim-head{display:flex;gap:12px;align-items:baseline}.cnum{font-weight:700;color:var(--muted);min-width:26px}
.ctext{flex:1;font-weight:600}
.verdict{white-space:nowrap;font-size:12px;font-weight:700;padding:1px 9px;border-radius:10px;
border:1px solid}
.verdict.holds{color:#2e7d32;background:#edf7ee;border-color:#a5d6a7}
.verdict.fails{color:var(--bad);background:#fdecea;border-color:#f5b5ae}
.verdict.other{color:#8a4b00;background:#fff3e0;border-color:#f0c27b}
.verdict.unmeasured,.verdict.unsettled{color:#555;background:#f1f2f4;border-color:#d5d8de}
.cverdict{text-align:right}.stacks{margin-top:4px;font-size:12px;color:var(--muted);white-space:nowrap}
.stack{margin-left:8px}.stack .verdict{font-size:11px;padding:0 7px}
.known{background:var(--soft);border-radius:8px;padding:4px 16px 8px;margin-top:18px;font-size:14px}
"""


def section(title: str, body: str) -> str:
    return f'<section id="{SECTIONS[title]}"><h2>{escape(title)}</h2>{body}</section>'


def banner(data: dict) -> str:
    status = data.get("status") or "unknown"
    runs = data.get("runs") or []
    out = []
    if status != "complete":
        what = {"interrupted": "was interrupted", "running": "was still running when this report was written"}
        idle = [t for t in target_names(data) if not runs_of(data, target=t)]
        missing = f"; no runs for {escape(', '.join(map(str, idle)))}" if idle else ""
        out.append(f'<div class="banner"><b>Status: {escape(status)}.</b> This run '
                   f'{escape(what.get(status, "did not complete"))}: the report covers the {len(runs)} runs '
                   f"measured{missing}.</div>")
    if bad := failed(runs):
        items = "".join(f"<li><b>{escape(str(r.get('target')))}</b> {escape(where(r))}, run "
                        f"{(r.get('repeat') or 0) + 1}: {escape(first_line(r.get('failure')))}</li>"
                        for r in bad)
        out.append(f'<div class="banner failed"><b>{plural(len(bad), "failed run")}</b> '
                   f"(what they measured is kept):<ul>{items}</ul></div>")
    return "".join(out)


def html_report(data: dict) -> str:
    targets, col = target_names(data), colors(data)
    title = "Real-time chat benchmark: " + (" vs ".join(map(str, targets)) or "no targets")
    scenarios = "".join(scenario_section(data, sc, targets, col) for sc in scenario_names(data))
    nav = "".join(f'<a href="#{anchor}">{escape(name)}</a>' for name, anchor in SECTIONS.items())
    meta = (f"started {data.get('started') or '—'} · finished {data.get('finished') or '—'} · status "
            f"{data.get('status') or 'unknown'} · {len(data.get('runs') or [])} runs")
    body = [
        f'<h1>{escape(title)}</h1><p class="meta">{escape(meta)}</p><nav>{nav}</nav>', banner(data),
        section("Verdict", '<ul class="verdict-text">' + "".join(f"<li>{labelled(x)}</li>" for x in summary(data))
                + "</ul>"),
        section("Results by scenario", '<p class="about">Median over repeats, [min–max] when there are '
                "several; bold is the best target of the row; a percentage, factor or <i>not significant</i> "
                "tag compares each other target with it.</p>" + (scenarios or "<p>No run was measured.</p>")),
        section("Charts", charts_section(data, targets, col)),
        section("Capacity at the SLO", capacity_section(data, targets, col)),
        section("Loss autopsy", autopsy_section(data, targets, col)),
        section("The seed's claims, tested", claims_section(data)),
        section("Environment", environment_section(data, col)),
        section("Method notes", method_section(data)),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><main>{"".join(body)}</main></body></html>\n')

