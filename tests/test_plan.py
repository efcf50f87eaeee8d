"""`python -m bench.plan`: a workload planned from a real bench's measured costs, its arithmetic checked by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.plan import EXAMPLES, Workload, costs_of, plan, plans
from bench.plan.__main__ import main
from bench.record import Results
from bench.report import write_report

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"  # a real `make bench`
COMMUNITY = Workload("community", 50_000, 30, 1 / 60, stored=0.5)


@pytest.fixture(scope="module")
def data() -> Results:
    return Results.load(BENCH)


def test_the_processes_are_the_work_over_what_one_process_carried_within_the_slo(data):
    costs = costs_of(data, "django")
    assert costs is not None
    found = plan(costs, COMMUNITY, headroom=0.3)
    deliveries = 50_000 / 60 * 30
    assert found.server_cpu == pytest.approx(deliveries * costs.cost_us.value / 1e6)
    assert found.processes == math.ceil(found.server_cpu / (costs.core_share.value * 0.7))
    assert 0.3 < costs.core_share.value <= 1.0  # a core kept busy below its whole, within the SLO
    assert found.memory_bytes == pytest.approx(50_000 * costs.idle_bytes.value + found.processes
                                               * costs.base_bytes.value)
    assert "ramp at 1.43 msg/s per member (held" in costs.cost_us.source  # traced to the held pass


def test_more_headroom_or_more_work_never_needs_fewer_processes(data):
    costs = costs_of(data, "fastapi")
    assert costs is not None
    counts = [plan(costs, Workload("w", n, 30, 1 / 60)).processes for n in (10_000, 100_000, 1_000_000)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert plan(costs, COMMUNITY, headroom=0.6).processes >= plan(costs, COMMUNITY, headroom=0.1).processes


def test_stored_messages_cost_the_app_target_and_its_database_and_a_relay_says_it_stores_nothing(data):
    app = costs_of(data, "django-app")
    assert app is not None and app.storage_us is not None and app.database_us is not None
    stored = plan(app, COMMUNITY)
    assert stored.database_cpu == pytest.approx(50_000 / 60 * 0.5 * app.database_us.value / 1e6)
    assert stored.server_cpu > plan(app, Workload("w", 50_000, 30, 1 / 60)).server_cpu
    relay = plan(costs_of(data, "django"), COMMUNITY)  # type: ignore[arg-type]
    assert relay.database_cpu is None and any("stores nothing" in n for n in relay.notes)


def test_many_processes_without_a_measured_redis_say_so_rather_than_guess(data):
    found = plan(costs_of(data, "django"), EXAMPLES[-1])  # type: ignore[arg-type]
    assert found.processes > 1 and found.redis_cpu is None and any("Redis" in n for n in found.notes)


def test_the_command_prints_a_plan_per_target_and_refuses_nonsense(data, capsys):
    assert main([str(BENCH), "--members", "50000", "--room-size", "30", "--per-minute", "1", "--stored", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("50,000 members in rooms of 30") and "25,000 deliveries/s" in out
    assert [line.split(":")[0] for line in out.splitlines() if line and not line.startswith((" ", "50,000"))] == \
        [p.target for p in plans(data, COMMUNITY)]
    with pytest.raises(SystemExit):
        main([str(BENCH), "--members", "0", "--room-size", "30", "--per-minute", "1"])
    assert main([str(BENCH.with_name("missing.json")), "--members", "1", "--room-size", "2", "--per-minute", "1"]) == 2


def test_the_report_plans_the_example_workloads(data, tmp_path):
    html = write_report(data, tmp_path)["html"].read_text()
    plan_part = html.split('id="plan"', 1)[1].split("</section>", 1)[0]
    for w in EXAMPLES:
        assert f"{w.members:,} members in rooms of {w.room_size}" in plan_part
    assert "Where each input came from" in plan_part and "KiB per idle connection" in plan_part


def with_twin(data: Results, factor: float) -> Results:
    """The real bench plus `fastapi-2`: fastapi's runs as if two processes had served them on the same core,
    its held rate × `factor` and its cost per delivery ÷ it (the same share of the core)."""
    copy = data.model_copy(deep=True)
    copy.targets["fastapi-2"] = copy.targets["fastapi"].model_copy(update={"processes": 2})
    cap = next(c for c in copy.capacities if c.target == "fastapi")
    twin_cap = cap.model_copy(deep=True, update={"target": "fastapi-2", "passed": cap.passed * factor})
    for probe in twin_cap.probes:
        probe.rate = probe.rate * factor
    copy.capacities.append(twin_cap)
    for run in [r for r in copy.runs if r.target == "fastapi" and r.scenario == cap.scenario]:
        twin = run.model_copy(deep=True, update={"target": "fastapi-2"})
        twin.params.rate *= factor
        twin.deliveries_per_s *= factor
        if twin.server.cpu_us_per_delivery:
            twin.server.cpu_us_per_delivery /= factor
        copy.runs.append(twin)
    return copy


def test_the_plan_is_checked_against_the_same_target_on_two_processes(data):
    from bench.plan import scale_checks

    assert scale_checks(data) == []  # no target ran on one process and on two
    (same,) = scale_checks(with_twin(data, 1.0))
    assert (same.one, same.many, same.processes) == ("fastapi", "fastapi-2", 2)
    assert same.error_pct == pytest.approx(0.0, abs=2.0)  # the same core, as busy, at the same cost: as planned
    (slower,) = scale_checks(with_twin(data, 0.5))  # cross-process fan-out doubled the cost per delivery
    assert slower.error_pct == pytest.approx(-50.0, abs=2.0)
    assert slower.cost_many_us == pytest.approx(2 * slower.cost_one_us, rel=0.02)


def test_one_process_costs_planning_several_take_the_stacks_measured_crossing_or_say_they_are_a_floor(data):
    alone = {p.target: p for p in plans(data, COMMUNITY)}["fastapi"]
    assert alone.processes > 1 and any("a floor" in n for n in alone.notes)
    crossed = {p.target: p for p in plans(with_twin(data, 0.5), COMMUNITY)}
    fastapi, twin = crossed["fastapi"], crossed["fastapi-2"]
    assert fastapi.server_cpu == pytest.approx(2 * alone.server_cpu, rel=0.02)  # ×2: fastapi-2 against fastapi
    assert fastapi.processes >= alone.processes and any("fastapi-2 against fastapi" in n for n in fastapi.notes)
    assert not any("×" in n for n in twin.notes)  # measured on two processes already
