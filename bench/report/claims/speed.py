"""Claims 7a, 7b and 8: speed (server CPU per delivery, capacity at the SLO), scalability (capacity at
the SLO, Redis scale-out) and the trade-off the blog concludes from them."""

from __future__ import annotations

from bench.record import Results, searched
from bench.report.appmode import relay_targets
from bench.report.capacity import (
    MIN_CPU_S,
    MIN_DELIVERIES,
    capacity_text,
    cost_sentence,
    costs,
    ramp_capacity,
    ramp_scenarios,
)
from bench.report.claims.base import FAILS, HOLDS, UNMEASURED, UNSETTLED, Claim, cautions, figure
from bench.report.claims.modes import across_modes, capacities_by_mode, costs_by_mode
from bench.report.numbers import fmt
from bench.report.repeats import differ
from bench.report.runs import DPS, LOSS, P95, info, ran, redis_targets, scenario_names, stack_of
from bench.report.searched import bracket, capacity_number
from bench.report.steps import describe_step


def speed_outcome(data: Results, scenario: str) -> str | None:
    """"FastAPI" or "Channels" (the cheaper stack per delivery), "" when not significant, None when one
    stack has no timed figure."""
    c = costs(data, scenario)
    cheapest = {}
    for fam in ("Channels", "FastAPI"):
        have = [t for t in ran(data, fam) if t in c.stats and not info(data, t).breaks]  # a result conforms
        if have:
            cheapest[fam] = min(have, key=lambda t: c.stats[t].median)
    if len(cheapest) < 2:
        return None
    ch, fa = c.stats[cheapest["Channels"]], c.stats[cheapest["FastAPI"]]
    return "" if differ(ch, fa) else "FastAPI" if fa.median < ch.median else "Channels"


def reach(data: Results, scenario: str, target: str) -> tuple[float, str] | None:
    """Deliveries/s a target took under the SLO in a ramp, and how the report writes it: searched when the
    bench searched it, else the step logic of capacity.py."""
    if found := searched(data, target, scenario):
        return (found.deliveries_per_s(found.passed) or 0.0,
                f"{capacity_number(found)} {bracket(found)}" + " [client-bound]" * found.client_bound)
    cap = ramp_capacity(data, scenario, target)
    return None if cap.state == "not run" else (cap.offered, capacity_text(cap) + cautions(cap.runs))


def capacity_figures(data: Results, targets: list[str], scenarios: list[str] | None = None) -> list[str]:
    out = []
    for sc in ramp_scenarios(data) if scenarios is None else scenarios:
        found = [(t, r) for t in targets if (r := reach(data, sc, t))]
        if found:
            out.append(f"capacity at the SLO ({sc}): " + "; ".join(f"{t} {text}" for t, (_, text) in found))
    return out


def claim_speed(data: Results) -> Claim:
    figures, outcomes = [], []
    for sc in scenario_names(data):
        if not (sentence := cost_sentence(data, sc)):
            continue
        figures.append(sentence)
        if (outcome := speed_outcome(data, sc)) is not None:
            outcomes.append(outcome)
    figures += capacity_figures(data, ran(data))
    by_mode = costs_by_mode(data)
    figures += [f"server µs per delivery at each target's own searched capacity (the loads differ), {line}"
                for _, line in by_mode.values()]
    if not outcomes and (relay := by_mode.get("relay", (None, ""))[0]) is not None:
        outcomes = [relay]
    decided = [o for o in outcomes if o]
    if not outcomes:
        verdict, why = UNMEASURED, "This run has no scenario where both a Channels and a FastAPI target ran."
    elif decided and all(o == "FastAPI" for o in decided):
        verdict, why = HOLDS, (f"FastAPI costs less server CPU per delivery in {len(decided)} of {len(outcomes)} "
                               "comparable scenarios" + (" (the others: not significant)" * (len(decided) <
                                                                                            len(outcomes)))
                               + ". Not because it is \"all async\": both stacks are asynchronous end to "
                                 "end; " + ("what each spends it on, by layer, is in Where the CPU goes."
                                            if any(r.profile for r in data.runs) else
                                            "this run measures what each spends per message in total, not where."))
    elif decided and all(o == "Channels" for o in decided):
        verdict, why = FAILS, "Channels costs less server CPU per delivery wherever the difference is significant."
    else:
        verdict, why = UNSETTLED, ("The cheaper stack differs between scenarios, or no difference is "
                                   "significant.")
    why += across_modes(by_mode, "is cheaper per delivery")
    return Claim("7a", "Speed: FastAPI (all async) is faster.",
                 "Server CPU µs per delivery per target and scenario, at the first step every target ran (valid "
                 f"even when the load generator is the limit; left out below {fmt('int', MIN_DELIVERIES)} "
                 f"deliveries or {MIN_CPU_S:g} s of server CPU, where fixed work and the clock's tick dominate: "
                 "`payload`, `idle`); capacity at the SLO on the ramp.", figures, verdict, why)


