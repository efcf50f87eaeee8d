"""The bench's own pipeline (`python -m bench`) run by the tests on a tiny scenario file, several
targets at once. Each run is a few members idling between sends, so two share this machine's two
cores without either one waiting on the other, and a module takes the time of its slowest target
rather than the sum. The tests check correctness (the ledger, the record), never speed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bench import ROOT
from bench.record import Results

TIMEOUT_S = 300


class BenchRuns:
    """`python -m bench --targets T --scenario-file ...` started for every target at once."""

    def __init__(self, targets: list[str], scenarios: str, folder: Path):
        self.runs: dict[str, tuple[subprocess.Popen, Path]] = {}
        for target in targets:
            out = folder / target
            out.mkdir(parents=True)
            (out / "tiny.toml").write_text(scenarios)
            with open(out / "bench.log", "wb") as log:
                self.runs[target] = (subprocess.Popen(
                    [sys.executable, "-m", "bench", "--no-harness", "--targets", target,
                     "--scenario-file", str(out / "tiny.toml"), "--out", str(out)],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), out)

    def results(self, target: str) -> Results:
        """Its record, once its run has finished; its output if it failed."""
        process, out = self.runs[target]
        try:
            process.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
        output = (out / "bench.log").read_text(errors="replace")
        assert process.returncode == 0, output[-6000:]
        return Results.load(out / "results.json")

    def stop(self) -> None:
        """Runs still going are interrupted as Ctrl-C would: the runner stops its servers and Locust."""
        for process, _ in self.runs.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, _ in self.runs.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
