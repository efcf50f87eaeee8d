"""The answer in plain words, written from the figures: for each question the report answers, two or three
sentences, each figure linked to the section that proves it. Which stack carries more chat per core as a
relay and with storage, by how much and why (the layer where the difference goes); what each does when a
member stops reading or a message is too large; and when Channels is enough. A question whose figures did
not run is left out, never answered with a guess."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.record import Results, searched
from bench.report.appmode import app_targets, at_capacity, relay_targets, stages
from bench.report.browsers import agreed
from bench.report.headline import Row, Segment
from bench.report.layers import Column, layers_view
from bench.report.numbers import fmt, ratio
from bench.report.repeats import differ, held_capacity
from bench.report.runs import info, ran
from bench.report.tuned import best_configuration, change, change_made

CHANNELS, FASTAPI = "Channels", "FastAPI"
PER_MINUTE = 1.0  # messages a member sends a minute in "when Channels is enough": a busy chat, not a firehose


@dataclass
class Question:
    asks: str
    sentences: list[list[Segment]]


def first(targets: list[str], rows: dict[str, Row]) -> Row | None:
    """A stack's headline target of a kind: the first that ran with a held or indicative capacity."""
    return next((rows[t] for t in targets if t in rows and rows[t].capacity_value), None)


def held_words(data: Results, target: str) -> str:
    """" (held for 15 s)" or " (indicative, not held)" for a searched capacity; "" for a stepped ramp's."""
    cap = searched(data, target)
    if cap is None:
        return ""
    return f" (held for {cap.hold_s:g} s)" if cap.held and cap.hold_s else " (indicative, not held)"


def comparison(data: Results, fast: Row, slow: Row, what: str) -> list[Segment]:  # fast: carries more
    """"As a relay, fastapi carries 8.9× the chat of django …: 42,800 deliveries/s against 4,820 (…)"."""
    a, b = fast.capacity_value, slow.capacity_value
    assert a is not None and b is not None  # `first` picked rows with a capacity
    cap = searched(data, fast.target)
    room = f"; rooms of {cap.room_size}, RTT p95 under {fmt('ms', cap.slo_p95_ms)} ms, nothing lost" if cap else ""
    took: list[Segment] = [(f"{fast.capacity.text} deliveries/s{held_words(data, fast.target)}", fast.capacity.link)]
    if not b.median:
        return [(f"{what}, {fast.target} ({fast.stack}) carries ", ""), *took,
                (f"; {slow.target} ({slow.stack}) was ", ""),
                (f"over the SLO from the first load tried ({slow.capacity.note})", slow.capacity.link),
                (f"{room}.", "")]
    if differ(a, b):
        lead: list[Segment] = [(f"{what}, {fast.target} ({fast.stack}) and {slow.target} ({slow.stack}) carry "
                                "the same chat within the runs' spread: ", "")]
    else:
        lead = [(f"{what}, {fast.target} ({fast.stack}) carries ", ""),
                (f"{ratio(b.median, a.median)} the chat of {slow.target} ({slow.stack})", "#capacity"),
                (f" on {on_processes(data, fast.target, slow.target)}: ", "")]
    return lead + took + [(" against ", ""),
                          (f"{slow.capacity.text}{held_words(data, slow.target)}", slow.capacity.link),
                          (f"{room}.", "")]


def processes(data: Results, target: str) -> str:
    n = info(data, target).processes
    return f"{n} server process{'es' * (n != 1)}"


def on_processes(data: Results, one: str, other: str) -> str:
    """"one server process each", or each target's count where they differ (a Redis target runs two)."""
    if info(data, one).processes != info(data, other).processes:
        return f"{processes(data, one)} against {processes(data, other)}"
    return "one server process each" if info(data, one).processes == 1 else f"{processes(data, one)} each"


def widest_layer(costly: Column, cheap: Column) -> tuple[str, float, float] | None:
    """The layer where the costlier target spends the most µs per delivery more than the cheaper one."""
    gaps = [(layer, us, cheap.layers.get(layer, 0.0)) for layer, us in costly.layers.items()]
    return max(gaps, key=lambda g: g[1] - g[2], default=None)


