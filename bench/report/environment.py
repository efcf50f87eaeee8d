"""What the figures were measured on and how to read them: the environment (machine, TCP buffer
sysctls, packages, the exact server commands, the load generator's own cost) and the method notes."""

from __future__ import annotations

import json
from html import escape

from bench.report.markup import NEUTRAL, kv_table, swatch
from bench.report.numbers import fmt, plural, ratio
from bench.report.repeats import SIGNIFICANT, fold
from bench.report.runs import NOISY_PCT, get, num, runs_of, scenario_names

CLIENT_COST = ("client", "cpu_us_per_delivery")


def harness_text(h: object) -> str:
    if not isinstance(h, dict):
        return "not measured in this run"
    per = h.get("deliveries_per_core_s") or {}
    spread = (f"{fmt('rate', per.get('median'))} deliveries per client core-second (median; "
              f"{fmt('rate', per.get('min'))}–{fmt('rate', per.get('max'))})") if per else ""
    steal = f", steal {fmt('pct1', h.get('steal_pct'))}%" if h.get("steal_pct") is not None else ""
    return "; ".join(x for x in (str(h.get("summary") or ""), spread + steal) if x)


def client_cost_text(data: dict) -> str:
    """The load generator's measured cost in the real runs, as the harness states its best case: deliveries
    per client CPU-second (1e6 / the median of the runs' client µs per delivery)."""
    runs = [r for r in data.get("runs") or [] if num(r, CLIENT_COST)]
    s = fold(runs, CLIENT_COST, every=True)
    if s is None:
        return "not measured in this run"
    per = "; ".join(f"{sc} {fmt('rate', 1e6 / st.median)}" for sc in scenario_names(data)
                    if (st := fold(runs_of({"runs": runs}, sc), CLIENT_COST, every=True)))
    best = get(data, "environment", "harness", "deliveries_per_core_s", "median")
    versus = (f" — the harness's best case is {ratio(1e6 / s.median, best)} that"
              if isinstance(best, int | float) else "")
    return (f"{fmt('rate', 1e6 / s.median)} deliveries per client CPU-second (median over {plural(s.n, 'run')}: "
            f"{fmt('us', s.median)} µs of client CPU per delivery, {fmt('us', s.lo)}–{fmt('us', s.hi)} µs){versus}; "
            f"by scenario: {per}")


def environment_section(data: dict, col: dict) -> str:
    env = data.get("environment") or {}
    plan = env.get("cpu_plan") or {}
    mem = env.get("memory_bytes")
    out = [kv_table([
        ("CPU model", env.get("cpu_model")), ("cores", env.get("cores")),
        ("usable CPUs", ", ".join(map(str, env.get("usable_cpus") or [])) or None),
        ("memory", f"{mem / 2**30:.1f} GiB" if isinstance(mem, int | float) else None),
        ("kernel", env.get("kernel")), ("Python", env.get("python")), ("fd limit", env.get("fd_limit")),
        ("CPU pinning", (f"servers on CPUs {plan.get('server_cpus')}, load generator on "
                         f"{plan.get('client_cpus')} — {plan.get('note', '')}") if plan else None),
        ("load generator, best case (harness self-benchmark)", harness_text(env.get("harness"))),
        ("load generator, measured in these runs", client_cost_text(data)),
        *([("Redis", note)] if (note := get(env, "redis", "note")) else []),
        ("command", " ".join(map(str, data.get("argv") or [])) or None),
    ])]
    out.append('<div class="cols"><div><h3>Package versions</h3>'
               + kv_table(sorted((env.get("packages") or {}).items()))
               + "</div><div><h3>TCP buffer sysctls</h3>"
               + kv_table(sorted((env.get("sysctls") or {}).items())) + "</div></div><h3>Targets</h3>")
    for t, desc in (data.get("targets") or {}).items():
        desc = desc if isinstance(desc, dict) else {}
        out.append(f"<h4>{swatch(col.get(t, NEUTRAL))}{escape(str(t))}</h4>" + kv_table([
            ("about", desc.get("about")), ("server", desc.get("server")),
            ("fan-out / layer", f"{desc.get('fanout')} / {desc.get('layer')}"),
            ("processes", desc.get("processes")), ("server command", desc.get("server_command")),
            ("launcher", "; ".join(desc.get("launcher") or [])),
            ("environment", " ".join(f"{k}={v}" for k, v in (desc.get("env") or {}).items()) or "(none)"),
            ("config", json.dumps(desc.get("config"), sort_keys=True)),
        ]))
    return "".join(out)


METHOD = [
    ("The ledger.",
     "Expected deliveries are every message sent (warm-up and drain included) times the members of its room "
     "connected when it was sent, the sender included. Each is settled into exactly one bucket: delivered; "
     "dropped by the server (the server's <code>/stats</code> drop counters, by cause); lost with a closed "
     "connection (by close code, and whether the sender's or the recipient's connection closed); in flight "
     "(still on its way when the rooms settled: late, not lost); or unexplained, shown in red. Loss % counts "
     "what will never arrive: expected − delivered − in flight."),
    ("Members who come and go.",
     "A member is owed what was sent between its handshake (both servers join it to its room before they "
     "answer it) and the moment it decided to leave. A leaving member (the <code>churn</code> scenario) first "
     "waits, up to the drain, for what it is owed; what it leaves without is lost with its departure, a "
     "bucket of its own. A slow reader reads a fixed number of bytes per second; a non-reading member never "
     "reads. Neither sends, and what they are owed is reported apart from what the reading members are owed."),
    ("Client-bound.",
     "A run whose busiest load-generator process was saturated during the measurement window (the runner's "
     "<code>client_bound</code> flag) is labelled client-bound, with that process's mean CPU: its throughput "
     "and latency are the load generator's limit, not the server's. Server CPU µs per delivery stays valid "
     "either way, which is why it is the headline cost figure."),
    ("Not significant.",
     "Figures are the median over repeats with the [min–max] range. A difference between two targets is "
     "labelled not significant when their ranges overlap (both have several repeats) or, when either has a "
     f"single run, when it is within {SIGNIFICANT:.0%} of the larger value; each label says which rule "
     "applied. Other cells show how far they are from the best target of the row (in bold)."),
    ("Capacity at the SLO.",
     "The largest ramp step before the first step where any run failed, lost messages, or had an RTT p95 "
     "over the scenario's SLO (the rule the runner stops a ramp by). Failed runs keep what was measured; "
     "their figures are used only when every repeat of a step failed, and their failure text is shown."),
    ("Noisy.",
     f"A run whose servers' CPUs were not theirs alone during the window (mean CPU steal, or other processes "
     f"on the servers' CPUs, at {NOISY_PCT:.0f}% or more: the runner's <code>noise</code> field) is labelled "
     "noisy, like client-bound: its latency and throughput may be the neighbours', not the server's."),
]


def method_section(data: dict) -> str:
    notes = "".join(f"<p><b>{title}</b> {text}</p>" for title, text in METHOD)
    return (notes + "<p><b>The data.</b> Every figure comes from <code>results.json</code> beside this file "
            f"(format version {escape(str(data.get('format_version')))}), which also holds the per-run "
            "samples and Locust commands.</p>")

