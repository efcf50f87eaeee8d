"""The bench's own pipeline (`python -m bench`) run by the tests on a tiny scenario file, several
targets at once. Each run is a few members idling between sends, so two share this machine's two
cores without either one waiting on the other, and a module takes the time of its slowest target
rather than the sum. The tests check correctness (the ledger, the record), never speed.

A module registers its suite when it is collected (`suite`); the first module to ask for its runs
(`TinyBenches.of`, the session's `tiny_benches` fixture) starts every registered suite at once, so the
modules (tests/test_scenario_app.py, tests/test_scenario_kinds.py, next to each other in pytest's
order: nothing else runs beside them) take the time of the slowest suite rather than the sum."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import ROOT
from bench.record import Results

TIMEOUT_S = 300


class BenchRuns:
    """`python -m bench --targets T --scenario-file ...` for every target: all started at once, or, with
    `together=False` (targets that would share one outside database), each when its results are asked."""

    def __init__(self, targets: list[str], scenarios: str, folder: Path, together: bool = True,
                 args: tuple[str, ...] = ()):
        self.scenarios, self.folder, self.args = scenarios, folder, args
        self.runs: dict[str, tuple[subprocess.Popen, Path]] = {}
        for target in targets if together else ():
            self.start(target)

    def start(self, target: str) -> None:
        out = self.folder / target
        out.mkdir(parents=True)
        (out / "tiny.toml").write_text(self.scenarios)
        with open(out / "bench.log", "wb") as log:
            self.runs[target] = (subprocess.Popen(
                [sys.executable, "-m", "bench", "--no-harness", "--targets", target,
                 "--scenario-file", str(out / "tiny.toml"), "--out", str(out), *self.args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), out)

    def results(self, target: str) -> Results:
        """Its record, once its run has finished; its output if it failed."""
        if target not in self.runs:
            self.start(target)
        process, out = self.runs[target]
        try:
            process.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            interrupt([process])
        output = (out / "bench.log").read_text(errors="replace")
        assert process.returncode == 0, output[-6000:]
        return Results.load(out / "results.json")

    def stop(self) -> None:
        interrupt([process for process, _ in self.runs.values()])


@dataclass(frozen=True)
class Suite:
    """A tiny scenario file and the targets that run it (BenchRuns' arguments), under a name of its own."""

    name: str
    targets: tuple[str, ...]
    scenarios: str
    together: bool = True
    args: tuple[str, ...] = ()  # more of `python -m bench`'s arguments


SUITES: dict[str, Suite] = {}


def suite(name: str, targets: list[str], scenarios: str, together: bool = True, args: tuple[str, ...] = ()) -> Suite:
    """Register a module's suite, to start with the others (TinyBenches.of)."""
    SUITES[name] = found = Suite(name, tuple(targets), scenarios, together, args)
    return found


@dataclass
class TinyBenches:
    """Every registered suite's runs, all started when the first is asked for."""

    folder: Path
    started: dict[str, BenchRuns] = field(default_factory=dict)

    def of(self, wanted: Suite) -> BenchRuns:
        if not self.started:
            for s in SUITES.values():
                self.started[s.name] = BenchRuns(list(s.targets), s.scenarios, self.folder / s.name, s.together,
                                                 s.args)
        return self.started[wanted.name]

    def stop(self) -> None:
        for runs in self.started.values():
            runs.stop()


def interrupt(processes: list[subprocess.Popen]) -> None:
    """Runs still going are interrupted as Ctrl-C would: the runner stops its servers and Locust."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
