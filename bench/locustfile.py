"""Locust entry point: the chat user, its options, and the merge of every worker's measurements.

    locust -f bench/locustfile.py --host http://127.0.0.1:8000 --chat-room-size 10 ...

With CHAT_TARGETS (JSON: target name -> its servers' base URLs; `make ui` sets it) the options
offer --chat-target, a dropdown in the web UI, and the chosen target's servers are the hosts the
members connect to, whatever Host says. Workers send their measurements as deltas with each
report to the master; the master (or a single local process) writes the merged result to
--chat-results when the run ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from bench.load.chatuser import TALLY, ChatMember  # noqa: F401  (Locust finds the user class here)
from bench.load.live import install_live_view
from bench.load.tally import Tally
from bench.scenarios import SLOW_READ_RATE

MERGED = Tally()
REPORTED: set[str] = set()
TARGET_URLS: dict[str, list[str]] = json.loads(os.environ.get("CHAT_TARGETS") or "{}")


@events.init_command_line_parser.add_listener
def chat_options(parser) -> None:
    if TARGET_URLS:
        parser.add_argument("--chat-target", choices=list(TARGET_URLS), default=next(iter(TARGET_URLS)),
                            env_var="CHAT_TARGET",
                            help="the running target the members chat with; the Host field is not used")
    parser.add_argument("--chat-room-size", type=int, default=10, env_var="CHAT_ROOM_SIZE",
                       help="members per room (the sender is one of them)")
    parser.add_argument("--chat-rate", type=float, default=1.0, env_var="CHAT_RATE",
                       help="messages per second each member sends")
    parser.add_argument("--chat-size", type=int, default=128, env_var="CHAT_SIZE",
                       help="bytes per message (at least the 33-byte header)")
    parser.add_argument("--chat-kind", choices=["text", "binary"], default="text", env_var="CHAT_KIND",
                       help="frame type of every message")
    parser.add_argument("--chat-burst", type=int, default=0, env_var="CHAT_BURST",
                        help="messages each member sends back-to-back per burst: as soon as its room is full, or "
                             "mid-session with --chat-burst-every")
    parser.add_argument("--chat-burst-every", type=float, default=0.0, env_var="CHAT_BURST_EVERY",
                        help="> 0: the bursts come mid-session instead, from the window's start, every this many s")
    parser.add_argument("--chat-nonreading", type=int, default=0, env_var="CHAT_NONREADING",
                        help="members per room that never read and never send (slow consumers)")
    parser.add_argument("--chat-slow-readers", type=int, default=0, env_var="CHAT_SLOW_READERS",
                        help="members per room that read slowly (--chat-read-rate) and never send")
    parser.add_argument("--chat-read-rate", type=int, default=SLOW_READ_RATE, env_var="CHAT_READ_RATE",
                        help="bytes per second a slow reader reads")
    parser.add_argument("--chat-churn", type=int, default=0, env_var="CHAT_CHURN",
                        help="members per room that leave and join again as new members until the window ends")
    parser.add_argument("--chat-churn-stay", type=float, default=1.0, env_var="CHAT_CHURN_STAY",
                        help="seconds each churning member's connection stays before it leaves")
    parser.add_argument("--chat-sessions", default="", env_var="CHAT_SESSIONS",
                        help="app mode: a JSON file of Django sessions (python manage.py create_bench_users N "
                             "--output FILE); each member signs in with the next one")
    parser.add_argument("--chat-history", type=int, default=0, env_var="CHAT_HISTORY",
                        help="app mode: each member asks for the room's last N stored messages as it joins")
    parser.add_argument("--chat-warmup", type=float, default=2.0, env_var="CHAT_WARMUP",
                       help="seconds a room chats before its measurement window opens")
    parser.add_argument("--chat-window", type=float, default=3600.0, env_var="CHAT_WINDOW",
                       help="seconds of the measurement window")
    parser.add_argument("--chat-drain", type=float, default=3.0, env_var="CHAT_DRAIN",
                       help="seconds to wait for messages still on their way after the window")
    parser.add_argument("--chat-hosts", default="", env_var="CHAT_HOSTS", include_in_web_ui=not TARGET_URLS,
                       help="comma-separated base URLs of every server process (default: --host)")
    parser.add_argument("--chat-room-prefix", default="bench-", env_var="CHAT_ROOM_PREFIX",
                       help="prefix of the room names this run creates")
    parser.add_argument("--chat-browser", type=lambda s: s.lower() in ("1", "true", "yes"), default=False,
                        env_var="CHAT_BROWSER",
                        help="members offer permessage-deflate as Chromium does, and compress what they send if "
                             "the server agrees (CONTRACT.md \"As browsers connect\")")
    parser.add_argument("--chat-ca", default="", env_var="CHAT_CA", include_in_web_ui=False,
                        help="wss:// servers (https:// hosts): the CA certificate (PEM) to trust, and only it")
    parser.add_argument("--chat-locust-events", type=lambda s: s.lower() in ("1", "true", "yes"),
                       default=True, env_var="CHAT_LOCUST_EVENTS",
                       help="also report each round trip to Locust's own statistics (costs client CPU)")
    parser.add_argument("--chat-results", default="", env_var="CHAT_RESULTS", include_in_web_ui=False,
                       help="where the master writes the merged measurements (JSON)")


@events.init.add_listener
def on_init(environment, **_kw) -> None:
    if environment.web_ui is not None:
        environment.web_ui.app.json.sort_keys = False  # the form lists the chat options in this file's order
    if not isinstance(environment.runner, WorkerRunner):
        install_live_view(environment, merged, TARGET_URLS)


@events.test_start.add_listener
def aim(environment, **_kw) -> None:
    """The chosen target's servers are the run's hosts (set before Locust hands the options and Host
    to its users and workers)."""
    if TARGET_URLS and not isinstance(environment.runner, WorkerRunner):
        urls = TARGET_URLS[environment.parsed_options.chat_target]
        environment.parsed_options.chat_hosts = ",".join(urls)
        environment.host = urls[0]


def merged() -> Tally:
    """Everything measured so far, as the master (or the only process) sees it."""
    MERGED.merge(TALLY.take())  # a local run measures into TALLY directly
    return MERGED


@events.report_to_master.add_listener
def ship(client_id, data, **_kw) -> None:
    data["chat"] = TALLY.take()


@events.worker_report.add_listener
def receive(client_id, data, **_kw) -> None:
    if "chat" in data:
        REPORTED.add(client_id)  # Locust's worker ids name their host: which machines generated the load
        MERGED.merge(data["chat"])


@events.quitting.add_listener
def write_results(environment, **_kw) -> None:
    path = environment.parsed_options.chat_results
    if isinstance(environment.runner, LocalRunner):
        # on SIGTERM Locust fires `quitting` before it stops the users: stop them first, so every
        # member runs on_stop and its room settles into the ledger before the results are written
        environment.runner.stop()
    if path and not isinstance(environment.runner, WorkerRunner):
        result = merged()
        workers = environment.runner.worker_count if isinstance(environment.runner, MasterRunner) else 0
        Path(path).write_text(json.dumps({**result.take(), "workers": workers, "worker_ids": sorted(REPORTED)}))
