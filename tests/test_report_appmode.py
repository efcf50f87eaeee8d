"""The report shows what the bench records for issues 12 and 13: searched capacities, where the CPU goes, and
claims 0, 7c and 7d, read from a real results file; and a results file without them still renders, saying
what was not measured and how to measure it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from markupsafe import escape

from bench.record import AppStages, DbConnections, Handshakes, Results, StageTime
from bench.report import write_report
from bench.report.answer import answer
from bench.report.claims import HOLDS, UNMEASURED, claims
from bench.report.claims.auth import pace, per_handshake
from bench.report.claims.premise import NONE, THREAD_POOL, bottleneck, connections_table
from bench.report.numbers import fmt
from bench.report.runs import target_names
from bench.report.searched import bracket

# `python -m bench --targets django,django-uvicorn,fastapi,reference,django-app,fastapi-app --quick
# --no-harness` on the shared 2-core machine (figures noisy); each run's `samples` dropped, flame graphs kept.
FULL = Path(__file__).parent / "data" / "results_full_v2.json"
SAMPLE = Path(__file__).parent / "data" / "sample_results.json"


@pytest.fixture(scope="module")
def full() -> Results:
    return Results.load(FULL)


@pytest.fixture(scope="module")
def html(full, tmp_path_factory) -> str:
    return write_report(full, tmp_path_factory.mktemp("full"))["html"].read_text()


def section(html: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert found, anchor
    return found.group(1)


def test_capacity_section_shows_each_searched_number_and_bracket(full, html):
    part = section(html, "capacity")
    assert full.capacities
    for cap in full.capacities:
        row = re.search(rf"{re.escape(cap.target)}</th>(.*?)</tr>", part, re.S).group(1)
        assert fmt("rate", cap.deliveries_per_s(cap.passed)) + " deliveries/s" in row
        assert str(escape(bracket(cap))) in row
        assert ("client-bound" in row) == cap.client_bound
        assert ("not converged" in row) == (not cap.converged)
        probes = re.search(rf"{re.escape(cap.target)}: (\d+) probes", part)
        assert probes and int(probes.group(1)) == len(cap.probes)
    assert "<svg" in part and "every probe of the search" in part


def test_headline_capacity_is_the_searched_one(full):
    rows = {r.target: r for r in answer(full).rows}
    for cap in full.capacities:
        assert rows[cap.target].capacity.text == fmt("rate", cap.deliveries_per_s(cap.passed))
        assert rows[cap.target].capacity_value.median == cap.deliveries_per_s(cap.passed)
        assert ("not converged within ±10%" in rows[cap.target].capacity.note) == (not cap.converged)
    converged = full.model_copy(deep=True)  # the file's searches all ran out of runs: one that converged
    converged.capacities[0].converged = True
    row = next(r for r in answer(converged).rows if r.target == converged.capacities[0].target)
    assert "converged" not in row.capacity.note and "failed first" in row.capacity.note


def test_a_capacity_says_under_its_number_whether_it_was_held(full):
    """The file's searches ran before holds (format 2): every number is indicative, not held, and says so;
    one held for 15 s says that instead."""
    for row in answer(full).rows:
        if row.capacity_value is not None:
            assert "not held" in row.capacity.flags and "indicative, not held" in row.capacity.note, row.target
    held = full.model_copy(deep=True)
    held.capacities[0].held, held.capacities[0].hold_s = True, 15.0
    row = next(r for r in answer(held).rows if r.target == held.capacities[0].target)
    assert "not held" not in row.capacity.flags and "held 15 s" in row.capacity.note


def test_layer_table_has_a_row_per_profiled_target_with_its_figures(full, html):
    part = section(html, "layers")
    found = {r.target: r.profile for r in full.runs if r.profile and r.profile.layers_us}
    assert {"django", "django-uvicorn", "fastapi", "reference"} <= set(found)
    names = re.findall(r'<th class="num">([^<]+)</th>', re.search(r"<thead>(.*?)</thead>", part, re.S).group(1))
    rows = re.findall(r'<tr><th><span class="marker"[^>]*>[^<]*</span>([\w-]+)(.*?)</tr>', part, re.S)
    assert [t for t, _ in rows] == [t for t in target_names(full) if t in found]  # the report's target order
    for target, row in rows:
        cells = dict(zip(names, re.findall(r'<td class="num">(?:<b>)?([^<]*)', row), strict=True))
        for layer, us in found[target].layers_us.items():
            assert cells[layer] == fmt("us", us), (target, layer)
        assert cells["total"] == fmt("us", sum(found[target].layers_us.values()))
    assert part.count("<details class=\"flame\"") == sum(bool(p.flame_svg) for p in found.values())
    assert "the reference&#39;s" in part and "It is " in part  # the floor, and daphne or Channels answered


def test_premise_authentication_and_clarity_have_real_figures(full):
    found = {cl.number: cl for cl in claims(full)}
    for n in ("0", "7c", "7d"):
        assert found[n].verdict != UNMEASURED and found[n].figures, n
    assert any("per stored message" in f and "µs waiting" in f for f in found["0"].figures)
    assert any("django → django-app" in f for f in found["0"].figures)
    assert any("per signed-in handshake" in f and "django-app ≤" in f for f in found["0"].figures)
    assert found["7d"].sources == {k: v for k, v in full.code.sign_in.items() if v}
    assert any("sign-in storm" in f and "ms per handshake" in f for f in found["7d"].figures)
    assert found["7d"].verdict == HOLDS  # both keep out the same handshakes; Channels ships its sign-in
    metrics = found["7c"].tables[0].rows
    assert [r[2] for r in metrics] == [str(p.sloc) for p in full.code.parts]


def test_security_table_matches_the_record(full, html):
    table = next(t for cl in claims(full) if cl.number == "7d" for t in cl.tables)
    assert full.security
    targets = table.head[1:]
    for check in full.security:
        row = next(r for r in table.rows if r[0] == check.check)
        cell = row[1 + targets.index(check.target)]
        assert cell.startswith("✓" if check.passed else "✗") and str(check.got) in cell
    claim = re.search(r'id="claim-7d">(.*?)</details>\s*<details class="claim"', html, re.S).group(1)
    assert all(c.check in claim for c in full.security)
    assert "<pre>" in claim and str(escape(next(iter(next(iter(full.code.sign_in.values())).values()))))[:200] \
        in claim  # the sign-in code, verbatim and escaped


def test_bottleneck_follows_the_figures(full):
    """Storing that leaves the capacity within the tolerance bounds nothing; a wait longer than every other
    part is the thread pool."""
    data = copy.deepcopy(full)
    relay = next(c for c in data.capacities if c.target == "django")
    app = next(c for c in data.capacities if c.target == "django-app")
    app.passed = relay.passed
    assert bottleneck(data, "django-app")[0] == NONE
    app.passed = relay.passed / 4
    for r in data.runs:
        if r.target == "django-app" and r.server.delta:
            r.server.delta.app.stages = AppStages(wait=StageTime(seconds=100.0, count=1),
                                                  db=StageTime(seconds=0.001, count=1))
    assert bottleneck(data, "django-app")[0] == THREAD_POOL


def test_a_relay_only_format_1_file_says_what_was_not_measured(tmp_path):
    html = write_report(Results.load(SAMPLE), tmp_path)["html"].read_text()
    assert "Not measured in this run" in section(html, "layers")
    assert "ramp-profile" in section(html, "layers")
    claims_part = section(html, "claims")
    for n in ("0", "7c", "7d"):
        block = re.search(rf'id="claim-{n}">(.*?)</div></div>|id="claim-{n}">(.*?)$', claims_part, re.S)
        assert block and "not measured in this run" in block.group(0), n


def test_the_thread_pool_knob_and_history_on_join_are_reported_when_measured(full):
    data = copy.deepcopy(full)
    base = next(c for c in data.capacities if c.target == "django-app")
    info = data.targets["django-app"].model_copy(deep=True)
    info.env["ASGI_THREADS"] = "64"
    data.targets["django-app-threads"] = info
    data.capacities.append(base.model_copy(update={"target": "django-app-threads", "passed": base.passed * 1.02}))
    runs = [r.model_copy(deep=True, update={"target": "django-app-threads"}) for r in data.runs
            if r.target == "django-app" and r.scenario == "ramp"]
    joined = runs[0].model_copy(deep=True, update={"target": "django-app", "scenario": "history",
                                                   "history_received": 1234})
    joined.history_ms.p95 = 87.5
    data.runs += [*runs, joined]
    figures = next(cl for cl in claims(data) if cl.number == "0").figures
    assert any("django-app-threads (ASGI_THREADS=64)" in f and "does not move it" in f for f in figures)
    assert any("history on join" in f and "1,234 stored messages" in f and "p95 87.5 ms" in f for f in figures)
    data.capacities[-1].passed = base.passed * 2
    figures = next(cl for cl in claims(data) if cl.number == "0").figures
    assert any("django-app-threads" in f and "the knob moves it" in f for f in figures)


def test_a_client_bound_edge_is_called_a_floor_not_the_servers_capacity(full, tmp_path):
    data = copy.deepcopy(full)
    data.capacities[0].client_bound = True
    part = section(write_report(data, tmp_path)["html"].read_text(), "capacity")
    row = re.search(rf"{re.escape(data.capacities[0].target)}</th>(.*?)</tr>", part, re.S).group(1)
    assert "client-bound" in row and "a floor, not the server" in row


def test_a_verdict_that_flips_between_relay_and_app_mode_is_said(full):
    found = {cl.number: cl for cl in claims(full)}
    assert "App mode agrees" in found["7a"].why and "flips" not in found["8"].why
    data = copy.deepcopy(full)
    for r in data.runs:
        if r.target == "django-app" and r.profile:
            r.server.cpu_us_per_delivery = 1.0  # cheaper than fastapi-app at its capacity
    found = {cl.number: cl for cl in claims(data)}
    assert "flips between relay and app mode: FastAPI is cheaper per delivery as a relay, Channels" in \
        found["7a"].why
    assert "flips between relay and app mode" in found["8"].why


def test_the_markdown_summary_has_the_layers_and_the_security_checks(full, tmp_path):
    md = write_report(full, tmp_path)["md"].read_text()
    layers = md.split("## Where the CPU goes", 1)[1].split("\n## ", 1)[0]
    for r in full.runs:
        if r.profile and r.profile.layers_us:
            assert f"| {r.target} | {fmt('us', r.profile.layers_us['server'])} |" in layers
    for c in full.security:
        assert f"| {c.check} |" in md


def test_sampling_and_statement_counts_are_said_as_recorded(full):
    """How often the runs were sampled comes from the record, a storm sampled with nothing accepted is not
    called unsampled, and a PostgreSQL run without statement counts says none were counted."""
    data = copy.deepcopy(full)
    apps = [r for r in data.runs if r.target in ("django-app", "fastapi-app")]
    for r in apps:
        r.db_connections = DbConnections(before=1, after=2, after_states={"idle": 2}, peak=5, peak_active=3)
        r.sample_interval_s = 0.25
    found = next(cl for cl in claims(data) if cl.number == "0")
    assert "pg_stat_activity, sampled every 0.25 s)" in connections_table(data).caption
    assert any("sampled every 0.25 s through" in f for f in found.figures)
    assert any("django-app at capacity: the database's statements were not counted" in f for f in found.figures)
    apps[0].sample_interval_s = None  # an older record: how often is not known
    assert "pg_stat_activity, sampled)" in connections_table(data).caption
    storm = next(r for r in apps if r.scenario == "signin")
    storm.handshakes = None
    assert pace(storm) == "handshakes/s not sampled" and per_handshake(storm) == "not counted"
    storm.handshakes = Handshakes()
    assert pace(storm) == "no handshake accepted"


def plain(found) -> dict[str, str]:
    """The plain answer's questions, each with its words (the links' text included, the links dropped)."""
    return {q.asks: " ".join("".join(text for text, _ in s) for s in q.sentences) for q in found.questions}


def times(more: float, less: float) -> str:
    """"3.2×": how many times `less` goes into `more`, written out here rather than with the report's own helper."""
    assert more > less
    return f"{more / less:.1f}×" if more / less < 10 else f"{more / less:,.0f}×"


