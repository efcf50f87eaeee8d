"""The real bench pipeline at its smallest scale: real servers, real Locust, real report."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench import ROOT, scenarios
from bench.record import FORMAT_VERSION, SLOW_SPEED_PCT, Results
from bench.run import serverproc
from bench.run.machine import CpuPlan, CpuSpeed, spin_us
from bench.run.runner import run_command, run_step
from bench.targets import TARGETS

pytestmark = pytest.mark.server


def run_bench(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--no-harness", "--scenarios", "smoke", "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )


@pytest.fixture(scope="module", params=["django", "fastapi"])
def smoke(request, tmp_path_factory) -> tuple[Results, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp(f"bench-smoke-{request.param}")
    done = run_bench(out, "--targets", request.param)
    assert done.returncode == 0, done.stdout + done.stderr
    return Results.load(out / "results.json"), out, done


def test_the_target_ran_and_the_ledger_closes_against_the_servers_counts(smoke):
    data, _, _ = smoke
    assert data.format_version == FORMAT_VERSION and data.status == "complete"
    (run,) = data.runs
    ledger, server = run.ledger, run.server.delta
    assert run.ok, run.failure
    assert ledger.delivered > 0 and run.deliveries_per_s > 0
    # throughput: what arrived in the window, and no more than the servers delivered by their own clock
    if run.server.cost_over == "window":
        assert run.served_deliveries_per_s and run.served_deliveries_per_s > 0, run.server
        assert run.deliveries_per_s == min(run.arrived_deliveries_per_s, run.served_deliveries_per_s)
    else:
        assert run.deliveries_per_s == run.arrived_deliveries_per_s
    assert ledger.unexplained == 0 and ledger.in_flight == 0, ledger
    assert ledger.delivered == ledger.expected, ledger
    # 6 members in rooms of 3 at 5 msg/s: every message the servers read reaches its 3 members
    assert ledger.expected == server.messages_in * 3, (ledger, server)
    assert server.deliveries == ledger.delivered and not server.drops.get("backlog_full"), server


def test_percentiles_are_ordered_and_costs_measured(smoke):
    data, _, _ = smoke
    for run in data.runs:
        for p in (run.rtt_ms, run.latency_ms):
            assert p.count > 0
            assert 0 < p.p50 <= p.p95 <= p.p99 <= p.max, p
        assert run.server.cpu_us_per_delivery > 0
        assert run.server.rss_peak_bytes >= run.server.rss_before_bytes > 0
        assert run.client.busiest_process_cpu_pct is not None
        # the servers' CPU speed, timed at every sample, as a share of the best the bench saw
        spins = [s.server_cpu_spin_us for s in run.samples]
        assert spins and all(s > 0 for s in spins) and 0 < run.noise.server_cpu_speed_pct <= 100, run.noise
        if run.noise.server_cpu_speed_pct < SLOW_SPEED_PCT:
            assert run.noise.noisy
        assert run.samples, "server/client/steal samples were taken"


def test_environment_and_exact_commands_are_recorded(smoke):
    data, _, _ = smoke
    env = data.environment
    assert env.cores >= 1 and env.cpu_model and env.kernel and env.python
    assert env.packages["daphne"] and env.packages["uvicorn"] and env.packages["locust"]
    assert "net.ipv4.tcp_rmem" in env.sysctls and "net.core.rmem_max" in env.sysctls
    assert env.cpu_plan is not None and env.cpu_plan.server_cpus
    (name, target), = data.targets.items()
    server = {"django": "daphne ", "fastapi": "uvicorn "}[name]
    assert target.server_command.startswith(server)
    fixes = {"django": "django_chat/daphne_fixes.py", "fastapi": "serving/uvicorn_fixes.py"}
    assert target.patched == [fixes[name]]
    if name == "django":
        assert "--websocket-max-message-size" in target.server_command


def test_report_files_are_written(smoke):
    data, out, done = smoke
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert data.runs[0].target in html and data.runs[0].target in md
    assert str(out / "report.html") in done.stdout
    assert Results.load(out / "results.json") == data


def test_a_server_killed_mid_run_is_reported_and_the_measured_part_kept(tmp_path):
    done = run_bench(tmp_path, "--targets", "fastapi", "--fault", "kill-server")
    assert done.returncode == 0, done.stdout + done.stderr
    data = Results.load(tmp_path / "results.json")
    assert data.status == "complete"
    (run,) = data.runs
    assert run.status == "failed"
    assert "exited" in run.failure and "fastapi" in run.failure
    ledger = run.ledger
    assert ledger.delivered > 0, "what arrived before the kill is kept"
    # nothing can be shown to be on its way without the server's figures: every delivery that did not
    # arrive went down with the connections, none is called late
    assert ledger.in_flight == 0 and ledger.unexplained == 0, ledger
    assert ledger.lost_with_close_total == ledger.expected - ledger.delivered, ledger
    assert run.fault.kind == "kill-server" and run.fault.fired_at, run.fault
    # every member saw its connection die without a close frame
    assert run.client_closes == {1006: run.params.users}, run.client_closes
    html = (tmp_path / "report.html").read_text()
    assert "exited" in html


def test_two_locust_processes_meet_on_a_port_of_their_own(tmp_path):
    """A machine with two or more client CPUs runs Locust as a master and its workers (--processes). They
    meet on a free port of the run's own, not Locust's default 5557, which another bench on the same
    machine (the tests run two at once) would hold: the run works, and every worker's tally is counted."""
    cpus = frozenset(sorted(os.sched_getaffinity(0))[:2])
    if len(cpus) < 2:
        pytest.skip("one CPU: the load generator is a single Locust process")
    scenario = replace(scenarios.load()[0]["smoke"], warmup=0.2, window=1.0, drain=0.5)
    (server,) = serverproc.start(TARGETS["fastapi"], tmp_path)
    try:
        two_clients = CpuPlan(server=cpus, client=cpus)
        command, _ = run_command(scenario, [server], tmp_path / "r.json", processes=2)
        port = command[command.index("--master-bind-port") + 1]
        assert port != "5557" and command[command.index("--master-port") + 1] == port
        run = run_step(scenario, [server], two_clients, tmp_path, "two-processes")
    finally:
        server.stop()
    assert run.ok and len(run.load_generators) == 2, (run.failure, run.load_generators)
    assert run.ledger.unexplained == 0 and run.ledger.delivered == run.ledger.expected > 0, run.ledger
    assert run.server.delta.messages_in * scenario.room_size == run.ledger.expected


