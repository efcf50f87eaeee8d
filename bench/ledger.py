"""The loss ledger: every expected delivery ends in exactly one bucket.

Expected deliveries are every message the run sent (warm-up and drain included, so that the
server's /stats difference covers exactly the same messages) times the room's members
connected when it was sent (the sender included): a member is owed what was sent after its
handshake completed (both servers join it to the room before they answer the handshake) and,
if it left on its own, before it decided to leave. On the recipients' side each
(recipient, sender) pair keeps the next sequence number it expects and the holes below it,
so gaps, duplicates and reordering are exact. `settle` then splits what is missing:

  expected = delivered + dropped by the server (by cause, from /stats)
           + lost with a closed connection (by close code) + in flight + unexplained
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.record import Ledger


class RecipientBook:
    """What one member received, per sender: `[next expected seq, holes below it]`."""

    __slots__ = ("by_sender", "duplicates", "reordered", "total")

    def __init__(self) -> None:
        self.by_sender: dict[int, list] = {}
        self.duplicates = 0
        self.reordered = 0
        self.total = 0  # every message received, duplicates included

    def record(self, sender: int, seq: int) -> None:
        self.total += 1
        book = self.by_sender.get(sender)
        if book is None:
            book = self.by_sender[sender] = [0, set()]
        expected = book[0]
        if seq == expected:
            book[0] = seq + 1
        elif seq > expected:
            book[1].update(range(expected, seq))
            book[0] = seq + 1
        elif seq in book[1]:
            book[1].remove(seq)
            self.reordered += 1
        else:
            self.duplicates += 1

    def received(self, sender: int, first: int, end: int) -> int:
        """How many distinct seqs in [first, end) arrived from `sender`."""
        book = self.by_sender.get(sender)
        if book is None:
            return 0
        top = min(book[0], end)
        if top <= first:
            return 0
        return top - first - self.skipped(sender, first, end)

    def skipped(self, sender: int, first: int, end: int) -> int:
        """How many seqs in [first, end) from `sender` never arrived though a later one did."""
        book = self.by_sender.get(sender)
        if book is None:
            return 0
        top = min(book[0], end)
        return sum(1 for h in book[1] if first <= h < top)


@dataclass
class Member:
    """One chat member's part in the ledger: when it sent each message (seq = index), how it ended."""

    sender: int
    book: RecipientBook = field(default_factory=RecipientBook)
    sent_ns: list[int] = field(default_factory=list)
    closed_code: int | None = None  # None: open until the end, or closed by the bench itself
    closed_ns: int | None = None
    reader: str = "all"  # the slow-consumer experiments: "slow" reads slowly, "none" never reads
    joined_ns: int = 0  # when its handshake completed: owed what was sent from then on
    left_ns: int | None = None  # when it decided to leave (churn): owed nothing sent after it

    @property
    def owed_until_ns(self) -> int | None:
        return self.left_ns if self.left_ns is not None else self.closed_ns

    def owed_from(self, sender: Member) -> tuple[int, int]:
        """The seqs [first, end) of `sender` this member is owed."""
        return sender.sent_before(self.joined_ns), sender.sent_before(self.owed_until_ns)

    def owed_and_received(self, sender: Member) -> tuple[int, int]:
        """How many of `sender`'s messages this member is owed, and how many of those it received."""
        first, end = self.owed_from(sender)
        if end <= first:
            return 0, 0
        return end - first, self.book.received(sender.sender, first, end)

    def still_owed(self, senders: list[Member]) -> int:
        """Deliveries from `senders` this member is owed and has not received (yet)."""
        return sum(owed - got for owed, got in map(self.owed_and_received, senders))

    def sent_before(self, before_ns: int | None = None) -> int:
        if before_ns is None:
            return len(self.sent_ns)
        return bisect_left(self.sent_ns, before_ns)


def account_room(members: list[Member]) -> Counter:
    """Ledger counters of one room, every pair (recipient, sender) settled once. What is missing
    with a close is counted by close code (("lost_sender_closed", 1009)), what is missing for a
    member that reads slowly or never, by its kind (("missing_reader", "none"))."""
    c: Counter = Counter()
    for recipient in members:
        c["received_at_settle"] += recipient.book.total
        c["duplicates"] += recipient.book.duplicates
        c["reordered"] += recipient.book.reordered
        for sender in members:
            owed, got = recipient.owed_and_received(sender)
            c["expected"] += owed
            c["delivered"] += got
            missing = owed - got
            if not missing:
                continue
            if sender.closed_code is not None:
                c["lost_sender_closed", sender.closed_code] += missing
            elif recipient.closed_code is not None:
                c["lost_recipient_closed", recipient.closed_code] += missing
            elif recipient.left_ns is not None:
                c["lost_recipient_left"] += missing  # it waited for them, then left without them
                c["left_skipped"] += recipient.book.skipped(sender.sender, *recipient.owed_from(sender))
            else:
                c["missing_open"] += missing
                if recipient.reader != "all":
                    c["missing_reader", recipient.reader] += missing
    return c


