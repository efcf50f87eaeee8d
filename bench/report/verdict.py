"""The verdict at the top of the report, a few sentences: cost per delivery, capacity at the SLO, where
each target first lost messages and why, and what the ledger could not explain."""

from __future__ import annotations

from bench.record import Results, searched
from bench.report.capacity import capacity_text, cost_sentence, ramp_capacity, ramp_scenarios
from bench.report.loss import causes, first_losses, total
from bench.report.numbers import fmt, plural
from bench.report.repeats import fmt_spread, fold
from bench.report.runs import LOSS, scenario_names, target_names, unique
from bench.report.searched import bracket, capacity_number, held_note
from bench.report.steps import short_step


def summary(data: Results) -> list[str]:
    """The verdict, one sentence per finding."""
    runs, targets, scenarios = data.runs, target_names(data), scenario_names(data)
    if not runs:
        return [f"No run was measured (status: {data.status or 'unknown'}); "
                f"targets configured: {', '.join(map(str, targets)) or 'none'}."]
    out = [f"{len(runs)} runs of {', '.join(map(str, scenarios))} against {', '.join(map(str, targets))}."]
    cost = [s for sc in scenarios if (s := cost_sentence(data, sc))]
    if cost:
        out.append("Server CPU per delivery, cheapest first (× = times the cheapest): " + "; ".join(cost)
                   + ".")
    for sc in unique(c.scenario for c in data.capacities):
        found = [c for t in targets if (c := searched(data, t, sc))]
        out.append(f"Capacity at the SLO ({sc}, searched: the largest load held within RTT p95 "
                   f"{fmt('ms', found[0].slo_p95_ms)} ms, no loss and no growing backlog): "
                   + "; ".join(f"{c.target} {capacity_number(c)} ({held_note(c)}) {bracket(c)}"
                               + " (client-bound: a floor)" * c.client_bound for c in found) + ".")
    for sc in [sc for sc in ramp_scenarios(data) if not any(c.scenario == sc for c in data.capacities)]:
        caps = [ramp_capacity(data, sc, t) for t in targets]
        out.append(f"Capacity at the SLO ({sc}: RTT p95 under {fmt('ms', caps[0].slo)} ms, no loss): "
                   + "; ".join(f"{cap.target} {capacity_text(cap)}" for cap in caps) + ".")
    lost = []
    for t in targets:
        firsts, n = first_losses(data, t), len(data.runs_of(target=t))
        if firsts:
            lost.append(f"{t}: " + ", ".join(
                f"{sc}{' from ' + short_step(g[0]) if short_step(g[0]) else ''} "
                f"{fmt_spread('pct', fold(g, LOSS))}% ({causes(g)})" for sc, g in firsts))
        elif n:
            lost.append(f"{t} lost nothing in {plural(n, 'run')}")
    if lost:
        out.append("Where each target first lost messages, per scenario: " + "; ".join(lost) + ".")
    unexplained = total(runs, lambda r: r.ledger.unexplained)
    out.append(f"{fmt('int', unexplained)} deliveries are unexplained by the ledger"
               + (" (in red in the loss autopsy)." if unexplained else "."))
    return out