def why(cols: dict[str, Column], one: Row, other: Row) -> list[Segment]:
    """Why, in the layer that costs: "A django delivery costs its server 171 µs of CPU against fastapi's
    19 µs; most of the difference is in its framework layer, 120 µs, where fastapi spends 4 µs"."""
    if not (one.cost_value and other.cost_value):
        return []
    costly, cheap = (one, other) if one.cost_value.median >= other.cost_value.median else (other, one)
    out: list[Segment] = [(f"A {costly.target} delivery costs its server ", ""),
                          (f"{costly.cost.text} of CPU", costly.cost.link),
                          (f" against {cheap.target}'s ", ""), (cheap.cost.text, cheap.cost.link)]
    if cheap.target in cols and costly.target in cols and (gap := widest_layer(cols[costly.target],
                                                                                 cols[cheap.target])):
        layer, mine, theirs = gap
        out += [("; most of the difference is in ", ""),
                (f"its {layer} layer, {fmt('us', mine)} µs, where {cheap.target} spends {fmt('us', theirs)} µs",
                 "#layers")]
    return out + [(".", "")]


def stored_wait(data: Results, row: Row) -> list[Segment]:
    """Where a stored message's time goes: "fastapi-app's stored message waits 36 ms for a pooled connection
    and 8.5 ms in the database call"."""
    found = stages(at_capacity(data, row.target))
    if found is None or found.wait_us is None or found.db_us is None:
        return []
    return [(f"{row.target}'s stored message waits ", ""),
            (f"{fmt('ms', found.wait_us / 1e3)} ms for {found.wait_for or 'a worker'} and "
             f"{fmt('ms', found.db_us / 1e3)} ms in the database call", "#claim-0")]


def pair(data: Results, rows: dict[str, Row], kind: Callable[[Results, str], list[str]]) -> tuple[Row, Row] | None:
    """Each stack's headline target of a kind (relay or app), the one that carries more first."""
    one, other = first(kind(data, FASTAPI), rows), first(kind(data, CHANNELS), rows)
    if one is None or other is None:
        return None
    carried = lambda r: r.capacity_value.median if r.capacity_value else 0.0  # noqa: E731
    return (one, other) if carried(one) >= carried(other) else (other, one)


def best_tuned(data: Results, rows: dict[str, Row], stack: str, against: Row,
               kind: Callable[[Results, str], list[str]] = relay_targets) -> list[Segment]:
    """"Tuned (…), the best Channels measured, django-tuned, carries 4,200 deliveries/s, +15% over django;
    fastapi still carries 9.6× that." (CONTRACT.md "Tuned"); [] unless a tuned target of the stack held more than
    its stock one."""
    stock = first(kind(data, stack), rows)
    found = best_configuration(data, stock.target) if stock else None
    if stock is None or found is None or found[0] == stock.target or found[0] not in rows \
            or against.capacity_value is None:
        return []
    best = rows[found[0]]
    value, theirs = held_capacity(data, best.target), against.capacity_value.median
    assert value is not None  # best_configuration found it held
    than = (f"{against.target} still carries {ratio(value.median, theirs)} that" if theirs > value.median
            else f"more than {against.target}'s {against.capacity.text}")
    if (found := best_configuration(data, against.target)) and found[0] != against.target:
        best_other, most = found
        than += (f", and {against.stack} tuned, {best_other}, {ratio(value.median, most)}" if most > value.median
                 else f", and more than {against.stack} tuned, {best_other}'s {fmt('rate', most)}")
    return [(f"Tuned ({change_made(data, best.target)}), the best {stack} configuration "
             f"measured, {best.target}, carries ", ""),
            (f"{best.capacity.text} deliveries/s", "#tuned"),
            (f", {change(held_capacity(data, stock.target), value)} against stock {stock.target}; {than}.", "")]


def relay(data: Results, rows: dict[str, Row], cols: dict[str, Column]) -> Question | None:
    if (found := pair(data, rows, relay_targets)) is None:
        return None
    fast, slow = found
    said = [comparison(data, fast, slow, "As a relay"), why(cols, fast, slow),
            best_tuned(data, rows, slow.stack, fast)]
    return Question("Which carries more chat, as a relay?", [s for s in said if s])


def stored(data: Results, rows: dict[str, Row], cols: dict[str, Column]) -> Question | None:
    if (found := pair(data, rows, app_targets)) is None:
        return None
    fast, slow = found
    waits = [s for s in (stored_wait(data, fast), stored_wait(data, slow)) if s]
    said: list[list[Segment]] = [comparison(data, fast, slow, "With members signed in and every message stored"),
                                 why(cols, fast, slow)]
    if waits:
        said.append(waits[0] + ([("; ", "")] + waits[1] if len(waits) > 1 else []) + [(".", "")])
    said.append(best_tuned(data, rows, slow.stack, fast, app_targets))
    return Question("And with sign-in and stored messages?", [s for s in said if s])