def credit_drops(drops: dict[str, int], room_size: int, missing_open: int, left_without: int,
                 left_skipped: int = 0) -> tuple[dict[str, int], int, int, int]:
    """What the server's counted drops explain, by cause, and what is left of the open members' missing
    deliveries, of what leavers went without, and of what leavers had skipped.

    A drop is not said to whom. What a member that left went without, its departure explains (it was
    gone before they arrived: still queued for it, or not sent yet), except a delivery it skipped (a
    later message from the same sender reached it), which only a drop explains. What an open member
    misses, only a drop or being in flight does. So the drops explain the leavers' skipped deliveries
    first, then the open members' losses, and only what remains of them what the leavers left without.
    """
    unexplained_yet = [left_skipped, missing_open, left_without - left_skipped]  # in the order drops explain them
    dropped: dict[str, int] = {}
    for cause, n in sorted(drops.items()):
        if cause == "send_failed":  # to members that had gone: their losses are in lost_with_close
            continue
        if cause == "redis_unavailable":  # counted per message: each was lost for the whole room
            n *= room_size
        dropped[cause] = 0
        for i, waiting in enumerate(unexplained_yet):
            credit = min(n, waiting)
            unexplained_yet[i] -= credit
            n -= credit
            dropped[cause] += credit
    left_skipped, missing_open, left_only = unexplained_yet
    return dropped, missing_open, left_only, left_skipped


def settle(counters: Counter | dict, server: dict) -> Ledger:
    """The final ledger from the merged room counters and the server's /stats difference.

    `server` holds the run's /stats deltas: `drops` by cause, `deliveries`, `messages_in`, and
    the `backlog` gauge at the end, plus the clients' `client_sent` and `room_size`; with
    `message_bytes` over `max_message_bytes`, a sender's close is the size limit refusing it.
    Missing deliveries of members still open at the end are explained first by the server's
    counted drops, then as in flight, but only as far as the counters show messages that
    were still on their way when the rooms settled (sent but not read by the server, in a
    backlog, or handed to the transport but not yet read by the member, or, with
    `redis_leg_intact`, read by a server but not yet out of Redis); the rest is unexplained, as is
    a delivery a member that left had skipped and no drop explains (see credit_drops).
    """
    from bench.record import Ledger, Loss  # here: the load generator imports this module, not pydantic (0.15 s a run)
    c = Counter(counters)
    dropped, remaining, left_without, skipped = credit_drops(
        server.get("drops", {}), server.get("room_size", 1), c["missing_open"], c["lost_recipient_left"],
        c["left_skipped"])
    # without the servers' own figures (a server died) nothing is shown to be on its way
    on_the_way = (
        max(0, server.get("client_sent", 0) - server["messages_in"]) * server.get("room_size", 1)
        + max(0, server.get("deliveries", 0) - c["received_at_settle"])
        + server.get("backlog", 0)
        # app mode: read, still being stored, then owed to the whole room (CONTRACT.md /stats `app.storing`)
        + (server.get("app") or {}).get("storing", 0) * server.get("room_size", 1)
    ) if "messages_in" in server else 0
    in_flight = min(remaining, on_the_way)
    # Between processes a message a server read may still be inside Redis (an inbox, the pub/sub leg),
    # which no process counts: inferred from the servers' own counters, and only when the run's Redis
    # evidence shows the leg intact (no subscriber closed for falling behind or lost by a server), since
    # a closed subscriber loses what Redis held for it and nothing would tell those apart. The servers'
    # counters only say that while every message was owed to a full room of open members: not with
    # members that left, closed or never connected, whose deliveries the servers abandoned uncounted.
    through_redis = 0
    full_rooms = not c["left"] and not c["lost_recipient_left"] and not any(
        n for k, n in c.items() if isinstance(k, tuple) and k[0].startswith("lost_"))
    if server.get("redis_leg_intact") and full_rooms and "messages_in" in server:
        room = server.get("room_size", 1)
        counted = sum(n * (room if cause == "redis_unavailable" else 1)
                      for cause, n in server.get("drops", {}).items() if cause != "send_failed")
        read_not_out = server["messages_in"] * room - server["deliveries"] - counted - server.get("backlog", 0)
        through_redis = min(remaining - in_flight, max(0, read_not_out))
    in_flight += through_redis
    oversize = server.get("message_bytes", 0) > server.get("max_message_bytes", float("inf"))
    lost: list[Loss] = []
    for (family, code), n in sorted((k, n) for k, n in c.items() if isinstance(k, tuple) and n):
        if family == "lost_sender_closed":
            lost.append(Loss(code=code, cause="refused by size limit" if oversize else "sender closed", count=n))
        elif family == "lost_recipient_closed":
            lost.append(Loss(code=code, cause="recipient closed", count=n))
    if left_without:  # beyond what the server's drops explain
        lost.append(Loss(code=1000, cause="recipient left before they arrived", count=left_without))
    unexplained = remaining - in_flight + skipped
    return Ledger(
        expected=c["expected"],
        delivered=c["delivered"],
        dropped_by_server=dropped,
        lost_with_close=lost,
        in_flight=in_flight,
        in_flight_through_redis=through_redis,  # of in_flight, inferred (see above)
        unexplained=unexplained,
        duplicates=c["duplicates"],
        reordered=c["reordered"],
        # of the missing deliveries of open members, those owed to members that never read or read
        # slowly (the slow scenario): everything else missing was owed to members that read everything
        owed_to_nonreading=c["missing_reader", "none"],
        owed_to_slow_readers=c["missing_reader", "slow"],
        # in flight is late, not lost: loss is what will never arrive
        loss_pct=100.0 * (c["expected"] - c["delivered"] - in_flight) / c["expected"] if c["expected"] else 0.0,
        in_flight_pct=100.0 * in_flight / c["expected"] if c["expected"] else 0.0,
    )
