"""The report sets each searched capacity, and the headline's ratios, beside the previous bench's (the issue's
"two back-to-back benches agree within ±15%, or the report says which did not and why")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.compare.repeat import previous_bench, repeated
from bench.record import Results
from bench.report import write_report
from bench.report.repeatability import repeat_view

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"  # a real `make bench`


def bench_copy(folder: Path, django_factor: float = 1.0, status: str = "complete") -> Path:
    """The real bench as if run into `folder`, with django's searched capacity (its held rate) × the factor."""
    data = json.loads(BENCH.read_text())
    data["status"] = status
    for cap in data["capacities"]:
        if cap["target"] == "django":
            for probe in cap["probes"]:
                if probe["rate"] == cap["passed"]:
                    probe["rate"] = round(probe["rate"] * django_factor, 6)
            for run in data["runs"]:
                if run["target"] == "django" and run["scenario"] == cap["scenario"] \
                        and run["params"]["rate"] == cap["passed"]:
                    run["params"]["rate"] = round(run["params"]["rate"] * django_factor, 6)
            cap["passed"] = round(cap["passed"] * django_factor, 6)
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(data))
    return folder / "results.json"


def test_the_previous_complete_bench_of_the_same_targets_is_the_one_repeated(tmp_path):
    first = bench_copy(tmp_path / "20261206-100000")
    bench_copy(tmp_path / "20261206-110000", status="interrupted")  # not complete: not a bench to repeat
    quick = json.loads(BENCH.read_text())
    quick["capacities"] = [c for c in quick["capacities"] if c["target"] in ("django", "fastapi")]
    (tmp_path / "20261206-113000").mkdir()
    (tmp_path / "20261206-113000" / "results.json").write_text(json.dumps(quick))  # other targets: not it
    (tmp_path / "20261206-114000").mkdir()
    (tmp_path / "20261206-114000" / "results.json").write_text("{not json")  # unreadable: skipped
    second = bench_copy(tmp_path / "20261206-120000")
    bench_copy(tmp_path / "20261206-130000")  # after it: not before it
    assert previous_bench(second.parent, Results.load(second)) == first
    assert previous_bench(first.parent, Results.load(first)) is None


def test_a_capacity_that_moved_is_named_with_its_cause_and_the_ratio_moves_with_it(tmp_path):
    old, new = Results.load(bench_copy(tmp_path / "a")), Results.load(bench_copy(tmp_path / "b", 1.4))
    found = repeated(new, old, "a/results.json")
    assert found is not None
    moved = {m.name: m for m in found.capacities + found.ratios}
    assert moved["django"].change_pct == pytest.approx(40.0, abs=0.5)
    assert moved["fastapi"].change_pct == 0.0 and moved["fastapi"].why == ""
    assert moved["fastapi ÷ django"].change_pct == pytest.approx(100 * (1 / 1.4 - 1), abs=0.5)
    assert "noisy" in moved["django"].why  # the real bench's django search ran on a slow CPU
    new.repeated = found
    view = repeat_view(new)
    assert view is not None
    within = {r.name: r.within for r in view.rows}
    assert not within["django"] and within["fastapi"] and not within["fastapi ÷ django"]
    caps = len(found.capacities)
    assert view.summary.startswith(f"{caps - 1} of {caps} capacities and 1 of 2 ratios between the stacks")


def test_the_report_shows_the_bench_before_it_and_a_first_bench_says_how_to_see_it_repeat(tmp_path):
    first = bench_copy(tmp_path / "20261206-100000")
    second = Results.load(bench_copy(tmp_path / "20261206-120000", 0.8))
    second.repeated = repeated(second, Results.load(first), "reports/20261206-100000/results.json")
    paths = write_report(second, tmp_path / "20261206-120000")
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert "Repeated:" in html and "reports/20261206-100000/results.json" in html
    assert "| django | 2,860 | 2,288 | -20% |" in md  # 1.43 msg/s per member × 200 members × rooms of 10
    alone = write_report(Results.load(first), tmp_path / "20261206-100000")["html"].read_text()
    assert "Repeated:" not in alone and "No earlier bench of the same targets" in alone
