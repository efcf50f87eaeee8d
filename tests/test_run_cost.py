"""The server CPU per delivery a run records (bench/run/runner.py server_cost): over the window from the
servers' own readings, else from the CPU sampled in it, else over the whole run; and the servers' own
delivery rate, by their clock, that caps the throughput a run may claim."""

from __future__ import annotations

import pytest

from bench.run.runner import RunCost, server_cost
from bench.scenarios import load


def sample(wall: float, cpu_pct: float, counters: list[float] | None, backing_pct: float = 0.0) -> dict:
    return {"wall": wall, "dt": 0.5, "server_cpu_pct": cpu_pct, "backing_cpu_pct": backing_pct,
            "server_counters": counters}


RAMP = load()[0]["ramp"]  # warm-up 0.3 s, a window of 1.5 s
WHOLE_RUN = {"cpu_seconds": 3.0, "deliveries": 1000}  # handshakes included: 3,000 µs a delivery


def test_the_window_cost_reads_the_servers_own_counters_and_leaves_the_handshakes_out():
    # handshakes until 99.5 (no delivery), sending from 99.7, the window 100.0–101.5
    samples = [sample(99.5, 90, [0, 2.0, 99.5]), sample(99.9, 80, [400, 2.1, 99.9]),
               sample(100.5, 80, [2400, 2.5, 100.5]), sample(101.0, 80, [4400, 2.9, 101.0], backing_pct=20),
               sample(101.4, 80, [6400, 3.3, 101.4])]
    cost = server_cost(samples, 100.0, 101.5, RAMP, 9000, WHOLE_RUN)
    # from the reading at 99.9 to the one at 101.4: 1.2 s of the servers' CPU and 0.1 s of Redis's (20% of 0.5 s)
    assert cost.over == "window" and cost.cpu_us_per_delivery == pytest.approx(1e6 * (1.2 + 0.1) / 6000)
    assert cost.served_per_s == pytest.approx(6000 / 1.5)


def test_the_servers_rate_is_timed_by_their_clock_not_by_when_the_bench_got_the_answer():
    # a busy server answers the reading stamped 100.5 at 100.9: its counters are of 100.9, by its own clock
    samples = [sample(99.9, 99, [400, 2.1, 99.9]), sample(100.5, 99, [4000, 3.1, 100.9]),
               sample(101.0, 99, [4400, 3.2, 101.0])]
    cost = server_cost(samples, 100.0, 101.5, RAMP, 6000, WHOLE_RUN)
    # 4,000 deliveries in 1.1 s of the server's clock, 1.1 CPU seconds: one core, never more
    assert cost.served_per_s == pytest.approx(4000 / 1.1)
    assert cost.served_per_s * cost.cpu_us_per_delivery / 1e6 == pytest.approx(1.0)


def test_a_server_that_answered_no_reading_in_time_is_costed_from_the_sampled_cpu():
    samples = [sample(99.9, 50, None), sample(100.5, 90, None), sample(101.0, 100, None)]
    cost = server_cost(samples, 100.0, 101.5, RAMP, 3000, WHOLE_RUN)
    # 95% of a core over 2,000 arrivals a second; the servers gave no rate of their own
    assert cost == RunCost(pytest.approx(1e6 * 0.95 * 1.5 / 3000), "sampled", None)
    assert server_cost([], 100.0, 101.5, RAMP, 3000, WHOLE_RUN) == RunCost(3000.0, "run")
