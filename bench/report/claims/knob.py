"""Claim 0's knob: the thread pool a Django user sizes first (daphne's ASGI_THREADS), from the sweep that runs
one target at the same load with each value (scenario `threads`), or a target that sets it (older results)."""

from __future__ import annotations

from bench.record import Results, Run, searched
from bench.report.appmode import app_targets, capacity_value, relay_of, stages, sweep, threads_label
from bench.report.claims.base import Table, figure
from bench.report.numbers import FmtKind, fmt, ratio
from bench.report.repeats import SIGNIFICANT, differ, fmt_spread, fold
from bench.report.runs import COST, DPS, LOSS, P95, Measure, info, offered_deliveries

SWEPT: tuple[tuple[str, Measure, FmtKind, str], ...] = (("throughput", DPS, "rate", " deliveries/s"),
                                                        ("RTT p95", P95, "ms", " ms"))


def knob_line(data: Results, app: str) -> str | None:
    """A target that turns the thread pool's size (ASGI_THREADS): does the knob move the capacity?"""
    turned = [t for t in app_targets(data) if "ASGI_THREADS" in info(data, t).env and t != app
              and relay_of(data, t) == relay_of(data, app)]
    base, cap = capacity_value(data, app), searched(data, app)
    out = []
    for t in turned:
        v = capacity_value(data, t)
        if v is None or base is None or cap is None:
            continue
        moved = abs(v - base) > cap.tolerance * base
        out.append(f"{t} (ASGI_THREADS={info(data, t).env['ASGI_THREADS']}): capacity {fmt('rate', v)} against "
                   f"{app}'s {fmt('rate', base)} deliveries/s: "
                   + (f"the knob moves it ({ratio(base, v)})" if moved else
                      f"within the search's ±{cap.tolerance:.0%}: the knob does not move it"))
    return "; ".join(out) or None


def by_threads(runs: list[Run]) -> dict[int, list[Run]]:
    """A sweep's runs by ASGI_THREADS value (0: daphne's default), repeats together, in the order they ran."""
    groups: dict[int, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.params.asgi_threads or 0, []).append(r)
    return groups


def sweep_table(data: Results) -> Table | None:
    """The ASGI_THREADS sweep: each value at the same load, with where a stored message's time went."""
    rows = []
    for app in app_targets(data):
        for n, runs in by_threads(sweep(data, app)).items():
            s = stages(runs)
            rows.append([app, threads_label(n), fmt("int", len(runs)), fmt("rate", offered_deliveries(runs[0])),
                         figure(runs, DPS, "rate"), figure(runs, P95, "ms"), figure(runs, LOSS, "pct"),
                         fmt("us", s.wait_us if s else None), fmt("us", s.db_us if s else None),
                         figure(runs, COST, "us")])
    if not rows:
        return None
    return Table("The thread-pool knob (ASGI_THREADS), each value on servers started afresh at the same load "
                 "(median [range] of its runs): a stored message's wait for its worker and its database call, µs "
                 "(wall)", ["target", "ASGI_THREADS", "runs", "offered deliveries/s", "deliveries/s", "RTT p95 ms",
                            "loss %", "wait µs", "database µs", "server µs/delivery"], rows)


def sweep_effect(data: Results, app: str) -> str | None:
    """Whether the thread pool's size moved the app target, as its sweep measured: its throughput or RTT p95
    with each value against the default's, different only beyond the run-to-run spread (the report's rule)."""
    groups = by_threads(sweep(data, app))
    base = groups.get(0)
    if not base or len(groups) < 2:
        return None
    moved = [f"{threads_label(n)} thread{'s' * (n != 1)}: {name} {fmt_spread(kind, a)} against "
             f"{fmt_spread(kind, b)}{unit}" for n, runs in groups.items() if n
             for name, key, kind, unit in SWEPT
             if (a := fold(runs, key)) and (b := fold(base, key)) and differ(a, b) is None]
    waits = {n: s.wait_us if (s := stages(runs)) else None for n, runs in groups.items()}
    said = (f"{' / '.join(fmt('us', w) for w in waits.values())} µs waiting for the database thread per stored "
            f"message with ASGI_THREADS {' / '.join(threads_label(n) for n in waits)}")
    s = stages(sweep(data, app))
    workers = s.workers if s and s.workers is not None else "?"
    single = (f" (one run each: a single run's spread is taken as ±{SIGNIFICANT:.0%})"
              if min(map(len, groups.values())) < 2 else "")
    if moved:
        return f"ASGI_THREADS moved {app} beyond the run-to-run spread{single}: {'; '.join(moved)} ({said})"
    load = fmt("rate", offered_deliveries(base[0]))
    return (f"ASGI_THREADS did not move {app}: at the same load ({load} deliveries/s offered) its throughput and "
            f"RTT p95 with every value are within the run-to-run spread of the default's{single} ({said}); "
            f"Channels runs its database calls on one thread whatever the pool's size (database_sync_to_async "
            f"is thread-sensitive; /stats `workers`: {workers})")
