"""The report's "Each stack tuned": a tuned target beside the stock one it changes (its record's `tunes`),
its held capacity and its cost and round trip at the fixed load, each against stock; and the plain answer's
sentence on the best Channels configuration. The tuned target's figures are the stock ones, rescaled here."""

from __future__ import annotations

import re
from pathlib import Path

from bench.record import Results, probe_runs, searched
from bench.report import write_report
from bench.report.answer import answer
from bench.report.claims import claims
from bench.report.tuned import tuned_view

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"


def with_tuned(capacity_gain: float, cost_gain: float, stock: str = "django", data: Results | None = None) -> Results:
    """The bench's results, plus `stock`-tuned: its runs and capacity with the gains applied."""
    data = data or Results.load(BENCH)
    tuned = f"{stock}-tuned"
    for run in [r for r in data.runs if r.target == stock and r.scenario in ("steady", "ramp")]:
        copy = run.model_copy(deep=True)
        copy.target = tuned
        if copy.server.cpu_us_per_delivery:
            copy.server.cpu_us_per_delivery *= cost_gain
        data.runs.append(copy)
    cap = next(c for c in data.capacities if c.target == stock).model_copy(deep=True)
    cap.target = tuned
    cap.passed *= capacity_gain
    cap.probes = [p.model_copy(update={"rate": p.rate * capacity_gain}) for p in cap.probes]
    data.capacities.append(cap)
    data.targets[tuned] = data.targets[stock].model_copy(deep=True, update={
        "tunes": stock, "about": "tuned: deliveries skip Channels' per-event hop to its database thread"})
    return data


def test_a_tuned_target_reads_against_its_stock_target_one_change_a_row(tmp_path):
    data = with_tuned(capacity_gain=1.5, cost_gain=0.6)
    (table,) = tuned_view(data)
    stock, tuned = table.rows
    assert (stock.target, stock.change, tuned.target) == ("django", "stock", "django-tuned")
    assert "database thread" in tuned.change and table.fixed_load.startswith("steady: 200 members in rooms of 10")
    assert tuned.capacity_gain == "+50%" and tuned.cost_gain == "-40%" and tuned.p95_gain == "not significant"
    words = " ".join("".join(t for t, _ in s) for q in answer(data).questions for s in q.sentences)
    assert re.search(r"the best Channels configuration measured, django-tuned, carries [\d,]+ deliveries/s, "
                     r"\+50% against stock django; fastapi still carries [\d.]+× that\.", words), words
    html = write_report(data, tmp_path)["html"].read_text()
    section = html[html.index('<section id="tuned">'):html.index("</section>", html.index('<section id="tuned">'))]
    assert "django-tuned" in section and "+50%" in section and "-40%" in section


def test_a_change_inside_the_spread_is_not_significant_and_no_tuned_target_says_how_to_run_one(tmp_path):
    (table,) = tuned_view(with_tuned(capacity_gain=1.04, cost_gain=0.97))
    assert table.rows[1].capacity_gain == "not significant" and table.rows[1].cost_gain == "not significant"
    html = write_report(Results.load(BENCH), tmp_path)["html"].read_text()
    assert "No tuned target in this run: <code>make bench-full</code> runs them" in html


def test_a_tuned_target_that_breaks_the_contract_is_labelled_and_never_the_best():
    data = with_tuned(capacity_gain=1.5, cost_gain=0.6)
    data.targets["django-tuned"].breaks = "no message-size limit"
    (table,) = tuned_view(data)
    assert table.rows[1].change.endswith("breaks the contract, so not a result: no message-size limit")
    words = " ".join("".join(t for t, _ in s) for q in answer(data).questions for s in q.sentences)
    assert "best Channels configuration" not in words


def test_a_change_made_over_a_tuned_target_reads_against_that_target_in_the_stock_targets_table():
    data = with_tuned(capacity_gain=1.5, cost_gain=0.6)
    for run in [r for r in data.runs if r.target == "django-tuned"]:
        data.runs.append(run.model_copy(deep=True, update={"target": "django-tuned-direct"}))
    cap = next(c for c in data.capacities if c.target == "django-tuned")
    data.capacities.append(cap.model_copy(deep=True, update={"target": "django-tuned-direct"}))
    data.targets["django-tuned-direct"] = data.targets["django-tuned"].model_copy(deep=True, update={
        "tunes": "django-tuned", "about": "tuned: and group_send hands each member's queue the message"})
    (table,) = tuned_view(data)  # one table: django's, with the chain in it
    assert [(r.target, r.over) for r in table.rows] == [
        ("django", ""), ("django-tuned", "django"), ("django-tuned-direct", "django-tuned")]
    assert table.rows[1].capacity_gain == "+50%"
    assert table.rows[2].capacity_gain == "not significant"  # the same figures as what it is made over


