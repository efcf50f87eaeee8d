"""`python -m bench.report reports/<timestamp>/results.json`: write the report again from a run's
results (after a change to the report, or for a run cut short), beside the results file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.record import Results
from bench.report import print_answer, print_summary, write_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    p.add_argument("results", type=Path, help="a results.json written by `python -m bench`")
    args = p.parse_args(argv)
    try:
        data = Results.load(args.results)  # an older format is upgraded (bench/record.py)
    except (OSError, ValueError) as e:
        print(f"bench.report: cannot read {args.results}: {e}", file=sys.stderr)
        return 2
    paths = write_report(data, args.results.parent)
    print_summary(data)
    print_answer(data)
    print(f"bench.report: {paths['html']}\n              {paths['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
