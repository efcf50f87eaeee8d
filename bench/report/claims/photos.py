"""Claim 6: the TCP buffer is only a few hundred KB (rmem_max 212992 on the author's machine), so
photo-sized messages overflow it and are lost."""

from __future__ import annotations

from bench.record import Results, Run
from bench.report.claims.base import FAILS, OTHER, UNMEASURED, UNSETTLED, Claim, cautions, count, figure
from bench.report.loss import ZERO_WINDOW, causes, kernel_text, lossy, sum_map, tcp_counters, total
from bench.report.numbers import codes_text, fmt, ratio
from bench.report.runs import LOSS, info, unique
from bench.report.steps import describe_step

PHOTO_BYTES = 1 << 20  # "an iPhone photo": the claim is settled only by messages this big or bigger
BLOG_RMEM_MAX = 212992


def sysctl_figure(data: Results) -> str | None:
    sysctls = data.environment.sysctls
    if not sysctls:
        return None
    rmem_max = str(sysctls.get("net.core.rmem_max") or "?")
    tcp_rmem = str(sysctls.get("net.ipv4.tcp_rmem") or "").split()
    grows = (f"; autotuning may grow a socket's receive buffer to {fmt('bytes', int(tcp_rmem[2]))}"
             if len(tcp_rmem) == 3 and tcp_rmem[2].isdigit() else "")
    return (f"this machine: net.core.rmem_max = {rmem_max} (the blog's: {BLOG_RMEM_MAX}), net.ipv4.tcp_rmem = "
            f"{' '.join(tcp_rmem) or '?'}{grows}; rmem_max caps only an explicit SO_RCVBUF, which neither "
            "server sets")


def size_of(run: Run) -> int:
    return run.params.size


def limit_of(data: Results, run: Run) -> int | None:
    return info(data, run.target).config.max_message_bytes


def delivered_figure(g: list[Run]) -> str:
    text = (f"{g[0].target} {count(total(g, lambda r: r.ledger.delivered))} of "
            f"{count(total(g, lambda r: r.ledger.expected))}, {figure(g, LOSS, 'pct')}% lost")
    return text + (f" ({causes(g)})" if lossy(g) else "") + cautions(g)


def claim_photo(data: Results) -> Claim:
    runs = data.runs
    big = [r for r in runs if size_of(r) >= PHOTO_BYTES]
    within = [r for r in big if ((limit := limit_of(data, r)) is None or size_of(r) <= limit)]
    figures = [f for f in (sysctl_figure(data),) if f]
    for sc, step in unique((r.scenario, r.step) for r in within):
        groups = [data.runs_of(sc, t, step) for t in unique(r.target for r in within)]
        groups = [g for g in groups if g]
        first = groups[0][0]
        figures.append(f"{describe_step(first) or fmt('bytes', size_of(first))} ({first.params.kind}, "
                       f"{sc}; {ratio(BLOG_RMEM_MAX, size_of(first))} the blog's rmem_max), deliveries: "
                       + "; ".join(delivered_figure(g) for g in groups))
    over = [r for r in big if r not in within]
    for size, kind in unique((size_of(r), r.params.kind) for r in over):
        group = [r for r in over if size_of(r) == size and r.params.kind == kind]
        refused = "; ".join(f"{r.target} {causes(r)}, clients saw close codes "
                            f"{codes_text(r.client_closes)}" for r in group)
        figures.append(f"{fmt('bytes', size)} {kind} messages, over the {fmt('bytes', limit_of(data, group[0]))} "
                       f"limit: refused — {refused}")
    if (text := kernel_text(big)):
        figures.append(text)
    largest = max((size_of(r) for r in within if not lossy([r]) and r.ledger.delivered), default=0)
    closed = sum_map(r.client_closes for r in over)
    if not big:
        verdict, why = UNMEASURED, "No photo-sized message was sent; the `payload` scenario sends them."
    elif not lossy(within):
        zero_windows = tcp_counters(big).get(ZERO_WINDOW, 0)
        waited = ("the kernel advertised zero windows and the sender waited (flow control)" if zero_windows
                  else "no receive buffer ever filled (no zero window was advertised)")
        verdict, why = FAILS, (f"Messages up to {fmt('bytes', largest)} ({ratio(BLOG_RMEM_MAX, largest)} the "
                               f"blog's rmem_max) arrived whole, none lost: {waited}; no receive buffer overflowed"
                               + (f". Over the size limit they were refused visibly, with a close code "
                                  f"({codes_text(closed)}), not lost silently." if over else "."))
    elif any(r.ledger.unexplained for r in lossy(within)):
        verdict, why = UNSETTLED, "Some photo-sized losses have no counted cause."
    else:
        verdict, why = OTHER, ("Photo-sized messages were lost, but by the application's limits (a close code "
                               "or a bounded backlog, named above), not by a TCP buffer overflowing.")
    sizes = ", ".join(fmt("bytes", s) for s in sorted({size_of(r) for r in big})) or "none"
    return Claim("6", "The buffer is only hundreds of KB to a few MB (rmem_max = 212992 on the author's "
                 "machine): sending iPhone photos often enough overflows it and loses messages.",
                 f"Messages of photo size and past the servers' limit ({sizes}; the `payload` scenario), "
                 "sent without waiting for echoes; what was delivered per size, the "
                 "close codes, and the kernel's zero-window and drop counters, beside this machine's TCP buffer "
                 "sysctls.", figures, verdict, why)
