"""The Markdown summary: the scenarios, capacity, the claims and the environment, to paste into an
issue or a README."""

from __future__ import annotations

from bench.record import Results
from bench.report.answer import Answer, answer
from bench.report.autopsy import unexplained_words
from bench.report.browsers import browsers_view, reconnect_view
from bench.report.capacity import capacity_text, ramp_capacity, ramp_scenarios
from bench.report.claims import claims
from bench.report.environment import client_cost_text, harness_text
from bench.report.headline import Cell, Segment
from bench.report.hostile import hostile_lines
from bench.report.layers import layers_view
from bench.report.plan import plan_view
from bench.report.repeatability import repeat_view
from bench.report.repeats import fmt_spread, fmt_stat, fold
from bench.report.runs import (
    COST,
    DPS,
    LOSS,
    P95,
    flag_names,
    scenario_names,
    target_names,
)
from bench.report.searched import search_view
from bench.report.steps import scenario_about, short_step
from bench.report.tables import RTT


def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_figure(c: Cell) -> str:
    return md_cell(c.text + "".join(f" [{f}]" for f in c.flags) + (f" ({c.note})" if c.note else ""))


def md_sentence(segments: list[Segment]) -> str:
    """A sentence of the answer, each figure linked to the section of report.html that proves it."""
    return "".join(f"[{text}](report.html{link})" if link else text for text, link in segments)


def answer_lines(data: Results) -> list[str]:
    found = answer(data)
    if not found.rows:
        return []
    out = ["| target | capacity at the SLO (deliveries/s) | server CPU per delivery at capacity | "
           "a member who stops reading | largest message delivered | first loss and its cause |",
           "|---|---|---|---|---|---|"]
    for r in found.rows:
        name = f"{r.target}{' ✱' if r.patched else ''} ({r.stack})"
        out.append("| " + " | ".join([md_cell(name), *(md_figure(c) for c in (r.capacity, r.cost, r.slow, r.largest,
                                                                               r.first_loss))]) + " |")
    if found.patched:
        out += ["", "✱ runs on this project's fixes to its stack: " + "; ".join(
            f"`{m}` ({', '.join(targets)})" for m, targets in found.patched.items()) + "."]
    return ["## The answer", "", *plain_lines(found), *out, ""]


def plain_lines(found: Answer) -> list[str]:
    """The plain answer, a paragraph per question."""
    out = []
    for q in found.questions:
        out += [f"**{q.asks}** " + " ".join(md_sentence(s) for s in q.sentences), ""]
    return out


def layer_lines(data: Results) -> list[str]:
    """Where the CPU goes, µs per delivery by layer, a row per profiled target (bench.report.layers)."""
    found = layers_view(data)
    if not found.columns:
        return []
    out = ["## Where the CPU goes", "", "| target | " + " | ".join(found.names) + " | total | measured in |",
           "|---|" + "---:|" * (len(found.names) + 1) + "---|"]
    out += [f"| {md_cell(c.target)} | " + " | ".join(cells) + f" | {md_cell(c.at)} |"
            for c, cells in zip(found.columns, found.cells, strict=True)]
    return out + [""] + [f"- {md_cell(x)}" for x in (*found.floor, found.server_or_framework) if x] + [""]


def repeat_lines(data: Results) -> list[str]:
    """The capacities and ratios beside the bench before (bench.report.repeatability)."""
    if (repeat := repeat_view(data)) is None:
        return []
    return [f"**Repeated:** {repeat.summary}.", "", "| | before | this bench | change | at full speed | why it moved |",
            "|---|---:|---:|---:|---:|---|",
            *[f"| {md_cell(r.name)} | {r.old} | {r.new} | {r.change} | {r.full_speed} | {md_cell(r.why)} |"
              for r in repeat.rows], ""]


def plan_lines(data: Results) -> list[str]:
    """A capacity plan for the example workloads (bench.report.plan), a table each."""
    out = []
    for w in plan_view(data):
        out += [f"### Plan: {w.name}", "", md_cell(w.about), "",
                "| target | server processes | cores in all | database cores | Redis cores | memory | restart | "
                "binds first |", "|---|---:|---:|---:|---:|---:|---:|---|",
                *[f"| {md_cell(r.target)} | {r.processes} | {r.cores} | {r.database} | {r.redis} | {r.memory} | "
                  f"{r.restart} | {md_cell(r.binds)} |" for r in w.rows], ""]
    return (["## A capacity plan", "", "From the costs measured; `python -m bench.plan` plans your own workload.", ""]
            + out) if out else []


