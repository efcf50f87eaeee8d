"""The benchmark, laid out by the process each part runs in:

    bench/load/     inside Locust (every worker): the chat user, its client, the receiver, the tally
    bench/run/      the orchestrator (`python -m bench`): servers, Redis, sampler, faults, results file
    bench/harness/  the load generator's self-benchmark
    bench/report/   the report: reads only the run record (bench/record.py)

and, at this level, the pure modules both sides share: record.py (the typed run record),
ledger.py (the loss ledger), stats.py (/stats arithmetic), cpu.py (CPU time and steal), message.py (the wire header),
targets.py and scenarios.py (what to run), and locustfile.py (Locust's entry point).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository


def locust_command(*args: str) -> list[str]:
    """Locust on this suite's user (bench/locustfile.py), with `args`: the one way every part starts it."""
    import sys

    return [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), *args]
