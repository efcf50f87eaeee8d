"""The report's middle sections: the charts, capacity at the SLO, and the seed's claims tested."""

from __future__ import annotations

from html import escape

from bench.report.capacity import capacity, capacity_text, ramp_scenarios
from bench.report.charts import sweep_charts, timeline_chart
from bench.report.claims import KNOWN, Claim, claims
from bench.report.claims.base import FAILS, HOLDS, OTHER, UNMEASURED, UNSETTLED
from bench.report.markup import flags, labelled, swatch
from bench.report.numbers import fmt
from bench.report.repeats import fmt_stat, fold
from bench.report.runs import COST, DPS, P95, param, runs_of, scenario_names, steps_of
from bench.report.steps import sweep_axis


def charts_section(data: dict, targets: list[str], col: dict) -> str:
    scenarios = scenario_names(data)
    if not scenarios:
        return "<p>No run was measured: nothing to chart.</p>"
    what = {"load": "latency and throughput against load", "size": "loss and latency against message size",
            "room_size": "latency and cost against room size"}
    out = [f'<h3>{escape(str(sc))}: {what[sweep_axis(data, sc)]}</h3><div class="grid">'
           f"{sweep_charts(data, sc, targets, col)}</div>"
           for sc in scenarios if len(steps_of(data, sc)) > 1]
    flowing = [sc for sc in scenarios if any(r.get("timeline") for r in runs_of(data, sc))]
    still = [sc for sc in scenarios if sc not in flowing]
    out.append('<h3>Deliveries per second over time</h3><p class="about">Per target, second by second '
               "through each measurement window (runs one after another; the dashed grey line is what "
               "was offered). A stalled room shows here as a dip even when the percentiles of what did "
               "arrive look fine."
               + (f" Nothing was delivered to plot in {escape(', '.join(still))}." if still else "") + "</p>"
               '<div class="grid">' + "".join(timeline_chart(data, sc, targets, col) for sc in flowing)
               + "</div>")
    return "".join(out)


def capacity_section(data: dict, targets: list[str], col: dict) -> str:
    ramps = ramp_scenarios(data)
    if not ramps:
        return ("<p>No ramp scenario in this run: capacity at an SLO is not measured (scenario "
                "<code>ramp</code>).</p>")
    out = []
    for sc in ramps:
        slo = fmt("ms", param(data, sc, "slo_p95_ms"))
        out.append(f"<h3>{escape(sc)}</h3><p class=\"about\">The largest step whose runs all kept the "
                   f"senders' RTT p95 under {slo} ms with zero loss.</p>"
                   '<table class="cmp"><thead><tr><th>target</th><th>capacity</th><th class="num">offered '
                   'deliveries/s</th><th class="num">deliveries/s</th><th class="num">RTT p95 ms</th>'
                   '<th class="num">server µs/delivery</th><th>next step</th></tr></thead><tbody>')
        for t in targets:
            cap = capacity(data, sc, t)
            at = cap.state in ("at", "beyond")
            cells = "".join(f'<td class="num">{fmt_stat(kind, fold(cap.runs, path)) if at else "—"}</td>'
                            for path, kind in ((DPS, "rate"), (P95, "ms"), (COST, "us")))
            nxt = (f"{cap.stopped_label}: {cap.stopped_why}" if cap.stopped_why
                   else "the ramp ended under the SLO" if cap.state == "beyond" else "")
            out.append(f"<tr><th>{swatch(col[t])}{escape(str(t))}</th><td>"
                       f"{escape(cap.label if at else capacity_text(cap))}{flags(cap.runs)}</td>"
                       f'<td class="num">{fmt("rate", cap.offered) if at else "—"}</td>{cells}'
                       f"<td>{escape(nxt)}</td></tr>")
        out.append("</tbody></table>")
    return "".join(out)


VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", OTHER: "other", UNMEASURED: "unmeasured",
                 UNSETTLED: "unsettled"}


def verdict_badge(verdict: str) -> str:
    return f'<span class="verdict {VERDICT_CLASS[verdict]}">{escape(verdict)}</span>'


def verdicts(cl: Claim) -> str:
    """The claim's verdict, and each stack's where they part."""
    stacks = "".join(f'<span class="stack">{escape(fam)}: {verdict_badge(v)}</span>' for fam, v in cl.by_stack.items())
    return verdict_badge(cl.verdict) + (f'<div class="stacks">{stacks}</div>' if len(set(cl.by_stack.values())) > 1
                                        else "")


def claims_section(data: dict) -> str:
    found = claims(data)
    overview = "".join(f'<tr><th><a href="#claim-{cl.number}">{cl.number}</a></th>'
                       f"<td>{labelled(cl.claim)}</td><td>{verdicts(cl)}</td></tr>" for cl in found)
    out = ['<p class="about">Each claim of the blog post this project began from (SEED.md), the experiment '
           "that tests it, what this run measured (median [min–max] over repeats; flagged when the load "
           "generator was the limit or the servers' CPUs were shared) and a verdict.</p>"
           '<table class="cmp overview"><thead><tr><th>#</th><th>claim (SEED.md)</th><th>verdict</th></tr>'
           f"</thead><tbody>{overview}</tbody></table>"]
    for cl in found:
        figs = "".join(f"<li>{labelled(f)}</li>" for f in cl.figures)
        out.append(f'<div class="claim" id="claim-{cl.number}"><div class="claim-head"><span class="cnum">'
                   f'{cl.number}</span><span class="ctext">{labelled(cl.claim)}</span>'
                   f'<span class="cverdict">{verdicts(cl)}</span></div><p><b>Experiment.</b> '
                   f"{labelled(cl.experiment)}</p>"
                   + (f"<p><b>Measured in this run.</b></p><ul>{figs}</ul>" if figs else "")
                   + f"<p><b>Why.</b> {labelled(cl.why)}</p></div>")
    out.append('<div class="known"><h3>Context: what the libraries\' source already says</h3><p>From '
               "SEED.md's \"What is already known\", read from the libraries' source code: <b>not measured "
               "by this run</b>, stated so that the figures above can be read against it.</p><ul>"
               + "".join(f"<li>{labelled(k)}</li>" for k in KNOWN) + "</ul></div>")
    return "".join(out)
