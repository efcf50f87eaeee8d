"""The report's "Hostile clients" section: the figures bench/run/hostile.py recorded, per target stock and
hardened side by side, and what the hardening costs per delivery."""

from __future__ import annotations

from html import escape
from pathlib import Path

from bench.record import HardeningCost, Hostile, HostileSizes, Results
from bench.report import write_report

SAMPLE = Path(__file__).parent / "data" / "sample_results.json"
# measured by `python -m bench --targets fastapi --scenarios smoke --hostile` (bench/run/hostile.py)
FASTAPI = {'non_reader': {'owed_bytes': 268435456,
                'rss_growth_bytes': 69697536,
                'reached_reader': 256,
                'seconds': 2.3,
                'dropped': {'backlog_bytes': 189},
                'rss_after_leaving_bytes': 221184,
                'zero_window_s': 40.0,
                'closed_meanwhile': {'1005': 1},
                'senders_close_code': None},
 'idle_s': 10.0,
 'partial_s': 10.1,
 'fragments': {'frames': 1000000,
               'bystander_worst_rtt_s': 0.0,
               'rss_peak_growth_bytes': 987136,
               'close_code': 1008},
 'storm': {'connections': 2000, 'seconds': 3.1, 'answers': {'101': 2000}},
 'fds_per_idle': 1.0,
 'capped_at_s': 45.0}


def section_of(html: str) -> str:
    return html[html.index('id="hostile"'):html.index("</section>", html.index('id="hostile"'))]


def test_an_old_record_reads_as_hardened_alone(tmp_path):
    """Results written before stock was measured beside it: a target's figures were the hardened ones."""
    data = {**Results.load(SAMPLE).to_json(), "format_version": 4}  # upgraded from the format it was written in
    data["hostile"] = {"fastapi": FASTAPI, "django": {"idle_s": 45.0, "capped_at_s": 45.0,
                                                      "non_reader": {"error": "ConnectionError: the server died"}}}
    data = Results.from_json(data)
    assert data.hostile["fastapi"] == Hostile(hardened=FASTAPI, sizes=HostileSizes(
        owed_bytes=256 << 20, frames=1_000_000, storm=2000)), "the sizes, read from the figures they were kept in"
    section = section_of(write_report(data, tmp_path)["html"].read_text())
    assert "66.5 MiB" in section and "216 KiB" in section and "backlog_bytes 189" in section
    assert "3.1 s (2,000× 101)" in section and "closed 1008" in section and "40 s" in section
    assert escape("≥ 45 s (still open at the cap)") in section, "a figure that reached its cap says so"
    assert "not measured: ConnectionError: the server died" in section
    assert "owed 256 MiB" in section and "one message as 1,000,000 one-byte fragments" in section, \
        "an old record's sizes, read from its figures"
    assert "exceptions the server logged" not in section, "never looked for: no row, not \"none\""


