"""As browsers connect (CONTRACT.md): per stack, its plain target beside the same server met as browsers meet it
(permessage-deflate offered as Chromium offers it, wss://, both), with what each costs per delivery and per
connection, and each change against the plain target ("not significant" inside the runs' spread)."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from bench.record import Results, Run, Storm, searched
from bench.report.numbers import fmt
from bench.report.repeats import Stat, fmt_spread, fold, held_capacity
from bench.report.runs import COST, CPU_MS_PER_CONNECTION, P95, info, ran
from bench.report.tuned import FIXED, change, fixed_load

INCOMPRESSIBLE = "steady-binary"  # the same load of random bytes
CONNECTIONS = "idle"  # 1,000 members connect, stay quiet, leave: what a connection costs


@dataclass
class BrowserRow:
    target: str
    connects: str  # how its members connect
    agreed: str  # what the server agreed to of what they offered
    capacity: str  # each figure with its change against the plain target, when it is not the plain one
    cost: str
    cost_binary: str
    wire: str  # bytes the members read per delivery, at the fixed load
    p95: str
    rss: str  # server memory per connection: idle, and chatting at the fixed load
    handshake_cpu: str  # server CPU per connection made, held and closed (the idle run)
    storm: str  # the hardened server's storm of handshakes at once (bench/run/hostile.py), when it ran


@dataclass
class Browsers:
    stock: str
    fixed_load: str
    rows: list[BrowserRow]


def connects(data: Results, target: str) -> str:
    about = info(data, target)
    return ("wss://" if about.tls else "ws://") + (", deflate offered" if about.browser else "")


def agreed(runs: list[Run]) -> str:
    """What the servers agreed to, over every member of these runs: "declined", the parameters in short
    ("deflate, 12-bit windows"), or "—" (nothing offered)."""
    seen = {what for run in runs for what in run.negotiated}
    return "; ".join(deflate_words(what) for what in sorted(seen)) if seen else "—"


def deflate_words(agreed: str) -> str:
    if agreed == "none":
        return "declined"
    params = dict(p.strip().partition("=")[::2] for p in agreed.split(";")[1:])
    bits = {params.get("server_max_window_bits", "15"), params.get("client_max_window_bits", "15")}
    flags = [k.replace("_", " ") for k in params if k.endswith("no_context_takeover")]
    return ", ".join(["deflate", f"{'/'.join(sorted(bits))}-bit windows", *flags])


def with_change(text: str, plain: Stat | None, this: Stat | None, first: bool) -> str:
    """"68.3 (+63%)", "240 (n.s.)": a figure and its change against the plain target's."""
    if first or text in ("—", "not held"):
        return text
    moved = change(plain, this)
    return f"{text} ({'n.s.' if moved == 'not significant' else moved})" if moved != "—" else text


def per_connection(runs: list[Run], figure) -> float | None:
    values = [v for r in runs if r.ok and r.params.users and (v := figure(r)) is not None]
    return median(values) if values else None


@dataclass
class ReconnectRow:
    target: str
    policy: str
    members: str
    first: str  # until the first member was back: the new server was up
    back: str  # until every member chatted again
    failures: str  # failed attempts, by cause
    server: str  # the new server's CPU and memory meanwhile
    ledger: str  # every message sent, accounted for


POLICY_WORDS = {"immediate": "immediate retry", "backoff": "backoff, full jitter (0.5–20 s)"}


def reconnect_view(data: Results) -> list[ReconnectRow]:
    """Each reconnect storm: how long until the members were back, what failed on the way, what it cost the new
    server, and the ledger of the messages across the restart."""
    rows = []
    for r in data.reconnects:
        back = f"{r.back_s:g} s" if r.back_s is not None else f"{r.back:,} of {r.members:,} in {r.capped_at_s:g} s"
        rows.append(ReconnectRow(
            r.target, POLICY_WORDS.get(r.policy, r.policy), f"{r.members:,}",
            f"{r.first_back_s:g} s" if r.first_back_s is not None else "—" if r.back else "none back", back,
            ", ".join(f"{n:,}× {cause}" if cause.isdigit() else f"{n:,} {cause}" for cause, n in r.failures.items())
            or "none",
            f"{fmt('pct1', r.server_cpu_s)} s CPU from its start"
            + (f" (peak {fmt('int', r.server_cpu_peak_pct)}% of a core)" if r.server_cpu_peak_pct is not None else "")
            + f", {fmt('size', r.server_rss_peak_bytes)}",
            f"{r.sent:,} sent: {r.echoed:,} relayed, {r.lost_with_server:,} lost with the killed server"
            + (f" ({r.lost_but_stored:,} of them stored first)" if r.lost_but_stored is not None else "")
            + (f", {r.lost_after_back:,} lost on a connection closed later" if r.lost_after_back else "")
            + f", {r.unexplained:,} unexplained"))
    return rows


def storm_words(data: Results, target: str) -> str:
    """"5,000 in 20.2 s": the hardened server's storm (all admitted, or how many, and when the last got in), or
    "—"."""
    found = data.hostile.get(target)
    storm = found.hardened.storm if found and found.hardened else None
    if not isinstance(storm, Storm):
        return "—"
    admitted = storm.answers.get("101", 0)
    return (f"{admitted:,} of {storm.connections:,}" if admitted < storm.connections else f"{admitted:,}") + \
        f" in {fmt('rate', storm.last_admitted_s)} s"


def browsers_view(data: Results) -> list[Browsers]:
    """A table per plain target that has targets meeting it as browsers do in this run: plain first."""
    out = []
    for stock in ran(data):
        variants = [t for t in ran(data) if info(data, t).base == stock]
        if not variants:
            continue
        figures = {t: (held_capacity(data, t), fold(data.runs_of(FIXED, t), COST),
                       fold(data.runs_of(INCOMPRESSIBLE, t), COST)) for t in [stock, *variants]}
        base = figures[stock]
        rows = []
        for t, (cap, cost, cost_binary) in figures.items():
            plain = t == stock
            steady, idle = data.runs_of(FIXED, t), data.runs_of(CONNECTIONS, t)
            p95: Stat | None = fold(steady, P95)
            rows.append(BrowserRow(
                t, connects(data, t), agreed(data.runs_of(target=t)),
                with_change(fmt_spread("rate", cap) if cap else "not held" if searched(data, t) else "—", base[0], cap,
                            plain),
                with_change(fmt_spread("us", cost) if cost else "—", base[1], cost, plain),
                with_change(fmt_spread("us", cost_binary) if cost_binary else "—", base[2], cost_binary, plain),
                # bytes per delivery hardly depend on the load: from any run when the fixed load did not run
                fmt("rate", per_connection(steady or data.runs_of(target=t), lambda r: r.wire_bytes_per_delivery)),
                fmt_spread("ms", p95) if p95 else "—",
                " / ".join(fmt("size", per_connection(runs, lambda r: r.server.rss_per_connection_bytes))
                           for runs in (idle, steady)),
                fmt("ms", per_connection(idle, CPU_MS_PER_CONNECTION)), storm_words(data, t)))
        out.append(Browsers(stock, fixed_load(data, stock), rows))
    return out