def test_the_answer_opens_in_plain_words_written_from_the_figures(full, tmp_path):
    held = full.model_copy(deep=True)
    for cap in held.capacities:
        cap.held, cap.hold_s = True, 15.0
    found = answer(held)
    words = plain(found)
    dps = {c.target: c.deliveries_per_s(c.passed) for c in held.capacities}
    relay, stored = words["Which carries more chat, as a relay?"], words["And with sign-in and stored messages?"]
    assert f"fastapi (FastAPI) carries {times(dps['fastapi'], dps['django'])} the chat of django (Channels)" in relay
    assert f"{fmt('rate', dps['fastapi'])} deliveries/s (held for 15 s) against {fmt('rate', dps['django'])}" in relay
    assert "most of the difference is in its " in relay and " layer, " in relay  # why: the layer that costs
    assert " on one server process each: " in relay
    two = held.model_copy(deep=True)  # a target on two processes (a Redis one) is not said to run on one
    two.targets["fastapi"].processes = 2
    assert " on 2 server processes against 1 server process: " in plain(answer(two))[
        "Which carries more chat, as a relay?"]
    assert f"{times(dps['fastapi-app'], dps['django-app'])} the chat of django-app" in stored
    assert "in the database call" in stored  # where a stored message's time goes
    members = fmt("int", round(dps["django"] / (10 / 60), -2))
    assert f"Channels carries {members} members as a relay (django: 1 server process, " in words[
        "When is Channels enough?"]
    assert "in rooms of 10, each member sending 1 message a minute" in words["When is Channels enough?"]
    assert "a member who stops reading" in words["What happens when a member stops reading, or a message is too "
                                                 "large?"]
    links = [link for q in found.questions for s in q.sentences for _, link in s if link]
    assert {"#capacity", "#layers"} <= set(links)  # each figure links to its proof

    halved = held.model_copy(deep=True)  # the words follow the figures: nothing in them is written in
    next(c for c in halved.capacities if c.target == "django").passed /= 2
    assert f"{times(dps['fastapi'], dps['django'] / 2)} the chat of django" in plain(answer(halved))[
        "Which carries more chat, as a relay?"]
    page = write_report(held, tmp_path)["html"].read_text()
    opening = section(page, "answer")
    assert opening.index("Which carries more chat") < opening.index('<table class="cmp headline">')


def test_an_indicative_capacity_is_not_turned_into_members(full):
    """Without a held capacity the answer compares, saying "indicative, not held", and sizes nothing."""
    words = plain(answer(full))
    assert "indicative, not held" in words["Which carries more chat, as a relay?"]
    assert "When is Channels enough?" not in words
