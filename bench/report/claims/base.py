"""What every claim answer shares: the Claim record, the five verdicts, which runs test what, and a
figure written with its spread and its cautions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from bench.record import Results, Run
from bench.report.numbers import FmtKind, fmt, fmt_bytes
from bench.report.repeats import fmt_spread, fold
from bench.report.runs import Measure, cautions, info, stack_of
from bench.report.steps import where

Verdict = Literal["holds", "does not hold", "holds for a different reason", "not measured in this run",
                  "not settled by this run"]
HOLDS: Verdict = "holds"
FAILS: Verdict = "does not hold"
OTHER: Verdict = "holds for a different reason"
UNMEASURED: Verdict = "not measured in this run"
UNSETTLED: Verdict = "not settled by this run"


@dataclass
class Table:
    """A small table beside a claim's figures: a caption, the header, the rows (text, escaped by the page)."""

    caption: str
    head: list[str]
    rows: list[list[str]]


@dataclass
class Claim:
    number: str
    claim: str
    experiment: str
    figures: list[str]
    verdict: Verdict
    why: str = ""
    by_stack: dict[str, Verdict] = field(default_factory=dict)  # "FastAPI"/"Channels" -> verdict, when they part
    tables: list[Table] = field(default_factory=list)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> {file: source}, shown verbatim


def picked(data: Results, target: str, test: Callable[[Run], bool]) -> list[Run]:
    return [r for r in data.runs_of(target=target) if test(r)]


def is_idle(run: Run) -> bool:
    return run.params.rate == 0 and not run.params.burst


def is_burst(run: Run) -> bool:
    return run.params.burst > 0


def is_nonreading(run: Run) -> bool:
    return run.params.nonreading > 0


def is_slow(run: Run) -> bool:
    """A member per room that never reads, or reads slowly."""
    return is_nonreading(run) or run.params.slow_readers > 0


def by_step(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by scenario and step (repeats together), in the order they came, under `where`."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(where(r), []).append(r)
    return groups


def is_payload(run: Run) -> bool:
    return run.scenario == "payload" or run.params.size >= 1 << 20


def figure(runs: Iterable[Run], key: Measure, kind: FmtKind) -> str:
    """A figure over repeats: median [min–max], with the cautions of the runs it came from."""
    runs = list(runs)
    return fmt_spread(kind, fold(runs, key)) + cautions(runs)


def count(n: float | None) -> str:
    return fmt("int", n)


def glosses(data: Results, target: str) -> dict[str, str]:
    """What a target's `backlog_full` and `backlog_bytes` buckets are: the channel layer's capacity or the
    per-member queue, and the per-member bound in bytes (CONTRACT.md, "Hostile clients")."""
    config = info(data, target).config
    n, size = config.member_backlog, config.member_backlog_bytes
    what = "the channel layer's per-channel capacity" if stack_of(data, target) == "Channels" else \
        "its bounded per-member queue"
    return {"backlog_full": what + (f" of {count(n)} messages" if n else ""),
            "backlog_bytes": "what the server held for the member" + (f" past {fmt_bytes(size)}" if size else "")}
