"""The capacity as the report quotes it, checked again: a `confirm` run holds the searched capacity once more in
a run of its own (its verdict beside the capacity, a flag when it broke the rule), and is no ramp itself."""

from __future__ import annotations

from pathlib import Path

from bench.record import Results, broke_again, edge_runs, runs_again, searched
from bench.report import print_summary
from bench.report.capacity import costs, ramp_scenarios
from bench.report.claims import claims
from bench.report.headline import capacity_cell
from bench.report.runs import flag_names
from bench.report.searched import capacity_number, converged_note, search_view

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"


def confirmed(p95_ms: float) -> Results:
    """The bench's results, and django's capacity held again for 20 s with this round-trip p95."""
    data = Results.load(BENCH)
    cap = searched(data, "django")
    run = edge_runs(data, cap)[0].model_copy(deep=True)
    run.scenario, run.step = "confirm", ""
    run.params.rate_at, run.params.window, run.params.hold = "ramp", 20.0, 0.0
    run.rtt_ms.p95 = p95_ms
    data.runs.append(run)
    return data


def django_state(data: Results) -> str:
    (found,) = search_view(data, ["django"])
    return found.rows[0].state


def test_a_capacity_held_again_says_so_beside_it_and_is_no_ramp_of_its_own():
    data = confirmed(p95_ms=60.0)
    assert "held again for 20 s (p95 60.0 ms, 0% lost)" in django_state(data)
    assert "confirm" not in ramp_scenarios(data) and "ramp" in ramp_scenarios(data)
    assert "failed again" not in flag_names(data.runs_of("confirm"))  # (that run was noisy: flagged so)
    # the ceilings the text names are the runs' own: the search's, and the one it was held again under
    (found,) = search_view(data, ["django"])
    assert (found.ceiling, found.again_ceiling) == ("85", "85")  # a record from before the search's own ceiling
    assert search_view(Results.load(BENCH), ["django"])[0].again_ceiling == ""  # held again in no run


def test_a_capacity_that_failed_when_held_again_says_why_and_is_flagged():
    data = confirmed(p95_ms=300.0)
    data.runs_of("confirm")[0].noise.noisy = False  # on a machine running true
    assert "failed when held again for 20 s (p95 300 ms, 0% lost; p95)" in django_state(data)
    assert "failed again" in flag_names(data.runs_of("confirm"))
    cell, _ = capacity_cell(data, "django")
    assert "failed again" in cell.flags and "failed when held again" in cell.note


def test_a_hold_again_that_broke_on_a_slow_cpu_runs_once_more_and_the_next_run_decides():
    """The search's rule for its probes and holds: a run that broke it while the servers' CPU ran slow or was
    taken says nothing of the capacity yet (bench/run/targetrun.py runs it once more); one that broke it on a
    machine running true counts, whatever ran after it."""
    data = confirmed(p95_ms=300.0)
    slow = data.runs_of("confirm")[0]
    assert slow.noise.noisy and runs_again(slow)
    again = slow.model_copy(deep=True)
    again.rtt_ms.p95, again.repeat = 60.0, 1
    data.runs.append(again)
    assert "failed on a slow or taken CPU when held again (p95 300 ms, 0% lost; p95, its CPU at 60% of its speed), " \
        "so it ran once more; held again for 20 s (p95 60.0 ms, 0% lost)" in django_state(data)
    cell, _ = capacity_cell(data, "django")
    assert "failed again" not in cell.flags and "failed again" not in flag_names(data.runs_of("confirm"))
    slow.noise.noisy = False  # broke the rule on a machine running true: the capacity failed, whatever came next
    assert not runs_again(slow) and broke_again(data.runs_of("confirm")) == [slow]
    assert "failed again" in capacity_cell(data, "django")[0].flags


def test_a_hold_again_that_broke_on_a_slow_cpu_every_time_is_no_test_of_the_capacity():
    """The capacity was measured on a CPU running true; a run on one at 60% of its speed carries ×1.7 the load
    for that CPU, so its failure neither holds nor fails the capacity: the report says it was not tested."""
    data = confirmed(p95_ms=300.0)
    slow = data.runs_of("confirm")[0]
    assert slow.noise.server_cpu_speed_pct == 60.5  # as this run read it
    for repeat in (1, 2):
        again = slow.model_copy(deep=True)
        again.repeat = repeat
        data.runs.append(again)
    assert broke_again(data.runs_of("confirm")) == []
    state = django_state(data)
    assert state.count("so it ran once more") == 2 and state.endswith(
        "failed on a slow or taken CPU when held again (p95 300 ms, 0% lost; p95, its CPU at 60% of its speed): "
        "no test of a capacity measured on a CPU running true"), state
    assert "failed again" not in capacity_cell(data, "django")[0].flags


def test_a_capacity_held_again_is_no_comparison_at_one_load_and_sums_up_as_its_own_run(capsys):
    """Each target's confirm runs at its own capacity: no claim or table compares targets there."""
    data = confirmed(p95_ms=60.0)
    fast = edge_runs(data, searched(data, "fastapi"))[0].model_copy(deep=True)
    fast.scenario, fast.step, fast.params.rate_at = "confirm", "", "ramp"
    data.runs.append(fast)
    assert costs(data, "confirm").stats == {}
    assert not any("confirm" in f for c in claims(data) for f in c.figures)
    print_summary(data)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("confirm")]
    assert len(lines) == 2 and not any("SLO capacity" in line for line in lines), lines


def test_a_capacity_with_nothing_failed_above_it_is_a_floor_unless_it_held_at_its_cpu_ceiling():
    found = searched(Results.load(BENCH), "django").model_copy(update={"failed": None})
    assert capacity_number(found.model_copy(update={"converged": False})).startswith("≥ ")
    assert capacity_number(found.model_copy(update={"converged": True}))[0].isdigit()  # a load 10% up passes it


def test_a_record_that_only_held_an_earlier_benchs_capacities_says_whether_each_held():
    """`--at-capacities`: no search of its own, so the headline says whether the earlier capacity held."""
    data = confirmed(p95_ms=300.0)
    data.runs, data.capacities = data.runs_of("confirm"), []
    data.runs[0].noise.noisy = False
    cell, stat = capacity_cell(data, "django")
    assert stat is None and "failed again" in cell.flags
    assert cell.note.startswith("an earlier bench's capacity: failed when held again for 20 s (p95 300 ms, 0% "
                                "lost; p95")
    data.runs[0].rtt_ms.p95 = 60.0
    assert capacity_cell(data, "django")[0].note.endswith("held again for 20 s (p95 60.0 ms, 0% lost)")
    assert capacity_cell(data, "fastapi")[0].text == "not measured"  # not held again here


def test_a_converged_capacity_says_how_when_its_bracket_is_wider_than_the_tolerance():
    found = searched(Results.load(BENCH), "django").model_copy(update={"passed": 2.0, "converged": True})
    assert converged_note(found.model_copy(update={"failed": 2.2})) == "converged within ±10%"
    assert converged_note(found.model_copy(update={"failed": 4.0})).startswith("converged: held near its CPU ceiling")
    assert converged_note(found.model_copy(update={"converged": False})) == "not converged within ±10%"
