"""Pass/fail gates on a run, the way k6 thresholds or Gatling assertions gate a change in CI.

    [scenario.]metric<op>limit      e.g.  loss>0.5   steady.p95>250   cost>60   capacity<4000   regression>10

A rule names what FAILS the gate. Metrics: `loss` (%), `p95` (RTT ms), `cost` (server µs per
delivery), `dps` (deliveries/s) apply to every target and step of the scenario named (default:
`steady`); `capacity` (deliveries/s at the SLO) to every scenario that measures one (or the one named);
`regression` (%) to every figure a baseline also holds: one that got worse by more than the limit,
beyond the runs' spread, fails.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from bench.compare.figures import METRICS, changes, figures, number
from bench.record import Results

DEFAULT_SCENARIO = "steady"
RULE = re.compile(r"^(?:(?P<scope>[\w-]+)\.)?(?P<metric>\w+)\s*(?P<op>[<>])\s*(?P<limit>-?[\d.]+)$")
OPS = {">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Threshold:
    text: str
    scope: str | None
    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = RULE.match(text.strip())
        known = [*METRICS, "capacity", "regression"]
        if not m or m["metric"] not in known:
            raise ValueError(f"threshold {text!r}: expected [scenario.]metric<op>limit with a metric of "
                             f"{', '.join(known)} and < or >, e.g. loss>0.5 or steady.p95>250")
        if m["metric"] == "regression" and (m["op"] != ">" or m["scope"]):
            raise ValueError(f"threshold {text!r}: write regression as regression>PERCENT")
        return cls(text.strip(), m["scope"], m["metric"], m["op"], float(m["limit"]))


def check(rules: list[Threshold], new: Results, baseline: Results | None = None) -> list[str]:
    """Every threshold that failed, each saying which figure failed it; [] when the run passes."""
    failed = []
    found = figures(new)
    for rule in rules:
        if rule.metric == "regression":
            if baseline is None:
                failed.append(f"{rule.text}: needs a baseline results file to compare with")
                continue
            for c in changes(baseline, new):
                if c.worse and not c.not_significant and c.pct is not None and abs(c.pct) > rule.limit:
                    f = c.new
                    failed.append(f"{rule.text}: {f.target} {f.scenario}{' ' + f.step if f.step else ''} "
                                  f"{f.metric.title} {number(c.old.stat.median)} → {number(f.stat.median)} "
                                  f"{f.metric.unit} ({c.pct:+.1f}%, beyond the runs' spread)")
            continue
        matched = [f for f in found.values() if f.metric.name == rule.metric and _in_scope(rule, f.scenario)]
        if not matched:
            failed.append(f"{rule.text}: no run measured it (scenario {rule.scope or _default_scope(rule)})")
        for f in matched:
            if OPS[rule.op](f.stat.median, rule.limit):
                failed.append(f"{rule.text}: {f.target} {f.scenario}{' ' + f.step if f.step else ''} "
                              f"{f.metric.title} is {number(f.stat.median)} {f.metric.unit}")
    return failed


def _default_scope(rule: Threshold) -> str:
    return "with an SLO" if rule.metric == "capacity" else DEFAULT_SCENARIO


def _in_scope(rule: Threshold, scenario: str) -> bool:
    if rule.scope:
        return scenario == rule.scope
    if rule.metric == "capacity":
        return True  # figures() gives a capacity only to scenarios that measure one (record.measures_capacity)
    return scenario == DEFAULT_SCENARIO
