"""A reconnect storm (bench/run/reconnect.py) on real servers: members chatting, the server killed and started again
on the same port; every member gets back (signed in, in app mode), and every message sent is accounted for."""

from __future__ import annotations

import asyncio

import pytest

from bench.run import reconnect

pytestmark = pytest.mark.server


@pytest.mark.parametrize("target,policy", [("django", "immediate"), ("fastapi-app-sqlite", "backoff")])
def test_every_member_gets_back_and_the_ledger_closes(tmp_path, target, policy):
    found = asyncio.run(reconnect.storm(target, 40, policy, tmp_path, cap=30.0, chat_s=1.0))
    assert found.back == found.members == 40 and found.back_s is not None, found
    assert found.first_back_s is not None and found.first_back_s <= found.back_s
    assert sum(found.back_by_second.values()) == 40
    assert found.sent > 0 and found.unexplained == 0, found
    assert found.echoed + found.lost_with_server + found.lost_after_back == found.sent, found
    if policy == "immediate":  # it tried while nothing listened on the port
        assert found.failures.get("refused (nothing listening)", 0) > 0, found.failures
    assert found.server_rss_peak_bytes and found.server_cpu_s, "the new server's start and handshakes took CPU"
    if target.endswith("-app-sqlite"):  # signed in; what went down with the server may have been stored first
        assert found.lost_but_stored is not None and found.lost_but_stored <= found.lost_with_server


def test_backoff_waits_up_to_its_bound_with_full_jitter():
    waits = [reconnect.backoff_s(attempt) for attempt in (0, 3, 10) for _ in range(200)]
    assert all(0 <= w <= 0.5 for w in waits[:200]) and all(0 <= w <= 4.0 for w in waits[200:400])
    assert max(waits[400:]) <= reconnect.BACKOFF_MAX_S and max(waits[400:]) > 10, "capped, and jittered up to it"
