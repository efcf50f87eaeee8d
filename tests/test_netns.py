"""The distributed path over a network hop, not loopback: Redis, a replica and a Locust worker each on a host of
its own (network namespaces on a bridge, bench/run/netns.py), the bench as their master from the root
namespace. The ledger closes across them, and the record says which host served and which generated the load."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from bench import ROOT, locust_command
from bench.record import Results
from bench.run import netns, serverproc
from bench.run.procs import stop_process
from bench.run.redisctl import RedisServer
from bench.targets import TARGETS
from tests.test_redis import require_redis_server

pytestmark = pytest.mark.server

PORT, REDIS_PORT, MASTER_PORT = 8000, 6379, 5557  # each host has its own ports: nothing else listens there


def test_a_replica_redis_and_a_worker_on_hosts_of_their_own_close_the_ledger(tmp_path):
    require_redis_server()
    if why := netns.unavailable():
        pytest.skip(why)
    target = TARGETS["fastapi-redis"]
    with netns.Hosts(["redis", "replica", "worker"], delay_ms=1.0) as hosts:
        redis = RedisServer(REDIS_PORT, hosts.address("redis"), tmp_path / "redis", on=hosts.command("redis", []))
        processes: list[subprocess.Popen] = []
        replicas: list[serverproc.ServerProcess] = []
        try:
            redis.start()  # each ready when it answers over the bridge, from the root namespace
            replicas = serverproc.start(
                replace(target, processes=1), tmp_path / "replica", host=hosts.address("replica"), port=PORT,
                env={"CHAT_ALLOWED_ORIGINS": f"localhost,127.0.0.1,{hosts.address('replica')}"},
                redis_url=redis.url, on=hosts.command("replica", []))
            replica_url = replicas[0].base_url
            master = f"{hosts.bridge_address}:{MASTER_PORT}"
            bench = subprocess.Popen(
                [sys.executable, "-m", "bench", "--no-harness", "--targets", target.name, "--scenarios", "smoke",
                 "--hosts", replica_url, "--expect-workers", "1", "--master-bind", master,
                 "--out", str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            processes.append(bench)
            processes.append(subprocess.Popen(hosts.command("worker", locust_command(
                "--worker", "--master-host", hosts.bridge_address, "--master-port", str(MASTER_PORT))),
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            out, _ = bench.communicate(timeout=180)
            assert bench.returncode == 0, out[-3000:]
        finally:
            for process in reversed(processes):
                stop_process(process)
            for replica in replicas:
                replica.stop()
            redis.stop()
    results = Results.load(tmp_path / "out" / "results.json")
    (run,) = results.runs
    assert run.ok, run.failure
    ledger, server = run.ledger, run.server.delta
    assert ledger.unexplained == 0 and ledger.in_flight == 0 and ledger.delivered == ledger.expected > 0, ledger
    assert server.deliveries == ledger.delivered, (server, ledger)  # counted by the replica, over the bridge
    assert results.targets[target.name].hosts == [f"http://{hosts.address('replica')}:{PORT}"]
    assert len(run.load_generators) == 1
