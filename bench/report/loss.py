"""Where undelivered messages went: the ledger's buckets summed over runs, and the kernel's TCP
counters that tell flow control (zero windows) from TCP itself dropping data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bench.record import Ledger, Results, Run
from bench.report.numbers import fmt, plural
from bench.report.runs import Measure, scenario_names, unique

# kernel counters (bench/run/tcpstate.py) that would show TCP itself dropping data
KERNEL_DROPS = ("TCPZeroWindowDrop", "TCPRcvQDrop", "TCPBacklogDrop", "RcvPruned", "TCPAbortOnMemory")
ZERO_WINDOW = "TCPToZeroWindowAdv"
ZERO_WINDOWS = (ZERO_WINDOW, "TCPWantZeroWindowAdv")  # advertised, and wanted but not yet possible


def buckets(ledger: Ledger) -> list[tuple[str, str, int]]:
    """Every non-delivered bucket with a count: (group, name, count)."""
    out = [("dropped by server", k, n) for k, n in sorted(ledger.dropped_by_server.items()) if n]
    out += [("lost with close", x.label, x.count) for x in sorted(ledger.lost_with_close, key=lambda x: x.label)
            if x.count]
    out += [("in flight", "", ledger.in_flight)] if ledger.in_flight else []
    out += [("unexplained", "", ledger.unexplained)] if ledger.unexplained else []
    return out


def causes(runs: Run | Iterable[Run], glosses: dict[str, str] | None = None) -> str:
    """Where the lost deliveries of one or several runs went, by bucket (in flight is late, not lost);
    `glosses` say what a bucket is ("backlog_full" -> "the channel layer's capacity")."""
    summed: dict[tuple[str, str], int] = {}
    for r in [runs] if isinstance(runs, Run) else runs:
        for group, name, n in buckets(r.ledger):
            if group != "in flight":
                summed[(group, name)] = summed.get((group, name), 0) + n
    gloss = lambda name: f" ({glosses[name]})" if glosses and name in glosses else ""  # noqa: E731
    return "; ".join(f"{g}: {n} {fmt('int', v)}{gloss(n)}" if n else f"{g} {fmt('int', v)}"
                     for (g, n), v in summed.items()) or "no counted cause"


def total(runs: Iterable[Run], key: Measure) -> int:
    return int(sum(key(r) or 0 for r in runs))


def sum_map(maps: Iterable[Mapping]) -> dict:
    """Counters (by cause, by close code) added up over runs, the zeros left out."""
    out: dict = {}
    for m in maps:
        for k, n in m.items():
            if n:
                out[k] = out.get(k, 0) + n
    return out


def lossy(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r.ledger.loss_pct > 0]


def with_kernel(runs: Iterable[Run]) -> list[Run]:
    """The runs that recorded the kernel's TCP counters."""
    return [r for r in runs if r.evidence.tcp_counters]


def tcp_counters(runs: Iterable[Run]) -> dict[str, int]:
    return sum_map(r.evidence.tcp_counters for r in runs)


def kernel_drops(runs: Iterable[Run]) -> int:
    tcp = tcp_counters(runs)
    return sum(tcp.get(k, 0) for k in KERNEL_DROPS)


def kernel_text(runs: list[Run]) -> str | None:
    """The kernel's TCP counters and the peak socket queues over some runs: zero windows and full queues are
    flow control holding a sender; receive-queue drops would be TCP itself losing data."""
    runs = with_kernel(runs)
    if not runs:
        return None
    tcp = tcp_counters(runs)
    zero = " + ".join(f"{k} {fmt('int', tcp.get(k, 0))}" for k in ZERO_WINDOWS)
    drops = ", ".join(f"{k} {fmt('int', tcp.get(k, 0))}" for k in KERNEL_DROPS)
    peak = lambda k: fmt("size", max(getattr(r.socket_queues_peak, k) for r in runs))  # noqa: E731
    scenarios = ", ".join(unique(r.scenario for r in runs))
    return (f"kernel over the {plural(len(runs), 'run')} of {scenarios} (machine-wide counters): zero-window "
            f"advertisements {zero}; peak queues: server Send-Q {peak('server_send_q')}, server Recv-Q "
            f"{peak('server_recv_q')}, clients' Recv-Q {peak('client_recv_q')}; receive-queue drops: {drops}")


def first_losses(data: Results, target: str) -> list[tuple[str, list[Run]]]:
    """Per scenario, the runs of the first step (in the order they ran) where `target` lost messages."""
    out = []
    for sc in scenario_names(data):
        groups = [data.runs_of(sc, target, step) for step in data.steps_of(sc, target)]
        if found := next((g for g in groups if lossy(g)), None):
            out.append((sc, found))
    return out