def browser_lines(data: Results) -> list[str]:
    """As browsers connect (bench.report.browsers): each stack's plain target beside its browser-like ones."""
    tables, out = browsers_view(data), []
    for b in tables:
        out += [f"### {b.stock}, as browsers connect", "",
                "| target | members connect | server agreed | capacity | server µs/delivery, chat text | "
                "incompressible | bytes read/delivery | RTT p95 ms | memory/connection, idle / chatting | "
                "CPU ms/connection | storm: all admitted in |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                *[f"| {md_cell(r.target)} | {r.connects} | {r.agreed} | {r.capacity} | {r.cost} | {r.cost_binary} | "
                  f"{r.wire} | {r.p95} | {r.rss} | {r.handshake_cpu} | {r.storm} |" for r in b.rows], ""]
    storms = reconnect_view(data)
    if storms:
        out += ["### Reconnect storms", "", "| target | members reconnect by | members | first member back | "
                "every member back | failed attempts | new server until then | messages |",
                "|---|---|---:|---:|---:|---|---|---|",
                *[f"| {md_cell(r.target)} | {r.policy} | {r.members} | {r.first} | {r.back} | {md_cell(r.failures)} | "
                  f"{md_cell(r.server)} | {md_cell(r.ledger)} |" for r in storms], ""]
    if not out:
        return []
    head = [f"Fixed load: {tables[0].fixed_load}; in brackets the change against the plain target (n.s.: inside "
            "the runs' spread).", ""] if tables else []
    return ["## As browsers connect", "", *head, *out]


def markdown_report(data: Results) -> str:
    targets = target_names(data)
    out = [f"# Real-time chat benchmark: {' vs '.join(targets) or 'no targets'}", "",
           f"Status: **{data.status or 'unknown'}**, {len(data.runs)} runs, started "
           f"{data.started or '—'}.", "", *answer_lines(data),
           f"The loss ledger: {unexplained_words(data)}.", ""]
    for sc in scenario_names(data):
        out += [f"## {sc}", "", scenario_about(data, sc), "",
                "| target | step | deliveries/s | RTT p50 / p95 / p99 ms | loss % | server µs/delivery | "
                "peak RSS MiB | flags |", "|---|---|---:|---:|---:|---:|---:|---|"]
        for t in targets:
            for step in data.steps_of(sc, t):
                g = data.runs_of(sc, t, step)
                rtt = " / ".join(fmt_stat("ms", fold(g, key)) for key in RTT[:3])
                cells = [md_cell(t), md_cell(short_step(g[0]) or "—"), fmt_spread("rate", fold(g, DPS)),
                         rtt, fmt_spread("pct", fold(g, LOSS)), fmt_spread("us", fold(g, COST)),
                         fmt_spread("mib", fold(g, lambda r: r.server.rss_peak_bytes)), flag_names(g)]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if ramp_scenarios(data):
        out += ["## Capacity at the SLO", "",
                "| scenario | target | capacity | RTT p95 ms | server µs/delivery |",
                "|---|---|---|---:|---:|"]
        searched = {c.scenario for c in data.capacities}
        for view in search_view(data, targets):
            out += [f"| {view.name} | {md_cell(r.target)} | {md_cell(f'{r.number} {r.bracket}; failed first: ')}"
                    f"{md_cell(f'{r.failed_first}; {r.state}')} | {r.p95} | {r.cost} |" for r in view.rows]
        for sc in [s for s in ramp_scenarios(data) if s not in searched]:
            for t in targets:
                cap = ramp_capacity(data, sc, t)
                out.append(f"| {sc} | {md_cell(t)} | {md_cell(capacity_text(cap))} | "
                           f"{fmt_stat('ms', fold(cap.runs, P95))} | "
                           f"{fmt_stat('us', fold(cap.runs, COST))} |")
        out.append("")
        out += repeat_lines(data)
    out += layer_lines(data)
    out += browser_lines(data)
    out += plan_lines(data)
    out += hostile_lines(data)
    found = claims(data)
    out += ["## The seed's claims, tested", "", "| # | claim | verdict |", "|---|---|---|"]
    for cl in found:
        stacks = "; ".join(f"{fam}: {v}" for fam, v in cl.by_stack.items())
        out.append(f"| {cl.number} | {md_cell(cl.claim)} | **{cl.verdict}**"
                   + (f" ({stacks})" if len(set(cl.by_stack.values())) > 1 else "") + " |")
    for cl in found:
        out += ["", f"**{cl.number}. {cl.claim}** — {cl.verdict}. {cl.why}", "", f"Experiment: {cl.experiment}",
                "", *[f"- {f}" for f in cl.figures]]
        for tab in cl.tables:
            out += ["", tab.caption + ":", "", "| " + " | ".join(map(md_cell, tab.head)) + " |",
                    "|" + "---|" * len(tab.head), *["| " + " | ".join(map(md_cell, row)) + " |" for row in tab.rows]]
    env = data.environment
    versions = ", ".join(f"{k} {env.packages[k]}" for k in ("daphne", "channels", "uvicorn", "fastapi", "locust")
                         if env.packages.get(k))
    pinning = env.cpu_plan.note if env.cpu_plan else "—"
    out += ["", "## Environment", "",
            f"{env.cpu_model or '?'}, {env.cores or '?'} cores, Linux {env.kernel or '?'}, "
            f"Python {env.python or '?'}; {versions}; CPU pinning: {pinning}.", "",
            f"Load generator, best case (harness): {harness_text(env.harness)}; measured in these runs: "
            f"{client_cost_text(data)}.", "", "Full report: report.html; data: results.json.", ""]
    return "\n".join(out)
