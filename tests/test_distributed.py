"""A run across several machines, on loopback: two replicas of one target started apart from the bench,
two Locust workers apart from their master. Its results carry the same ledger as a local run, the
server columns sum both replicas, and they say which hosts served and which generated the load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import ROOT, locust_command
from bench.record import Results
from bench.run import serverproc
from bench.run.procs import free_port, stop_process
from bench.run.redisctl import RedisServer
from bench.targets import TARGETS
from tests.test_redis import require_redis_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def distributed(tmp_path_factory) -> Results:
    require_redis_server()
    tmp = tmp_path_factory.mktemp("distributed")
    redis = RedisServer(log_dir=tmp / "redis").start()
    replicas = serverproc.start(TARGETS["fastapi-redis"], tmp / "servers", redis_url=redis.url)  # two processes
    master = f"127.0.0.1:{free_port()}"
    workers = []
    try:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench", "--no-harness", "--targets", "fastapi-redis", "--scenarios", "smoke",
             "--hosts", ",".join(r.base_url for r in replicas), "--expect-workers", "2", "--master-bind", master,
             "--out", str(tmp / "out")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        host, port = master.split(":")
        workers = [subprocess.Popen(locust_command("--worker", "--master-host", host, "--master-port", port),
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(2)]
        out, _ = bench.communicate(timeout=180)
        assert bench.returncode == 0, out[-3000:]
        return Results.load(tmp / "out" / "results.json")
    finally:
        for p in workers:
            stop_process(p)
        for r in replicas:
            r.stop()
        redis.stop()


def test_the_ledger_closes_and_the_server_columns_sum_both_replicas(distributed):
    (run,) = distributed.runs
    assert run.ok, run.failure
    ledger, server = run.ledger, run.server.delta
    assert ledger.unexplained == 0 and ledger.in_flight == 0 and ledger.delivered == ledger.expected > 0, ledger
    # members are spread over both replicas: only their sum accounts for every message and delivery
    assert server.messages_in * run.params.room_size == ledger.expected, (server, ledger)
    assert server.deliveries == ledger.delivered, (server, ledger)
    assert run.server.cpu_us_per_delivery and run.server.cpu_us_per_delivery > 0


def test_it_says_which_hosts_served_and_which_generated_the_load(distributed):
    (run,) = distributed.runs
    target = distributed.targets["fastapi-redis"]
    assert len(target.hosts) == 2 and target.processes == 2 and target.launcher == []
    assert len(run.load_generators) == 2, run.load_generators
    assert "--master" in run.locust_command and "--expect-workers" in run.locust_command


def test_a_dns_host_is_every_replica_its_name_resolves_to():
    assert serverproc.replicas("http://fastapi-redis:8000") == ["http://fastapi-redis:8000"]
    assert serverproc.replicas("dns+http://localhost:8000") == ["http://127.0.0.1:8000"]


def test_compose_runs_the_bench_as_master_of_its_workers_over_every_replica():
    from tests.test_compose import load_compose

    services = load_compose()["services"]
    bench, worker = services["bench"]["command"], services["bench-worker"]["command"]
    assert bench[:3] == ["python", "-m", "bench"] and "dns+http://fastapi-redis:8000" in " ".join(bench)
    assert int(bench[bench.index("--expect-workers") + 1]) == services["bench-worker"]["deploy"]["replicas"]
    assert worker[worker.index("--master-host") + 1] == "bench"
