"""The app mode's scenarios at the smallest scale, through the real pipeline on each backend: signed-in
members chat, each message is stored before it is sent, members rejoin asking for history, and a
storm of members signs in. The ledger closes exactly, the rows the servers stored are the messages
they read, the per-stage times fit inside the time spent storing, and the intruders are kept out."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import ROOT
from bench.record import Results

pytestmark = pytest.mark.server

TINY = """
[defaults]
kind = "text"
size = 128
rate = 2.0
warmup = 0.5
window = 2.0
drain = 1.5
repeats = 1

[scenario.stored]
about = "stored chat"
room_size = 3
users = 6

[scenario.signin]
about = "a small sign-in storm"
room_size = 10
users = 60
rate = 0.5

[scenario.history]
about = "rejoining with history"
room_size = 4
users = 8
churn = 1
churn_stay = 0.5
history = 20

[suite]
app = ["stored", "signin", "history"]
"""


@pytest.fixture(scope="module", params=["django-app-sqlite", "fastapi-app-sqlite"])
def results(request, tmp_path_factory) -> Results:
    out = tmp_path_factory.mktemp(request.param)
    (out / "tiny.toml").write_text(TINY)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--no-harness", "--targets", request.param,
         "--scenario-file", str(out / "tiny.toml"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Results.load(out / "results.json")


@pytest.mark.parametrize("scenario", ["stored", "signin", "history"])
def test_the_ledger_closes_and_every_message_read_was_stored(results, scenario):
    (run,) = results.runs_of(scenario)
    ledger, server = run.ledger, run.server.delta
    assert run.ok, run.failure
    assert ledger.unexplained == 0 and ledger.delivered == ledger.expected > 0, ledger
    assert server.app["messages_stored"] == server.messages_in > 0, (server.messages_in, server.app)
    assert server.app["store_failures"] == 0 and server.app["storing"] == 0, server.app
    assert run.membership.connect_failed == 0 and not run.handshakes_refused
    assert run.connect_ms.count >= run.params.users, run.connect_ms


@pytest.mark.parametrize("scenario", ["stored", "signin", "history"])
def test_each_stored_message_is_timed_in_each_stage_within_the_time_spent_storing(results, scenario):
    (run,) = results.runs_of(scenario)
    app = run.server.delta.app
    wait, db = app["stages"]["wait"], app["stages"]["db"]
    assert wait["count"] == db["count"] == app["messages_stored"], app
    assert 0 < wait["seconds"] + db["seconds"] <= app["store_seconds"], app
    assert app["workers"] >= 1 and app["wait_for"]


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
    assert results.runs[0].evidence.database["engine"] == "sqlite"
