"""The app mode's scenarios at the smallest scale, through the real pipeline on each backend: signed-in
members chat, each message is stored before it is sent, members rejoin asking for history, a storm of
members signs in (and again right after the servers restart), and the thread-pool sweep runs. The
ledger closes exactly, the rows the servers stored are the messages they read, the per-stage times fit
inside the time spent storing, the database's connections are sampled through every run, the sweep is
in the report, and the intruders are kept out. On the bench's own PostgreSQL when it is installed (its
connections are what pg_stat_activity shows), else SQLite."""

from __future__ import annotations

import statistics

import pytest

from bench.record import Results
from bench.report import write_report
from bench.report.claims import claims
from bench.report.claims.premise import connections_table
from bench.run.pgctl import counts_statements
from tests.bench_runs import TinyBenches, suite
from tests.postgres import bin_dir, external_url

pytestmark = pytest.mark.server

TINY = """
[defaults]
kind = "text"
size = 128
rate = 2.0
warmup = 0.5
window = 1.0
drain = 1.0
repeats = 1

[scenario.stored]
about = "stored chat"
room_size = 3
users = 6

[scenario.signin]
about = "a small sign-in storm, then again right after a restart"
room_size = 10
users = 60
rate = 0.5
steps = [{ restart = false }, { restart = true }]

[scenario.history]
about = "rejoining with history"
room_size = 4
users = 8
churn = 1
churn_stay = 0.5
history = 20

[scenario.threads]
about = "the thread-pool sweep, shortened"
room_size = 3
users = 6
warmup = 0.3
window = 1.0
drain = 0.5
steps = [{ asgi_threads = 1 }, { asgi_threads = 0 }]

[suite]
app = ["stored", "signin", "history", "threads"]
"""
POSTGRES = bool(bin_dir() or external_url())
SHARED_DATABASE = bool(external_url() and not bin_dir())  # else each run has its own cluster or SQLite file
STATEMENTS = bool(bin_dir() and counts_statements(bin_dir()))  # the bench's own cluster counts them
SCENARIOS = {"stored": 1, "signin": 2, "history": 1}  # runs of each (the sign-in storm: warm, then restarted)


TARGETS = ["django-app", "fastapi-app"] if POSTGRES else ["django-app-sqlite", "fastapi-app-sqlite"]


# no connection storm after the runs (make bench's): tests/test_scenario_kinds.py checks the bench's own
SUITE = suite("app-scenarios", TARGETS, TINY, together=not SHARED_DATABASE, args=("--storm", "0"))


@pytest.fixture(scope="module", params=TARGETS)
def results(request, tiny_benches: TinyBenches) -> Results:
    return tiny_benches.of(SUITE).results(request.param)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_ledger_closes_and_every_message_read_was_stored(results, scenario):
    runs = results.runs_of(scenario)
    assert len(runs) == SCENARIOS[scenario]
    for run in runs:
        ledger, server = run.ledger, run.server.delta
        assert run.ok, run.failure
        assert ledger.unexplained == 0 and ledger.delivered == ledger.expected > 0, ledger
        assert server.app.messages_stored == server.messages_in > 0, (server.messages_in, server.app)
        assert server.app.store_failures == 0 and server.app.storing == 0, server.app
        assert run.membership.connect_failed == 0 and not run.handshakes_refused
        assert run.connect_ms.count >= run.params.users, run.connect_ms
        if STATEMENTS:  # the database's own count: an INSERT per message stored, and its author's foreign-key check
            assert run.db_statements["storing"].calls == 2 * server.app.messages_stored, run.db_statements


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_stored_message_is_timed_in_each_stage_within_the_time_spent_storing(results, scenario):
    for run in results.runs_of(scenario):
        app = run.server.delta.app
        assert app.stages is not None, app
        wait, db = app.stages.wait, app.stages.db
        assert wait.count == db.count == app.messages_stored, app
        assert 0 < wait.seconds + db.seconds <= app.store_seconds, app
        assert app.workers >= 1 and app.wait_for


