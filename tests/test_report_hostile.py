"""The report's "Hostile clients" section: the figures bench/run/hostile.py recorded, a column a target."""

from __future__ import annotations

from html import escape
from pathlib import Path

from bench.record import Results
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


def test_the_section_shows_each_figure_the_run_recorded(tmp_path):
    data = Results.load(SAMPLE)
    data.hostile = {"fastapi": FASTAPI, "django": {"idle_s": 45.0, "capped_at_s": 45.0,
                                                   "non_reader": {"error": "ConnectionError: the server died"}}}
    html = write_report(data, tmp_path)["html"].read_text()
    section = html[html.index('id="hostile"'):html.index("</section>", html.index('id="hostile"'))]
    assert "66.5 MiB" in section and "216 KiB" in section and "backlog_bytes 189" in section
    assert "3.1 s (2,000× 101)" in section and "closed 1008" in section and "40 s" in section
    assert escape("≥ 45 s (still open at the cap)") in section, "a figure that reached its cap says so"
    assert "not measured: ConnectionError: the server died" in section


def test_without_hostile_figures_it_says_how_to_measure_them(tmp_path):
    html = write_report(Results.load(SAMPLE), tmp_path)["html"].read_text()
    section = html[html.index('id="hostile"'):html.index("</section>", html.index('id="hostile"'))]
    assert "Not measured in this run" in section and "make bench-full" in section
