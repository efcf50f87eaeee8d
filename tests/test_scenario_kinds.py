"""Every kind of scenario the bench runs, at the smallest scale, through the real pipeline on each
backend: no expected delivery may be left unexplained, the ledger must agree with the servers'
own counts, and a message over the size limit must land in the size-limit bucket with its code."""

from __future__ import annotations

import pytest

from bench.record import Results, Run
from bench.report.claims import claims
from tests.bench_runs import TinyBenches, suite

pytestmark = pytest.mark.server

OVER_LIMIT = 16 * 1024 * 1024 + 1  # one byte past both servers' default CHAT_MAX_MESSAGE_BYTES

TINY = f"""
[defaults]
kind = "text"
size = 128
rate = 5.0
warmup = 0.3
window = 1.0
drain = 0.5
repeats = 1

[scenario.payload]
about = "oversize binary message"
room_size = 3
users = 3
rate = 1.0
kind = "binary"
size = {OVER_LIMIT}
drain = 5.0  # time for the 1009 close to come back after 16 MiB went out, even on a loaded machine

[scenario.slow]
about = "one non-reading member"
room_size = 4
users = 4
size = 16384
nonreading = 1

[scenario.slow-reader]
about = "one member reading 64 KiB/s of the 240 KiB/s it is owed"
room_size = 4
users = 4
size = 16384
slow_readers = 1
read_rate = 65536

[scenario.burst]
about = "back-to-back burst"
room_size = 3
users = 6
rate = 0.5
burst = 50
warmup = 0.0

[scenario.burst-mid]
about = "bursts mid-session"
room_size = 3
users = 6
rate = 2.0
burst = 30
burst_every = 0.5

[scenario.churn]
about = "members leaving and joining"
room_size = 4
users = 8
churn = 2
churn_stay = 0.4

[scenario.idle]
about = "silent members"
room_size = 10
users = 20
rate = 0.0

[scenario.fanout]
about = "room sizes"
users = 6
room_size = 2
steps = [{{ room_size = 2, rate = 4.0 }}, {{ room_size = 6, rate = 1.0 }}]

[suite]
local = ["payload", "slow", "slow-reader", "burst", "burst-mid", "churn", "idle", "fanout"]
"""


STORM = 100  # members: the connection storm make bench runs after its targets, small
# the tiny suite on both backends at once: one bench run per target, so one's failure hides nothing of the other's
SUITE = suite("scenario-kinds", ["django", "fastapi"], TINY, args=("--storm", str(STORM)))


@pytest.fixture(scope="module", params=["django", "fastapi"])
def results(request, tiny_benches: TinyBenches) -> Results:
    return tiny_benches.of(SUITE).results(request.param)


def runs(results: Results, scenario: str) -> list[Run]:
    found = [r for r in results.runs if r.scenario == scenario]
    assert found and all(r.ok for r in found), [(r.target, r.failure) for r in found]
    return found


KINDS = ["payload", "slow", "slow-reader", "burst", "burst-mid", "churn", "idle", "fanout"]


@pytest.mark.parametrize("scenario", KINDS)
def test_no_delivery_is_left_unexplained_and_the_servers_agree(results, scenario):
    for run in runs(results, scenario):
        ledger, server = run.ledger, run.server.delta
        assert ledger.unexplained == 0, (scenario, ledger)
        assert ledger.duplicates == 0 and ledger.reordered == 0, (scenario, ledger)
        # what the members received, checked against what the servers say they sent and dropped
        assert server.deliveries >= ledger.delivered, (scenario, server, ledger)
        if scenario not in ("payload", "churn"):  # full rooms throughout, every message accepted
            # the clients' expected deliveries, checked against what the servers read: each message
            # they read was owed to every member of its room
            assert server.messages_in * run.params.room_size == ledger.expected, (scenario, server, ledger)
        if scenario == "idle":
            assert ledger.expected == 0 and run.server.rss_per_connection_bytes > 0
        else:  # every payload message is over the limit: nothing of it can arrive
            assert ledger.expected > 0 and (ledger.delivered > 0) != (scenario == "payload"), (scenario, ledger)


