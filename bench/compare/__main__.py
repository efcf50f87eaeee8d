"""`python -m bench.compare OLD/results.json NEW/results.json [--fail-on RULE ...] [--out DIR]`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.compare.figures import Change, changes, number
from bench.compare.thresholds import Threshold, check
from bench.record import Results


def table(found: list[Change]) -> str:
    """Markdown: one table per scenario, a row per target, step and figure."""
    out = []
    for scenario in dict.fromkeys(c.new.scenario for c in found):
        out += [f"### {scenario}", "", "| target | step | figure | old | new | change | verdict |",
                "| --- | --- | --- | ---: | ---: | ---: | --- |"]
        for c in (c for c in found if c.new.scenario == scenario):
            f = c.new
            pct = "" if c.pct is None else f"{c.pct:+.1f}%"
            out.append(f"| {f.target} | {f.step or '–'} | {f.metric.title} ({f.metric.unit}) | {_stat(c.old)} | "
                       f"{_stat(f)} | {pct} | {c.verdict} |")
        out.append("")
    return "\n".join(out) or "The two results have no figure in common (no target ran the same scenario step).\n"


def _stat(fig) -> str:
    s = fig.stat
    return number(s.median) + (f" [{number(s.lo)}–{number(s.hi)}]" if s.n > 1 else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    p.add_argument("old", type=Path, help="the baseline results.json")
    p.add_argument("new", type=Path, help="the results.json to judge")
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help="a threshold that fails the comparison, e.g. regression>10, loss>0.5, steady.p95>250 "
                        "(bench/compare/thresholds.py); repeatable")
    p.add_argument("--out", type=Path, default=None, help="where to write compare.md (default: NEW's folder)")
    args = p.parse_args(argv)
    try:
        rules = [Threshold.parse(t) for t in args.fail_on]
        old, new = Results.load(args.old), Results.load(args.new)
    except (OSError, ValueError) as e:
        print(f"bench.compare: {e}", file=sys.stderr)
        return 2
    text = f"# {args.old} → {args.new}\n\n" + table(changes(old, new))
    failed = check(rules, new, baseline=old)
    if rules:
        verdicts = [f"- FAILED {f}" for f in failed] or [f"all passed: {', '.join(r.text for r in rules)}"]
        text += "\n## Thresholds\n\n" + "\n".join(verdicts) + "\n"
    out = (args.out or args.new.parent) / "compare.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"bench.compare: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