def trouble(rows: dict[str, Row]) -> Question | None:
    """What a member who stops reading, and a message too large, do to each stack's relay."""
    said: list[list[Segment]] = []
    for stack in (CHANNELS, FASTAPI):
        row = next((r for r in rows.values() if r.stack == stack and r.slow.text != "not measured"), None)
        if row is None:
            continue
        sentence: list[Segment] = [(f"On {stack} ({row.target}), a member who stops reading: the server ", ""),
                                   (f"{row.slow.text} ({row.slow.note})", row.slow.link)]
        if row.largest.text not in ("not measured", ""):
            sentence += [("; the largest message delivered whole is ", ""), (row.largest.text, row.largest.link)]
            if row.largest.note:
                sentence += [(f", and {row.largest.note}", "")]
        said.append(sentence + [(".", "")])
    return Question("What happens when a member stops reading, or a message is too large?", said) if said else None


def enough(data: Results, rows: dict[str, Row]) -> Question | None:
    """Channels' held capacities as members of a chat where each sends PER_MINUTE messages a minute: a delivery
    per member of the room (the sender's echo too), so members = deliveries/s ÷ (room size × rate)."""
    said: list[Segment] = []
    rooms: set[int] = set()
    for targets, what in ((relay_targets(data, CHANNELS), "as a relay"),
                          (app_targets(data, CHANNELS), "with every message stored")):
        row = first(targets, rows)
        cap = searched(data, row.target) if row else None
        if row is None or cap is None or not cap.held or row.capacity_value is None:
            continue
        members = row.capacity_value.median / (cap.room_size * PER_MINUTE / 60)
        rooms.add(cap.room_size)
        said += [("; " if said else "Channels carries ", ""),
                 (f"{fmt('int', round(members, -2))} members", row.capacity.link),
                 (f" {what} ({row.target}: {processes(data, row.target)}, {row.capacity.text} deliveries/s "
                  "held)", "")]
    if not said:
        return None
    return Question("When is Channels enough?", [said + [(
        f", in rooms of {' or '.join(map(str, sorted(rooms)))}, each member sending {PER_MINUTE:g} message a "
        "minute. That counts deliveries only: the memory of the connections and a connection storm come on top.",
        "")]])


def as_browsers(data: Results, rows: dict[str, Row]) -> Question | None:
    """Each stack's target met as a browser meets it (wss://, deflate offered) against its plain target: "fastapi-
    browser carries 11,020 deliveries/s (held for 15 s), 38% of fastapi's 28,800 over plain ws:// (the server
    agreed: deflate, 12-bit windows)"."""
    said: list[Segment] = []
    for target in ran(data):
        about = info(data, target)
        row, plain = rows.get(target), rows.get(about.base)
        if not (about.browser and about.tls) or row is None or plain is None:
            continue
        if row.capacity_value is None or plain.capacity_value is None or not plain.capacity_value.median:
            continue
        share = row.capacity_value.median / plain.capacity_value.median
        granted = agreed(data.runs_of(target=target))
        said += [("; " if said else "Met as a browser meets it (wss://, permessage-deflate offered as Chromium "
                  "offers it), ", ""),
                 (f"{target} carries ", ""),
                 (f"{row.capacity.text} deliveries/s{held_words(data, target)}", row.capacity.link), (", ", ""),
                 (f"{'at most ' * plain.capacity.text.startswith('≥')}{share:.0%} of {plain.target}'s "
                  f"{plain.capacity.text} over plain ws://", "#browsers"),
                 (" (the server declined compression)" if granted == "declined" else f" (the server agreed: {granted})",
                  "")]
    return Question("And as browsers connect?", [said + [(".", "")]]) if said else None


def plain_answer(data: Results, rows: list[Row]) -> list[Question]:
    by_target = {r.target: r for r in rows}
    cols = {c.target: c for c in layers_view(data).columns}  # where each target's CPU goes, for the why
    found = [relay(data, by_target, cols), stored(data, by_target, cols), as_browsers(data, by_target),
             trouble(by_target), enough(data, by_target)]
    return [q for q in found if q is not None]