def test_stock_and_hardened_side_by_side_with_what_the_hardening_costs(tmp_path):
    data = Results.load(SAMPLE)
    stock = {**FASTAPI, "idle_s": 10.0, "capped_at_s": 10.0, "non_reader": {"died": "MemoryError"},
             "server_errors": {"RuntimeError": 2},
             "fragments": {**FASTAPI["fragments"], "bystander_worst_rtt_s": 1.78, "close_code": None}}
    sizes = {"owed_bytes": 256 * (1 << 20), "frames": 1_000_000, "storm": 2000}
    data.hostile = {
        "fastapi": Hostile(stock=stock, hardened={**FASTAPI, "idle_s": 2.0, "capped_at_s": 10.0, "server_errors": {}},
                           settings={"CHAT_KEEPALIVE": "2"}, sizes=sizes, stock_fd_limit=1024,
                           cost=HardeningCost(scenario="steady, 100 members sending 1/s each", room_size=10,
                                              stock_us=[40.0, 44.0], hardened_us=[52.0, 50.0],
                                              steal_pct=[3.0, None, 12.0, 1.0])),
        "django": Hostile(stock={"idle_s": 10.0, "capped_at_s": 10.0}, hardened={"idle_s": 2.1, "capped_at_s": 10.0},
                          sizes=sizes,
                          cost=HardeningCost(stock_us=[90.0, 99.0], hardened_us=[95.0, 92.0], restarts=1,
                                             error="hardened: Locust exited with 1")),
        "reference": Hostile(stock={"idle_s": 10.0, "capped_at_s": 10.0}, sizes=sizes),
    }
    section = section_of(write_report(data, tmp_path)["html"].read_text())
    idle = row(section, "an idle TCP connection lives")
    # django stock | hardened, reference stock | — (no limits of ours), fastapi stock | hardened
    assert idle.count("<td>") == 6 and idle.index(escape("≥ 10 s")) < idle.index("2.1 s") < idle.index("2 s<")
    assert "died (MemoryError)" in row(section, "server memory for one member that never reads (owed 256 MiB)")
    assert "1.78 s, not closed, RSS +964 KiB" in row(section, "one message as 1,000,000 one-byte fragments")
    errors = row(section, "exceptions the server logged")
    assert "RuntimeError ×2" in errors and "none" in errors, "fastapi hardened: looked, found none"
    cost = row(section, "… what the limits cost")
    assert "+9.0 µs (+21%)" in cost and "steal up to 12%" in cost, "hardened 51 against stock 42 µs, beyond the ranges"
    assert "not significant (ranges overlap)" in cost, "django: 93.5 against 94.5 µs, within the runs' ranges"
    assert "failed: hardened: Locust exited with 1" in cost and "1 server restart" in cost, \
        "a failed run is listed beside the values the others measured"
    assert "CHAT_KEEPALIVE=2" in section and "steady, 100 members sending 1/s each" in section
    assert "in rooms of\n10" in section and "(1,024)" in section, "the cost's room size, stock servers' fd limit"
    md = (tmp_path / "report.md").read_text()
    assert "| an idle TCP connection lives | ≥ 10 s (still open at the cap) → 2.1 s | ≥ 10 s (still open at the cap) " \
           "(stock) | ≥ 10 s (still open at the cap) → 2 s |" in md, "the Markdown summary: stock → hardened"


def row(section: str, figure: str) -> str:
    """The table row of the section whose figure starts with `figure`."""
    return next(r for r in section.split("<tr><td>")[1:] if r.startswith(figure))


def test_without_hostile_figures_it_says_how_to_measure_them(tmp_path):
    section = section_of(write_report(Results.load(SAMPLE), tmp_path)["html"].read_text())
    assert "Not measured in this run" in section and "make bench-full" in section


def test_a_storm_row_says_when_the_last_got_in_and_whether_a_pair_could_chat(tmp_path):
    data = Results.load(SAMPLE)
    sizes = {"owed_bytes": 256 * (1 << 20), "frames": 1_000_000, "storm": 5000}
    stock = {**FASTAPI, "storm": {"connections": 5000, "seconds": 10.4, "answers": {"101": 1, "403": 4642,
                                                                                     "reset": 357},
                                  "last_admitted_s": 0.3, "pair_after_s": 1.0, "rss_growth_bytes": 180 << 20,
                                  "by_second": {0: {"101": 1}, 10: {"403": 4642, "reset": 357}}}}
    hardened = {**FASTAPI, "storm": {"connections": 5000, "seconds": 6.9, "answers": {"101": 5000, "503": 4500},
                                     "retries": True, "last_admitted_s": 6.8, "pair_join_s": 3.2,
                                     "pair_after_s": 1.0, "rss_growth_bytes": 187 << 20, "cpu_s": 9.5,
                                     "by_second": {0: {"503": 4500, "101": 1200}, 3: {"101": 3000},
                                                   6: {"101": 800}}}}
    data.hostile = {"django": Hostile(stock=stock, hardened=hardened, sizes=sizes)}
    section = section_of(write_report(data, tmp_path)["html"].read_text())
    storm = row(section, "5,000 handshakes at once")
    chart = section[section.index('<svg class="chart"'):section.index("</svg>")]
    assert "A storm of 5,000 handshakes: members in, second by second" in chart  # the members in, stock dashed
    assert "django stock" in chart and "django hardened" in chart
    assert chart.count('stroke-dasharray="5 4"') == 1  # stock's line dashed, hardened's solid (svg.line_chart)
    assert "1 of 5,000 admitted in 10.4 s (1× 101, 4,642× 403, 357× reset);" in storm
    assert "a pair trying 1 s in did not get to chat" in storm
    assert ("5,000 of 5,000 admitted in 6.9 s (5,000× 101, 4,500× 503, each member refused 503 trying again after "
            "its Retry-After); the last admitted 6.8 s in; a pair trying 1 s in chatted after 3.2 s; server RSS "
            "+187.0 MiB at its peak; server CPU 9.5 s; second by second: 0–1 s 4,500× 503, 1,200× 101; "
            "3–4 s 3,000× 101; 6–7 s 800× 101") in storm