def headline(data: Results, scenario: str, target: str) -> str:
    """A target's largest step in a scenario that is not a ramp: deliveries/s, RTT p95, loss."""
    steps = data.steps_of(scenario, target)
    g = data.runs_of(scenario, target, steps[-1])
    step = describe_step(g[0])
    return (f"{target}{' at ' + step if step else ''}: {figure(g, DPS, 'rate')} deliveries/s, RTT p95 "
            f"{figure(g, P95, 'ms')} ms, {figure(g, LOSS, 'pct')}% lost")


def redis_scenarios(data: Results) -> list[str]:
    redis = redis_targets(data)
    return [sc for sc in scenario_names(data) if any(data.runs_of(sc, t) for t in redis)]


def redis_figures(data: Results) -> list[str]:
    """Every scenario a Redis target ran, each target that ran it: capacity on a ramp, else its headline."""
    out = []
    for sc in redis_scenarios(data):
        targets = [t for t in ran(data) if data.runs_of(sc, t)]
        if sc in ramp_scenarios(data):
            out += capacity_figures(data, targets, [sc])
        else:
            out.append(f"{sc}: " + "; ".join(headline(data, sc, t) for t in targets))
    return out


def claim_scale(data: Results) -> Claim:
    best: dict[str, tuple[str, str, float, str]] = {}  # stack -> target, scenario, deliveries/s, text
    for sc in ramp_scenarios(data):
        for t in relay_targets(data):
            if (r := reach(data, sc, t)) and r[0] >= best.get(stack_of(data, t), ("", "", -1.0, ""))[2]:
                best[stack_of(data, t)] = (t, sc, *r)
    single = [sc for sc in ramp_scenarios(data) if sc not in redis_scenarios(data)]
    figures = capacity_figures(data, ran(data), single) + ["processes per target: " + ", ".join(
        f"{t} {info(data, t).processes if t in data.targets else '?'}" for t in ran(data))]
    redis = redis_figures(data)
    figures += redis or ["Redis scale-out (the `ramp` on targets django-redis, django-redis-pubsub, "
                         "fastapi-redis): not measured in this run"]
    by_mode = capacities_by_mode(data)
    figures += [f"capacity at the SLO, deliveries/s, {line}" for _, line in by_mode.values()]
    note = "" if redis else " Scale-out across processes with Redis (the Redis targets' ramp) was not measured here."
    if not {"Channels", "FastAPI"} <= set(best):
        verdict, why = UNMEASURED, "No ramp ran for both stacks; the `ramp` scenario measures it." + note
    else:
        ch, fa = best["Channels"], best["FastAPI"]
        reached = (f"The most each stack took under the SLO as a relay: Channels, {ch[0]} in {ch[1]}: {ch[3]}; "
                   f"FastAPI, {fa[0]} in {fa[1]}: {fa[3]}.")
        verdict = HOLDS if ch[2] > fa[2] else FAILS if ch[2] < fa[2] else UNSETTLED
        why = reached + note + across_modes(by_mode, "takes more under the SLO")
    return Claim("7b", "Scalability: Channels (easy Redis) is more scalable.",
                 "Capacity at the SLO on the ramp: the largest step with RTT p95 under the SLO and no loss, per "
                 "target; scale-out across processes: the same ramp on django-redis, django-redis-pubsub and "
                 "fastapi-redis.",
                 figures, verdict, why)


def claim_conclusion(data: Results, speed: Claim, scale: Claim) -> Claim:
    if speed.verdict == HOLDS and scale.verdict == HOLDS:
        verdict, why = HOLDS, "Both halves of the trade-off hold in this run."
    elif speed.verdict == HOLDS and scale.verdict == FAILS:
        verdict, why = FAILS, ("In this run the FastAPI targets are both cheaper per delivery and reach a "
                               "higher load under the SLO: there is no trade-off to make"
                               + ("." if redis_scenarios(data) else " on one process."))
    elif FAILS in (speed.verdict, scale.verdict):
        verdict, why = FAILS, f"Speed {speed.verdict}; scalability {scale.verdict}: not the trade-off it is."
    else:
        verdict, why = UNMEASURED, f"Follows from 7a ({speed.verdict}) and 7b ({scale.verdict})."
    flips = "".join(x for x in (across_modes(costs_by_mode(data), "is cheaper per delivery"),
                                across_modes(capacities_by_mode(data), "takes more under the SLO")) if "flips" in x)
    if flips:
        why += flips + " The advice depends on whether the chat signs members in and stores its messages."
    figures = [f"7a: {f}" for f in speed.figures[:1]] + [f"7b: {scale.why}"]
    return Claim("8", "Use FastAPI for small systems where speed matters most, Channels where scalability "
                 "matters.", "Follows from 7a (speed) and 7b (scalability).", figures, verdict, why)