def test_the_storm_after_a_restart_meets_cold_servers_and_every_member_is_counted_in(results):
    warm, restarted = results.runs_of("signin")
    assert (warm.params.restart, restarted.params.restart) == (False, True) and restarted.cold_start
    for run in (warm, restarted):
        users = run.params.users
        assert run.handshakes.accepted == users, run.handshakes
        assert 0 < run.handshakes.within_s < run.duration_s and run.handshakes.per_s > 0, run.handshakes
        assert run.connect_ms.p50 <= run.connect_ms.p95 <= run.connect_ms.p99 <= run.connect_ms.max
        assert not any(run.server.delta.app.handshakes_refused.values())
    if POSTGRES:  # a restarted server holds no connection until its first member signs in; a warm one kept its own
        assert restarted.db_connections.before == 0 < warm.db_connections.before, \
            (warm.db_connections, restarted.db_connections)
    for run in (warm, restarted) if STATEMENTS else ():  # the session and its user, looked up for every member
        signin = run.db_statements["sign-in"]
        assert signin.calls == 2 * run.handshakes.accepted and signin.ms > 0, run.db_statements


@pytest.mark.skipif(not POSTGRES, reason="pg_stat_activity: PostgreSQL only")
def test_database_connections_are_sampled_through_every_run_and_come_back(results):
    for run in results.runs:
        c = run.db_connections
        assert c is not None and c.timeline, run.scenario
        assert c.peak >= max(c.after, c.before, *(n for _, n, _ in c.timeline)) and c.after > 0, c
        assert all(0 <= active <= n for _, n, active in c.timeline), c.timeline
        assert c.returned and c.after_states.get("idle") == c.after, c  # no connection left busy
        # the interval the report quotes is the one the samples were taken at
        assert abs(statistics.median(s.dt for s in run.samples) - run.sample_interval_s) < 0.1, run.samples
    every = {run.sample_interval_s for run in results.runs}
    assert f"pg_stat_activity, sampled every {every.pop():g} s)" in connections_table(results).caption


def test_the_thread_pool_sweep_runs_on_daphne_alone_and_is_in_the_report(results, tmp_path):
    runs, target = results.runs_of("threads"), results.runs[0].target
    claim = next(c for c in claims(results) if c.number == "0")
    html = write_report(results, tmp_path)["html"].read_text()
    if not target.startswith("django"):  # uvicorn reads no ASGI_THREADS: nothing to sweep
        assert not runs and "ASGI_THREADS" not in claim.why
        return
    assert [r.params.asgi_threads for r in runs] == [1, 0] and all(r.ok and r.cold_start for r in runs)
    assert all(r.server.delta.app.messages_stored == r.server.delta.messages_in > 0 for r in runs)
    table = next(t for t in claim.tables if "ASGI_THREADS" in t.head)
    assert [row[1] for row in table.rows] == ["1", "daphne's default"]
    assert "ASGI_THREADS" in claim.why and "The thread-pool knob (ASGI_THREADS)" in html


def test_members_rejoining_get_their_history_apart_from_the_runs_deliveries(results):
    (run,) = results.runs_of("history")
    assert run.membership.joined_again > 0
    assert run.history_received > 0 and run.history_ms.count >= run.membership.joined_again, \
        (run.history_received, run.history_ms)


def test_the_intruders_are_kept_out_and_the_code_is_measured(results):
    target = results.runs[0].target
    checks = [c for c in results.security if c.target == target]
    assert len(checks) == 5 and all(c.passed for c in checks), checks
    assert {p.stack for p in results.code.parts} == {"Channels", "FastAPI"}
    assert results.targets[target].env["CHAT_APP"] == "full"
    assert results.runs[0].evidence.database.engine == ("postgresql" if POSTGRES else "sqlite")
