"""The report's "Hostile clients" section: the figures bench/run/hostile.py recorded, per target stock and
hardened side by side, and what the hardening costs per delivery."""

from __future__ import annotations

from html import escape
from pathlib import Path

from bench.record import HardeningCost, Hostile, Results
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
    data = Results.load(SAMPLE).to_json()
    data["hostile"] = {"fastapi": FASTAPI, "django": {"idle_s": 45.0, "capped_at_s": 45.0,
                                                      "non_reader": {"error": "ConnectionError: the server died"}}}
    data = Results.from_json(data)
    assert data.hostile["fastapi"] == Hostile(hardened=FASTAPI)
    section = section_of(write_report(data, tmp_path)["html"].read_text())
    assert "66.5 MiB" in section and "216 KiB" in section and "backlog_bytes 189" in section
    assert "3.1 s (2,000× 101)" in section and "closed 1008" in section and "40 s" in section
    assert escape("≥ 45 s (still open at the cap)") in section, "a figure that reached its cap says so"
    assert "not measured: ConnectionError: the server died" in section


def test_stock_and_hardened_side_by_side_with_what_the_hardening_costs(tmp_path):
    data = Results.load(SAMPLE)
    stock = {**FASTAPI, "idle_s": 10.0, "capped_at_s": 10.0, "non_reader": {"died": "MemoryError"},
             "server_errors": {"RuntimeError": 2},
             "fragments": {**FASTAPI["fragments"], "bystander_worst_rtt_s": 1.78, "close_code": None}}
    data.hostile = {
        "fastapi": Hostile(stock=stock, hardened={**FASTAPI, "idle_s": 2.0, "capped_at_s": 10.0},
                           settings={"CHAT_KEEPALIVE": "2"},
                           cost=HardeningCost(scenario="steady, 100 members sending 1/s each", stock_us=[40.0, 44.0],
                                              hardened_us=[52.0, 50.0], steal_pct=[3.0, 12.0])),
        "django": Hostile(stock={"idle_s": 10.0, "capped_at_s": 10.0}, hardened={"idle_s": 2.1, "capped_at_s": 10.0},
                          cost=HardeningCost(stock_us=[90.0, 99.0], hardened_us=[95.0, 92.0])),
        "reference": Hostile(stock={"idle_s": 10.0, "capped_at_s": 10.0}),
    }
    section = section_of(write_report(data, tmp_path)["html"].read_text())
    rows = section.split("<tr><td>")[1:]
    row = lambda figure: next(r for r in rows if r.startswith(figure))  # noqa: E731
    idle = row("an idle TCP connection lives")
    # django stock | hardened, reference stock | — (no limits of ours), fastapi stock | hardened
    assert idle.count("<td>") == 6 and idle.index(escape("≥ 10 s")) < idle.index("2.1 s") < idle.index("2 s<")
    assert "died (MemoryError)" in row("server memory for one member that never reads (owed 256 MiB)")
    assert "1.78 s, not closed, RSS +964 KiB" in row("one message as 1,000,000 one-byte fragments")
    assert "RuntimeError ×2" in row("exceptions the server logged") and "none" in row("exceptions the server logged")
    cost = row("… what the limits cost")
    assert "+9.0 µs (+21%)" in cost and "steal up to 12%" in cost, "hardened 51 against stock 42 µs, beyond the ranges"
    assert "not significant (ranges overlap)" in cost, "django: 93.5 against 94.5 µs, within the runs' ranges"
    assert "CHAT_KEEPALIVE=2" in section and "steady, 100 members sending 1/s each" in section
    md = (tmp_path / "report.md").read_text()
    assert "| an idle TCP connection lives | ≥ 10 s (still open at the cap) → 2.1 s | ≥ 10 s (still open at the cap) " \
           "(stock) | ≥ 10 s (still open at the cap) → 2 s |" in md, "the Markdown summary: stock → hardened"


def test_without_hostile_figures_it_says_how_to_measure_them(tmp_path):
    section = section_of(write_report(Results.load(SAMPLE), tmp_path)["html"].read_text())
    assert "Not measured in this run" in section and "make bench-full" in section
