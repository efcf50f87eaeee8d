"""`python -m bench.compare` on real results files, and the thresholds that gate a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.compare.__main__ import main
from bench.compare.figures import changes, figures
from bench.compare.thresholds import Threshold, check
from bench.record import Results

DATA = Path(__file__).parent / "data"
OLD = DATA / "sample_results.json"  # format 1: read through the upgrade
NEW = DATA / "results_v2.json"  # a real `make bench-quick` run in the current format


@pytest.fixture(scope="module")
def old() -> Results:
    return Results.load(OLD)


@pytest.fixture(scope="module")
def new() -> Results:
    return Results.load(NEW)


def worsened(data: Results, target: str, scenario: str, factor: float) -> Results:
    """A copy whose `target` delivers `factor` times as much and costs 1/factor as much in `scenario`."""
    copy = data.model_copy(deep=True)
    for run in copy.runs_of(scenario, target):
        run.deliveries_per_s *= factor
        if run.server.cpu_us_per_delivery:
            run.server.cpu_us_per_delivery /= factor
    return copy


def test_two_real_results_files_compare_side_by_side(tmp_path, capsys):
    assert main([str(OLD), str(NEW), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "compare.md").read_text()
    assert text == capsys.readouterr().out.split("bench.compare: ")[0].rstrip("\n") + "\n"
    for target in ("django", "fastapi", "fastapi-seed"):
        assert f"| {target} | " in text
    assert "### ramp" in text and "capacity at the SLO" in text
    # every row ends in a verdict, and it is the one the figures give
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line
            and not line.startswith("| target")]
    verdicts = {c.verdict for c in changes(Results.load(OLD), Results.load(NEW))}
    assert rows and {row[-1].rstrip(" |") for row in rows} == verdicts
    assert all(v.split(";")[0] in ("same", "better", "worse") or v.startswith("not significant") for v in verdicts)


def test_a_run_compared_with_itself_changes_nothing(new):
    found = changes(new, new)
    assert found and {c.verdict for c in found} == {"same"}
    assert not check([Threshold.parse("regression>0")], new, baseline=new)


def test_a_synthetic_regression_fails_the_gate_with_a_non_zero_exit(new, tmp_path, capsys):
    slower = worsened(new, "fastapi", "ramp", 0.5)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(slower.to_json()))
    assert main([str(NEW), str(path), "--fail-on", "regression>10", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED regression>10: fastapi ramp" in out and "deliveries/s" in out and "(-50.0%" in out
    assert "FAILED regression>10: django" not in out  # what did not change does not fail


def test_a_difference_within_the_spread_is_not_a_regression(new):
    # ±5% on single runs is inside report.repeats' 10% rule: not significant, so no gate fails
    nudged = worsened(new, "fastapi", "ramp", 0.95)
    assert not check([Threshold.parse("regression>1")], nudged, baseline=new)
    assert any(c.verdict.startswith("not significant") for c in changes(new, nudged))


def test_absolute_thresholds_name_the_figure_that_failed(new):
    cost = max(f.stat.median for k, f in figures(new).items() if k[1] == "ramp" and k[3] == "cost")
    assert check([Threshold.parse(f"ramp.cost>{cost * 2}")], new) == []
    failed = check([Threshold.parse(f"ramp.cost>{cost / 2}")], new)
    assert failed and all(f.startswith(f"ramp.cost>{cost / 2}: ") for f in failed)
    capacity = check([Threshold.parse("capacity<1e9".replace("1e9", "1000000000"))], new)
    assert len(capacity) == len({r.target for r in new.runs if r.scenario == "ramp"}), capacity
    assert check([Threshold.parse("steady.loss>0")], new) == ["steady.loss>0: no run measured it (scenario steady)"]


@pytest.mark.parametrize("text", ["loss", "loss>", "speed>3", "ramp.regression>5", "regression<5", "p95=3"])
def test_a_malformed_threshold_is_refused_with_the_syntax(text):
    with pytest.raises(ValueError, match=r"\[scenario\.\]metric<op>limit|regression>PERCENT"):
        Threshold.parse(text)


def test_the_bench_refuses_a_bad_threshold_before_it_runs():
    with pytest.raises(SystemExit, match="threshold 'loss=3'"):
        from bench.run.cli import main as bench_main

        bench_main(["--fail-on", "loss=3", "--targets", "fastapi", "--no-harness"])


def test_a_searched_capacity_is_compared_by_its_confirmed_pass(new):
    from bench.record import Capacity

    def with_capacity(passed: float) -> Results:
        copy = new.model_copy(deep=True)
        copy.capacities = [Capacity(target="fastapi", scenario="ramp", users=200, room_size=10, slo_p95_ms=250,
                                    passed=passed, failed=passed * 1.08, converged=True)]
        return copy

    assert figures(with_capacity(8.0))["fastapi", "ramp", "", "capacity"].stat.median == 8.0 * 200 * 10
    failed = check([Threshold.parse("regression>10")], with_capacity(4.0), baseline=with_capacity(8.0))
    assert any("fastapi ramp capacity at the SLO" in f and "(-50.0%" in f for f in failed), failed


def test_the_output_folder_is_made_when_it_does_not_exist(tmp_path):
    out = tmp_path / "not" / "yet"
    assert main([str(OLD), str(NEW), "--out", str(out)]) == 0
    assert (out / "compare.md").exists()


def slower_machine(data: Results, target: str, capacity: float, cost: float) -> Results:
    """A copy whose `target` held `capacity` times its searched capacity, at `cost` times the µs per delivery."""
    copy = data.model_copy(deep=True)
    found = next(c for c in copy.capacities if c.target == target)
    for run in copy.runs_of(found.scenario, target):
        if run.params.rate == found.passed and run.server.cpu_us_per_delivery:
            run.server.cpu_us_per_delivery *= cost
            run.params.rate *= capacity
    for probe in found.probes:
        probe.rate *= capacity if probe.rate == found.passed else 1
    found.passed *= capacity
    return copy


def test_a_capacity_that_moved_says_whether_its_cost_per_delivery_moved_with_it():
    """Two benches disagree on a capacity: when the server CPU per delivery at the edge moved by as much, the
    servers' cores were as busy at both edges and the machine, not the stack, moved; when it did not, the
    search held a different share of them. A capacity that was not held says so."""
    base = Results.load(DATA / "results_full_v2.json")
    by = lambda found: {(c.new.target, c.new.metric.name): c for c in found}  # noqa: E731
    base.environment.code = "abc1234"  # both benches measured one commit
    machine = by(changes(base, slower_machine(base, "django", 0.8, 1.25)))[("django", "capacity")]
    assert machine.verdict.startswith("worse") and "the machine's speed moved, not the stack" in machine.verdict
    newer = slower_machine(base, "django", 0.8, 1.25)
    newer.environment.code = "def5678"
    code = by(changes(base, newer))[("django", "capacity")]
    assert "the code changed (abc1234 → def5678), or the machine's speed moved" in code.verdict
    search = by(changes(base, slower_machine(base, "django", 0.8, 1.0)))[("django", "capacity")]
    assert "the search held a different load" in search.verdict and "×0.80" in search.verdict
    both = by(changes(base, slower_machine(base, "django", 0.7, 1.28)))[("django", "capacity")]  # ×0.90 the share
    assert "(×1.28: the machine's speed moved, not the stack), and a share of the servers' cores ×0.90 the old: " \
        "the search held a different load too" in both.verdict
    lower = base.model_copy(deep=True)
    for run in lower.runs_of("ramp", "django"):
        run.params.cpu_ceiling_pct = 75.0
    assert "searched with the servers' CPU under 85% → 75% of their cores" in \
        by(changes(base, lower))[("django", "capacity")].verdict
    assert "old not held; new not held" in machine.verdict  # format 2: never held
    slow = slower_machine(base, "django", 0.5, 2.0)
    for run in slow.runs_of("ramp", "django"):
        run.noise.noisy, run.noise.server_cpu_speed_pct = True, 54.0
    flagged = by(changes(base, slow))[("django", "capacity")]
    runs = len(slow.runs_of("ramp", "django"))
    assert f"new: {runs} of its search's {runs} runs noisy (the servers' CPU down to 54% of its speed)" in \
        flagged.verdict
