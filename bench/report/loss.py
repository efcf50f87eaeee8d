"""Where undelivered messages went: the ledger's buckets summed over runs, and the kernel's TCP
counters that tell flow control (zero windows) from TCP itself dropping data."""

from __future__ import annotations

from collections.abc import Iterable

from bench.report.numbers import fmt, plural
from bench.report.runs import LOSS, get, num, runs_of, scenario_names, steps_of, unique

# kernel counters (bench/run/tcpstate.py) that would show TCP itself dropping data
KERNEL_DROPS = ("TCPZeroWindowDrop", "TCPRcvQDrop", "TCPBacklogDrop", "RcvPruned", "TCPAbortOnMemory")
ZERO_WINDOW = "TCPToZeroWindowAdv"
ZERO_WINDOWS = (ZERO_WINDOW, "TCPWantZeroWindowAdv")  # advertised, and wanted but not yet possible


def buckets(ledger: dict | None) -> list[tuple[str, str, int]]:
    """Every non-delivered bucket with a count: (group, name, count)."""
    ledger = ledger or {}
    out = [("dropped by server", k, n) for k, n in sorted((ledger.get("dropped_by_server") or {}).items()) if n]
    out += [("lost with close", k, n) for k, n in sorted((ledger.get("lost_with_close") or {}).items()) if n]
    for key in ("in_flight", "unexplained"):
        if ledger.get(key):
            out.append((key.replace("_", " "), "", ledger[key]))
    return out


def causes(runs: dict | Iterable[dict], glosses: dict[str, str] | None = None) -> str:
    """Where the lost deliveries of one or several runs went, by bucket (in flight is late, not lost);
    `glosses` say what a bucket is ("backlog_full" -> "the channel layer's capacity")."""
    summed: dict[tuple[str, str], int] = {}
    for r in [runs] if isinstance(runs, dict) else runs:
        for group, name, n in buckets(r.get("ledger")):
            if group != "in flight":
                summed[(group, name)] = summed.get((group, name), 0) + n
    gloss = lambda name: f" ({glosses[name]})" if glosses and name in glosses else ""  # noqa: E731
    return "; ".join(f"{g}: {n} {fmt('int', v)}{gloss(n)}" if n else f"{g} {fmt('int', v)}"
                     for (g, n), v in summed.items()) or "no counted cause"


def total(runs: Iterable[dict], *path: str) -> int:
    return int(sum(num(r, path) or 0 for r in runs))


def sum_map(runs: Iterable[dict], *path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        for k, n in (get(r, *path) or {}).items():
            if isinstance(n, int | float) and n:
                out[k] = out.get(k, 0) + int(n)
    return out


def lossy(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if (num(r, LOSS) or 0) > 0]


def with_kernel(runs: Iterable[dict]) -> list[dict]:
    return [r for r in runs if isinstance(get(r, "evidence", "tcp_counters"), dict)]


def kernel_drops(runs: Iterable[dict]) -> int:
    tcp = sum_map(runs, "evidence", "tcp_counters")
    return sum(tcp.get(k, 0) for k in KERNEL_DROPS)


def kernel_text(runs: list[dict]) -> str | None:
    """The kernel's TCP counters and the peak socket queues over some runs: zero windows and full queues are
    flow control holding a sender; receive-queue drops would be TCP itself losing data."""
    runs = with_kernel(runs)
    if not runs:
        return None
    tcp = sum_map(runs, "evidence", "tcp_counters")
    zero = " + ".join(f"{k} {fmt('int', tcp.get(k, 0))}" for k in ZERO_WINDOWS)
    drops = ", ".join(f"{k} {fmt('int', tcp.get(k, 0))}" for k in KERNEL_DROPS)
    peak = lambda k: fmt("size", max(num(r, ("socket_queues_peak", k)) or 0 for r in runs))  # noqa: E731
    scenarios = ", ".join(unique(str(r.get("scenario")) for r in runs))
    return (f"kernel over the {plural(len(runs), 'run')} of {scenarios} (machine-wide counters): zero-window "
            f"advertisements {zero}; peak queues: server Send-Q {peak('server_send_q')}, server Recv-Q "
            f"{peak('server_recv_q')}, clients' Recv-Q {peak('client_recv_q')}; receive-queue drops: {drops}")


def first_losses(data: dict, target: str) -> list[tuple[str, list[dict]]]:
    """Per scenario, the runs of the first step (in the order they ran) where `target` lost messages."""
    out = []
    for sc in scenario_names(data):
        groups = [runs_of(data, sc, target, step) for step in steps_of(data, sc, target)]
        if found := next((g for g in groups if lossy(g)), None):
            out.append((sc, found))
    return out