def test_the_premise_and_the_stored_answer_are_reread_with_each_stack_at_its_best():
    """Claim 0 and "with sign-in and stored messages" say where each stack's best tuned app target leaves the
    verdict (CONTRACT.md "Tuned"); here tuned Channels triples and tuned FastAPI stays put."""
    data = Results.load(BENCH)
    for cap in data.capacities:
        cap.held = True  # the sample's app capacities, as if each had been held
    data = with_tuned(3.0, 0.5, "django-app", with_tuned(1.0, 1.0, "fastapi-app", data))
    premise = next(c for c in claims(data) if c.number == "0")
    assert "Each stack at its best measured in app mode, Channels as django-app-tuned takes" in premise.why, \
        premise.why
    stock_ch, stock_fa = (next(c.passed for c in data.capacities if c.target == t) for t in ("django-app",
                                                                                              "fastapi-app"))
    expected = "FastAPI still takes" if stock_fa > 3.0 * stock_ch * 1.1 else "tuned"
    assert expected in premise.why.split("Each stack at its best")[1]
    words = " ".join("".join(t for t, _ in s) for q in answer(data).questions for s in q.sentences)
    assert "the best Channels configuration measured, django-app-tuned" in words, words


def test_a_change_made_over_a_tuned_target_that_did_not_run_reads_against_the_nearest_that_did():
    """make bench runs django-tuned-direct (made over django-tuned) without django-tuned: it reads against django."""
    data = with_tuned(capacity_gain=1.5, cost_gain=0.6)
    data.targets["django-tuned"].about = "tuned: as django-tuned, and group_send hands each member's queue the message"
    data.targets["django-tuned"].lineage = ["django-tuned-that-did-not-run", "django"]
    (table,) = tuned_view(data)
    assert [(r.target, r.over) for r in table.rows] == [("django", ""), ("django-tuned", "django")]
    assert table.rows[1].capacity_gain == "+50%"


def searched_again(data: Results, target: str, *gains: float) -> Results:
    """`target`'s capacity searched once more per gain: a copy of its search, and of that search's runs, at its
    rates × the gain (bench-full searches each capacity an ablation compares several times)."""
    first = next(c for c in data.capacities if c.target == target)
    runs = [r for r in data.runs if r.target == target and r.scenario == first.scenario]
    for gain in gains:
        again = first.model_copy(deep=True, update={"passed": first.passed * gain})
        again.probes = [p.model_copy(update={"rate": p.rate * gain}) for p in first.probes]
        data.capacities.append(again)
        for run in runs:
            copy = run.model_copy(deep=True)
            copy.params.rate *= gain
            data.runs.append(copy)
    return data


def test_a_capacity_searched_three_times_shows_its_range_and_the_gain_is_read_against_it():
    data = searched_again(with_tuned(capacity_gain=1.5, cost_gain=0.6), "django", 1.1, 1.2)
    data = searched_again(data, "django-tuned", 0.9, 1.1)
    second = [c for c in data.capacities if c.target == "django"][1]
    assert searched(data, "django") is second  # of 1, 1.1 and 1.2 times its capacity, the median is the one quoted
    (table,) = tuned_view(data)
    stock, tuned = table.rows
    assert re.fullmatch(r"[\d,]+ \[[\d,]+–[\d,]+\]", stock.capacity), stock.capacity
    assert tuned.capacity_gain == "+36%"  # ranges apart: 1.35–1.65 against 1–1.2; 1.5 against 1.1
    close = searched_again(with_tuned(capacity_gain=1.2, cost_gain=0.6), "django", 0.9, 1.3)
    close = searched_again(close, "django-tuned", 0.8, 1.1)
    assert tuned_view(close)[0].rows[1].capacity_gain == "not significant"  # +20%, but the ranges overlap


def test_each_search_of_a_capacity_reads_its_own_runs():
    data = searched_again(Results.load(BENCH), "django", 1.0)  # the same rates again: only the order tells them apart
    first, second = [c for c in data.capacities if c.target == "django"]
    one, two = probe_runs(data, first), probe_runs(data, second)
    assert len(one) == len(two) == len(first.probes) and all(r is not None for r in one + two)
    assert not {id(r) for r in one} & {id(r) for r in two}
    at = {id(r): i for i, r in enumerate(data.runs)}
    assert all(at[id(a)] < at[id(b)] for a, b in zip(one, two, strict=True))
