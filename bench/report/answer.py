"""The answer the report opens with: the plain words (bench.report.plain), the headline table's rows
(bench.report.headline), and once, which targets run on this project's fixes to their stack."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.record import Results
from bench.report.headline import Row, row
from bench.report.plain import Question, plain_answer
from bench.report.runs import ran


@dataclass
class Answer:
    rows: list[Row]
    questions: list[Question] = field(default_factory=list)
    patched: dict[str, list[str]] = field(default_factory=dict)  # a fixed module -> the targets running on it


def answer(data: Results) -> Answer:
    rows = [row(data, t) for t in ran(data)]
    patched: dict[str, list[str]] = {}
    for r in rows:
        for module in r.patched:
            patched.setdefault(module, []).append(r.target)
    return Answer(rows, plain_answer(data, rows), patched)