def test_the_cpu_speed_probe_times_its_loop_against_the_best_it_has_seen():
    speed = CpuSpeed()
    assert speed.pct([]) is None
    assert speed.pct([500.0] * 9 + [400.0]) == 100.0  # one fluke faster probe does not set full speed
    assert speed.pct([1000.0] * 3) == pytest.approx(50.0, abs=1)  # against every run so far, not its own
    assert 0 < CpuSpeed().pct([300.0, 1600.0]) <= 100 and CpuSpeed().pct([500.0, 800.0]) >= 75  # two probes
    bursts = CpuSpeed()
    assert bursts.pct([220.0] * 40) == 100.0
    assert bursts.pct([220.0] * 6 + [440.0] * 4) == pytest.approx(71, abs=1)  # slow 40% of the window: slow
    assert bursts.pct([220.0] * 19 + [3000.0]) > 90  # one interrupted probe counts as SLOWEST × full speed
    cpu = sorted(os.sched_getaffinity(0))[0]
    mask = os.sched_getaffinity(0)
    assert spin_us(cpu) > 0 and os.sched_getaffinity(0) == mask  # the thread gets its CPUs back


@pytest.mark.parametrize("variant", ["", "quick", "full"])
def test_every_target_has_a_suite_in_every_variant(variant):
    """`make bench`, bench-quick and bench-full look up each target's suite by its kind: none may be missing."""
    _, suites = scenarios.load(variant)
    assert {t.kind for t in TARGETS.values()} <= suites.keys()
    assert all(suites[t.kind] for t in TARGETS.values()), {t.name: t.kind for t in TARGETS.values()
                                                           if not suites[t.kind]}
