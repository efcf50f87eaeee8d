"""The run sampler counts the CPU of the servers' whole process trees, short-lived children included: a
PostgreSQL whose pool closes overflow connections forks backends that live less than a sample."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from bench.run.sampler import Sampler

# a parent that forks, for `seconds`, one child after another, each burning 30 ms of CPU and exiting
FORKER = """
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pid = os.fork()
    if pid == 0:
        stop = time.process_time() + 0.03
        while time.process_time() < stop:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_children_shorter_than_a_sample_count_in_the_servers_cpu():
    cpu = min(os.sched_getaffinity(0))
    parent = subprocess.Popen([sys.executable, "-c", FORKER, "3"])
    try:
        sampler = Sampler([parent.pid], set(), os.getpid(), {cpu}, interval=0.5, time_cpu=False,
                          backing_pids=[parent.pid])
        sampler.start()
        time.sleep(2.2)  # four samples while children come and go
        samples = sampler.stop()
        total = psutil.Process(parent.pid).cpu_times()
    finally:
        parent.wait(10)
    busy = [s["server_cpu_pct"] for s in samples[1:]]
    assert total.children_user + total.children_system > 0.5  # the children did burn the CPU
    # a child of 30 ms seldom lives across a sample: counted per live process, these read near 0
    assert busy and min(busy) > 50, samples
    assert all(s["backing_cpu_pct"] == s["server_cpu_pct"] for s in samples)  # the root is the backing one