def test_an_oversize_message_lands_in_the_size_limit_bucket_with_1009(results):
    for run in runs(results, "payload"):
        ledger = run.ledger
        refused = [x for x in ledger.lost_with_close if x.cause == "refused by size limit"]
        # every member sent one message over the limit: none of them reached anyone, and the servers read none
        assert sum(x.count for x in refused) == ledger.expected - ledger.delivered > 0, ledger
        assert {x.code for x in refused} == {1009}, refused
        assert run.client_closes.get(1009) == run.params.users, run.client_closes
        assert run.server.delta.messages_in == 0 and run.server.delta.close_codes.get(1009) == run.params.users


def test_a_member_that_never_reads_is_reported_apart(results):
    for run in runs(results, "slow"):
        ledger = run.ledger
        missing = ledger.expected - ledger.delivered
        # whatever did not arrive was owed to the member that never reads, nobody else
        assert ledger.owed_to_nonreading == missing > 0, ledger


def test_a_slow_reader_is_reported_apart_and_still_reads(results):
    for run in runs(results, "slow-reader"):
        ledger, p = run.ledger, run.params
        missing = ledger.expected - ledger.delivered
        assert ledger.owed_to_slow_readers == missing > 0, ledger
        # it read at its rate: about read_rate × the room's time over the message size, not none, not all
        got = ledger.expected // p.room_size - ledger.owed_to_slow_readers  # all four are owed alike
        by_rate = p.read_rate * (p.warmup + p.window + p.drain) / p.size
        assert 0.5 * by_rate <= got <= 1.5 * by_rate, (got, by_rate, ledger)


def test_churning_members_are_owed_only_what_was_sent_while_they_were_in(results):
    for run in runs(results, "churn"):
        ledger, members = run.ledger, run.membership
        assert members.left == members.joined_again > 0, members
        assert members.connect_failed == 0, members
        # at this load every leaver caught up before it left, and every newcomer got all it was owed
        assert ledger.delivered == ledger.expected > 0, ledger
        assert run.client_closes == {}, run.client_closes


@pytest.mark.parametrize("scenario", ["burst", "burst-mid"])
def test_a_burst_is_delivered_or_dropped_by_a_counted_bound(results, scenario):
    for run in runs(results, scenario):
        ledger = run.ledger
        assert ledger.lost_with_close == [] and ledger.unexplained == 0, ledger
        # every drop the ledger credits is one the servers counted
        assert ledger.dropped_total <= sum(run.server.delta.drops.values()), (ledger, run.server.delta)
        assert ledger.delivered + ledger.dropped_total + ledger.in_flight == ledger.expected, ledger


def test_the_claims_answer_with_these_runs(results):
    found = {cl.number: cl for cl in claims(results)}
    target = results.runs[0].target
    churn = next(f for f in found["1"].figures if f.startswith(f"{target}, churn:"))
    assert " members left and " in churn and not churn.startswith(f"{target}, churn: 0 members")
    assert any(f.startswith(f"{target}, one member per room reads 64 KiB/s:") for f in found["4"].figures)
    assert any(f.startswith(f"{target}, one member per room never reads:") for f in found["4"].figures)
    assert any(f.startswith(f"{target} (burst-mid)") for f in found["3"].figures)


def test_the_bench_storms_each_stack_after_its_runs_and_lets_every_member_in(results):
    """make bench's connection storm (bench/run/cli.py `measure_storms`), as the stack ships and hardened: every
    member of it was answered and got in."""
    target = results.runs[0].target
    hostile = results.hostile[target]
    for storm in (figures.storm for figures in (hostile.stock, hostile.hardened) if figures):
        assert storm is not None and storm.connections == STORM and storm.last_admitted_s is not None, storm
        assert storm.answers.get("101", 0) >= STORM, storm.answers
    assert hostile.stock and hostile.hardened
