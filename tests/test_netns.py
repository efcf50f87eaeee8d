"""The distributed path over a network hop, not loopback: Redis, a replica and a Locust worker each on a host of
its own (network namespaces on a bridge, bench/run/netns.py), the bench as their master from the root
namespace. The ledger closes across them, and the record says which host served and which generated the load."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench import ROOT, locust_command
from bench.record import Results
from bench.run import netns, serverproc
from bench.run.procs import stop_process
from bench.run.redisctl import ping, redis_server_binary
from bench.targets import TARGETS
from tests.test_redis import require_redis_server

pytestmark = pytest.mark.server

PORT, REDIS_PORT, MASTER_PORT = 8000, 6379, 5557  # each host has its own ports: nothing else listens there


def started(command: list[str], log: str, **options) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                **options)


def test_a_replica_redis_and_a_worker_on_hosts_of_their_own_close_the_ledger(tmp_path):
    require_redis_server()
    if why := netns.unavailable():
        pytest.skip(why)
    target = TARGETS["fastapi-redis"]
    with netns.Hosts(["redis", "replica", "worker"], delay_ms=1.0) as hosts:
        redis_url = f"redis://{hosts.address('redis')}:{REDIS_PORT}/0"
        replica_url = f"http://{hosts.address('replica')}:{PORT}"
        processes: list[subprocess.Popen] = []
        try:
            processes.append(started(hosts.command("redis", [
                redis_server_binary(), "--bind", hosts.address("redis"), "--port", str(REDIS_PORT), "--save", "",
                "--appendonly", "no", "--protected-mode", "no"]),  # its clients are other hosts, on the bridge only
                str(tmp_path / "redis.log")))
            deadline = time.monotonic() + 10
            while not ping(redis_url, timeout=0.5):  # over the bridge, from the root namespace
                assert time.monotonic() < deadline and processes[0].poll() is None, "redis-server did not answer"
                time.sleep(0.05)  # readiness poll
            env = {**os.environ, **target.server_env(redis_url), "PYTHONUNBUFFERED": "1",
                   "CHAT_ALLOWED_ORIGINS": f"localhost,127.0.0.1,{hosts.address('replica')}"}
            processes.append(started(hosts.command("replica", target.command(hosts.address("replica"), PORT)),
                                     str(tmp_path / "replica.log"), env=env))
            serverproc.RemoteServer(target, replica_url).wait_ready()
            master = f"{hosts.bridge_address}:{MASTER_PORT}"
            bench = subprocess.Popen(
                [sys.executable, "-m", "bench", "--no-harness", "--targets", target.name, "--scenarios", "smoke",
                 "--hosts", replica_url, "--expect-workers", "1", "--master-bind", master,
                 "--out", str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            processes.append(bench)
            processes.append(started(hosts.command("worker", locust_command(
                "--worker", "--master-host", hosts.bridge_address, "--master-port", str(MASTER_PORT))),
                str(tmp_path / "worker.log")))
            out, _ = bench.communicate(timeout=180)
            assert bench.returncode == 0, out[-3000:]
        finally:
            for process in reversed(processes):
                stop_process(process)
    results = Results.load(tmp_path / "out" / "results.json")
    (run,) = results.runs
    assert run.ok, run.failure
    ledger, server = run.ledger, run.server.delta
    assert ledger.unexplained == 0 and ledger.in_flight == 0 and ledger.delivered == ledger.expected > 0, ledger
    assert server.deliveries == ledger.delivered, (server, ledger)  # counted by the replica, over the bridge
    assert results.targets[target.name].hosts == [replica_url] and len(run.load_generators) == 1
