"""The arithmetic behind the Chat tab's charts (bench/load/live.py); tests/test_ui_browser.py drives the tab."""

from __future__ import annotations

from collections import Counter

from bench.load.live import interval_percentiles, losses
from bench.load.tally import new_histogram


def test_a_points_latency_percentiles_are_those_of_what_was_recorded_since_the_window_began():
    cumulative, since = new_histogram(), new_histogram()
    cumulative.record_value(900_000, 1000)  # before the window: slow, and the majority
    then = cumulative.counts[:]
    for ms in range(1, 101):
        cumulative.record_value(ms * 1000)
        since.record_value(ms * 1000)
    assert interval_percentiles(cumulative, then) == [since.get_value_at_percentile(p) / 1000 for p in (50, 95)]
    assert interval_percentiles(cumulative, cumulative.counts[:]) == [None, None]


def test_loss_by_cause_counts_each_missing_delivery_once():
    counters = Counter({("lost_sender_closed", 1009): 4, ("lost_recipient_closed", 1006): 2,
                        "lost_recipient_left": 5, "left_skipped": 2, "missing_open": 20})
    drops = {"backlog_full": 7, "redis_unavailable": 1, "send_failed": 3}
    assert losses(counters, drops, room_size=3) == {
        "dropped by server: backlog_full": 7,
        "dropped by server: redis_unavailable": 3,  # counted per message: lost for the whole room
        "sender closed 1009": 4,
        "recipient closed 1006": 2,
        # the 10 drops explain the 2 deliveries leavers skipped first, then 8 of the 20 open members' losses;
        # the leavers left before the other 3 arrived (send_failed went to members already gone: their
        # loss is counted with their close)
        "left before it arrived": 3,
        "connection open: in flight or unexplained": 12,
    }
