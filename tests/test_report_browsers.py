"""The report's "As browsers connect": a stack's plain target beside the same server met as browsers meet it (its
record's `base`), what the server agreed to, and each figure with its change against the plain one. The browser
target's figures are the plain ones, changed here."""

from __future__ import annotations

from pathlib import Path

from bench.record import Reconnect, Results
from bench.report import write_report
from bench.report.answer import answer
from bench.report.browsers import browsers_view, reconnect_view

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"
UVICORN_DEFLATE = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"


def with_browser(stock: str, agreed: str, cost_gain: float, wire: float) -> Results:
    """The bench's results, plus `stock`-browser: its steady, idle and ramp runs and its capacity, each delivery
    costing `cost_gain` times as much and taking `wire` bytes, every member told `agreed`."""
    data = Results.load(BENCH)
    name = f"{stock}-browser"
    for run in [r for r in data.runs if r.target == stock and r.scenario in ("steady", "idle", "ramp")]:
        copy = run.model_copy(deep=True)
        copy.target, copy.negotiated, copy.wire_bytes_per_delivery = name, {agreed: copy.params.users}, wire
        if copy.server.cpu_us_per_delivery:
            copy.server.cpu_us_per_delivery *= cost_gain
        data.runs.append(copy)
    cap = next(c for c in data.capacities if c.target == stock).model_copy(deep=True, update={"target": name})
    data.capacities.append(cap)
    data.targets[name] = data.targets[stock].model_copy(deep=True, update={"browser": True, "tls": True,
                                                                           "base": stock})
    return data


def test_a_browser_target_reads_against_its_plain_target_with_what_the_server_agreed(tmp_path):
    data = with_browser("fastapi", UVICORN_DEFLATE, cost_gain=1.9, wire=68.1)
    (table,) = browsers_view(data)
    plain, browser = table.rows
    assert (table.stock, plain.target, browser.target) == ("fastapi", "fastapi", "fastapi-browser")
    assert (plain.connects, browser.connects) == ("ws://", "wss://, deflate offered")
    assert (plain.agreed, browser.agreed) == ("—", "deflate, 12-bit windows")
    assert browser.cost.endswith("(+90%)") and browser.wire == "68.1" and browser.capacity.endswith("(n.s.)")
    assert plain.rss != "—" and plain.handshake_cpu != "—", "the idle run gives a connection's memory and CPU"
    words = {q.asks: " ".join("".join(t for t, _ in s) for s in q.sentences) for q in answer(data).questions}
    assert "fastapi-browser carries" in words["And as browsers connect?"], words
    assert "100% of fastapi's" in words["And as browsers connect?"] and "agreed: deflate, 12-bit windows" in \
        words["And as browsers connect?"]
    html = write_report(data, tmp_path)["html"].read_text()
    start = html.index('<section id="browsers">')
    section = html[start:html.index("</section>", start)]
    assert "fastapi-browser" in section and "(+90%)" in section and "deflate, 12-bit windows" in section


def test_a_server_that_declines_says_so_and_a_run_without_browser_targets_says_how_to_run_them(tmp_path):
    (table,) = browsers_view(with_browser("django", "none", cost_gain=1.02, wire=154.5))
    assert table.rows[1].agreed == "declined" and table.rows[1].cost.endswith("(n.s.)")
    html = write_report(Results.load(BENCH), tmp_path)["html"].read_text()
    assert "No target met as browsers meet it in this run: <code>make bench</code> runs" in html


def test_a_reconnect_storm_reads_as_how_long_until_every_member_was_back_and_where_each_message_went(tmp_path):
    data = Results.load(BENCH)
    data.reconnects = [
        Reconnect(target="django", policy="immediate", members=1000, capped_at_s=60, restart_s=0.8, first_back_s=1.1,
                  back_s=4.0, back=1000, failures={"refused (nothing listening)": 883, "503": 383}, server_cpu_s=4.0,
                  server_cpu_peak_pct=116, server_rss_peak_bytes=105 << 20, sent=2117, echoed=1372,
                  lost_with_server=745),
        Reconnect(target="fastapi", policy="backoff", members=1000, capped_at_s=60, restart_s=0.7, first_back_s=0.4,
                  back=990, failures={"refused (nothing listening)": 1243}, sent=10, echoed=10)]
    late, short = reconnect_view(data)
    assert (late.first, late.back, late.policy) == ("1.1 s", "4 s", "immediate retry")
    assert late.failures == "883 refused (nothing listening), 383× 503"
    assert late.ledger == "2,117 sent: 1,372 relayed, 745 lost with the killed server, 0 unexplained"
    assert short.back == "990 of 1,000 in 60 s" and "full jitter" in short.policy
    html = write_report(data, tmp_path)["html"].read_text()
    assert "Reconnect storms" in html and "745 lost with the killed server" in html
