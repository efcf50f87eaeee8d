"""What the figures were measured on and how to read them: the environment (machine, TCP buffer
sysctls, packages, the exact server commands, the load generator's own cost), as the key/value lists
templates/environment.html draws; the method notes are that template's own text."""

from __future__ import annotations

import json

from bench.record import Harness, Results
from bench.report.numbers import fmt, plural, ratio
from bench.report.repeats import fold
from bench.report.runs import Measure, scenario_names, stack_of, target_names

CLIENT_COST: Measure = lambda run: run.client.cpu_us_per_delivery  # noqa: E731


def harness_text(h: Harness | None) -> str:
    """The load generator's self-benchmark (bench/harness), as its own summary and spread."""
    if h is None:
        return "not measured in this run"
    per = h.deliveries_per_core_s
    spread = (f"{fmt('rate', per.median)} deliveries per client core-second (median; "
              f"{fmt('rate', per.min)}–{fmt('rate', per.max)})") if per else ""
    steal = f", steal {fmt('pct1', h.steal_pct)}%" if h.steal_pct is not None else ""
    return "; ".join(x for x in (h.summary, spread + steal) if x)


def client_cost_text(data: Results) -> str:
    """The load generator's measured cost in the real runs, as the harness states its best case: deliveries
    per client CPU-second (1e6 / the median of the runs' client µs per delivery)."""
    runs = [r for r in data.runs if CLIENT_COST(r)]
    s = fold(runs, CLIENT_COST, every=True)
    if s is None:
        return "not measured in this run"
    per = "; ".join(f"{sc} {fmt('rate', 1e6 / st.median)}" for sc in scenario_names(data)
                    if (st := fold([r for r in runs if r.scenario == sc], CLIENT_COST, every=True)))
    harness = data.environment.harness
    best = harness.deliveries_per_core_s.median if harness and harness.deliveries_per_core_s else None
    versus = f" — the harness's best case is {ratio(1e6 / s.median, best)} that" if best is not None else ""
    return (f"{fmt('rate', 1e6 / s.median)} deliveries per client CPU-second (median over {plural(s.n, 'run')}: "
            f"{fmt('us', s.median)} µs of client CPU per delivery, {fmt('us', s.lo)}–{fmt('us', s.hi)} µs){versus}; "
            f"by scenario: {per}")


def environment_view(data: Results) -> dict:
    """The machine, the packages, the TCP buffer sysctls, and each target: lists of (what, value)."""
    env = data.environment
    plan = env.cpu_plan
    mem = env.memory_bytes
    machine = [
        ("CPU model", env.cpu_model), ("cores", env.cores),
        ("usable CPUs", ", ".join(map(str, env.usable_cpus)) or None),
        ("memory", f"{mem / 2**30:.1f} GiB" if mem is not None else None),
        ("kernel", env.kernel), ("Python", env.python), ("fd limit", env.fd_limit),
        ("CPU pinning", (f"servers on CPUs {plan.server_cpus}, load generator on {plan.client_cpus} — {plan.note}")
         if plan else None),
        ("load generator, best case (harness self-benchmark)", harness_text(env.harness)),
        ("load generator, measured in these runs", client_cost_text(data)),
        *([("Redis", env.redis.note)] if env.redis and env.redis.note else []),
        ("command", " ".join(data.argv) or None),
    ]
    targets = {t: [
        ("about", desc.about), ("stack", stack_of(data, t)), ("server", desc.server),
        ("fan-out / layer", f"{desc.fanout} / {desc.layer}"),
        ("processes", desc.processes), ("server command", desc.server_command),
        ("this project's patches", ", ".join(desc.patched) or "none recorded"),
        ("launcher", "; ".join(desc.launcher)),
        ("environment", " ".join(f"{k}={v}" for k, v in desc.env.items()) or "(none)"),
        # what the servers reported: a limit their version did not report yet is left out, not shown as null
        ("config", json.dumps(desc.config.model_dump(exclude_none=True), sort_keys=True)),
    ] for t in target_names(data) if (desc := data.targets.get(t))}
    return {"machine": machine, "packages": sorted(env.packages.items()), "sysctls": sorted(env.sysctls.items()),
            "targets": targets}
