"""The chat run, live, as a "Chat" tab of Locust's own web UI (master or single process only).

Locust's documented extension (examples/extend_web_ui.py) adds a tab through the web UI's
`extended_tabs` template argument, but renders it only as a table of strings, so the tab's
content is drawn by live_tab.js, which the index page loads: inline SVG charts of deliveries/s,
loss so far by cause, delivery latency p50/p95 and the servers' CPU % and µs per delivery (the
cost the report leads with), and the ledger's totals, polled from
`/chat/stats`. That route answers from the Tally merged from every worker, plus a time series
the master samples once a second while a run is on, and the servers' own drops read from their
`/stats` (the ledger's other figures exist only for rooms that have settled, at their end).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import gevent
from flask import request, send_file

from bench.ledger import credit_drops
from bench.load.tally import Tally, family, percentiles
from bench.stats import diff, read_servers

TAB = {"title": "Chat", "key": "chat"}
SCRIPT = Path(__file__).with_name("live_tab.js")
SCRIPT_URL = "/chat/live_tab.js"
SMOOTH = 3  # samples (seconds) a point's rate and percentiles span: figures come in lumps (each worker's report)
KEEP = 3600  # points: an hour at one a second
STATS_TIMEOUT_S = 1.0


def hosts_of(environment) -> list[str]:
    o = environment.parsed_options
    return [h.strip() for h in (o.chat_hosts or environment.host or "").split(",") if h.strip()]


class Sampler:
    """The master's time series of one run: a point a second while the run is on, and after it as
    long as its figures still change (rooms settle after the stop)."""

    def __init__(self, environment, merged: Callable[[], Tally]) -> None:
        from locust.runners import STATE_RUNNING, STATE_SPAWNING  # here: importing locust monkey-patches

        self.environment, self.merged = environment, merged
        self.active_states = (STATE_RUNNING, STATE_SPAWNING)
        self.points: deque[dict] = deque(maxlen=KEEP)
        self.recent: deque[tuple[float, int, list[int]]] = deque(maxlen=SMOOTH + 1)
        self.started_at = 0.0
        self.baseline: dict | None = None  # the servers' /stats when the run started
        self.drops: dict[str, int] = {}
        self.last_seen: tuple | None = None
        self.reading: dict | None = None  # the servers' last /stats, for their CPU over the next second
        self.cost: dict[str, float | None] = {}  # over the last second: server CPU % and µs per delivery

    def start(self, **_kw) -> None:
        """A new run from the UI: its figures start from zero, like Locust's own."""
        self.merged().take()
        self.points.clear()
        self.recent.clear()
        self.started_at = time.monotonic()
        self.baseline = read_servers(hosts_of(self.environment), timeout=STATS_TIMEOUT_S)
        self.drops, self.last_seen = {}, None
        self.reading, self.cost = self.baseline, {}

    def run_forever(self) -> None:
        while True:
            gevent.sleep(1.0)
            if self.started_at:
                self.sample()

    def sample(self) -> None:
        tally = self.merged()
        c = tally.counters
        self.read_drops()
        seen = (c["client_received"], c["client_sent"], sum(c.values()), tuple(self.drops.items()))
        running = self.environment.runner.state in self.active_states
        if not running and seen == self.last_seen:
            return
        self.last_seen = seen
        now = time.monotonic()
        self.recent.append((now, c["client_received"], tally.histograms["latency"].counts[:]))
        then, received_then, counts_then = self.recent[0]
        p50, p95 = interval_percentiles(tally.histograms["latency"], counts_then)
        self.points.append({
            "t": round(now - self.started_at, 1),
            "deliveries_per_s": round((c["client_received"] - received_then) / (now - then), 1) if now > then else 0.0,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "lost": losses(c, self.drops, self.environment.parsed_options.chat_room_size),
            **self.cost,
        })

    def read_drops(self) -> None:
        if self.baseline is None:
            return
        now = read_servers(hosts_of(self.environment), timeout=STATS_TIMEOUT_S)
        if now is not None:  # a server that stopped answering keeps the last figures
            self.drops = {k: n for k, n in diff(now, self.baseline)["drops"].items() if n}
            if self.reading is not None:
                self.cost = server_cost(self.reading, now)
            self.reading = now


def server_cost(before: dict, after: dict) -> dict[str, float | None]:
    """The servers' CPU between two /stats readings, timed by their own clock (`read_at`): % of one core
    (several processes add up), and µs per delivery (None when nothing was delivered)."""
    cpu, span = after["cpu_seconds"] - before["cpu_seconds"], after["read_at"] - before["read_at"]
    deliveries = after["deliveries"] - before["deliveries"]
    return {"server_cpu_pct": round(100 * cpu / span, 1) if span > 0 else None,
            "server_us_per_delivery": round(1e6 * cpu / deliveries, 1) if deliveries > 0 else None}


def interval_percentiles(hist, counts_then: list[int], ps=(50, 95)) -> list[float | None]:
    """Percentiles (ms) of what `hist` recorded since its counts were `counts_then`, the way
    HdrHistogram's get_value_at_percentile reads its own counts."""
    since = [now - then for now, then in zip(hist.counts[:], counts_then, strict=False)]
    total = sum(since)
    if not total:
        return [None] * len(ps)
    wanted = [max(1, int(p * total / 100 + 0.5)) for p in ps]
    found: list[float | None] = []
    running = 0
    for index, n in enumerate(since):
        running += n
        while len(found) < len(wanted) and running >= wanted[len(found)]:
            found.append(hist.get_highest_equivalent_value(hist.get_value_from_index(index)) / 1000)
        if len(found) == len(wanted):
            break
    return found


def losses(c, drops: dict[str, int], room_size: int) -> dict[str, int]:
    """Loss so far by cause: what the servers say they dropped, live, and from the rooms that
    settled, what was owed across a close (by code), to a member that left before it arrived, or
    to one still connected, beyond those drops (in flight or unexplained). The drops explain what
    they can as in bench/ledger.py's credit_drops, which the final ledger splits exactly with."""
    counted = {cause: n * (room_size if cause == "redis_unavailable" else 1)  # per message, for the room
               for cause, n in sorted(drops.items()) if cause != "send_failed"}  # its loss is with the close
    out = {f"dropped by server: {cause}": n for cause, n in counted.items()}
    out |= {f"sender closed {code}": n for code, n in family(c, "lost_sender_closed").items()}
    out |= {f"recipient closed {code}": n for code, n in family(c, "lost_recipient_closed").items()}
    _, open_left, left_without, skipped = credit_drops(counted, 1, c["missing_open"], c["lost_recipient_left"],
                                                       c["left_skipped"])
    rest = {"left before it arrived": left_without, "skipped, then left: unexplained": skipped,
            "connection open: in flight or unexplained": open_left}
    return out | {label: n for label, n in rest.items() if n > 0}


def summary(tally: Tally, sampler: Sampler, environment) -> dict:
    c = tally.counters
    o = environment.parsed_options
    last = sampler.points[-1] if sampler.points else {}
    return {
        "state": environment.runner.state,
        "target": getattr(o, "chat_target", ""),  # only when the locustfile was given targets
        "hosts": hosts_of(environment),
        "room_size": o.chat_room_size,
        "users": environment.runner.user_count,
        "sent": c["client_sent"],
        "received": c["client_received"],
        "deliveries_per_s": last.get("deliveries_per_s", 0.0),
        "server_cpu_pct": last.get("server_cpu_pct"),
        "server_us_per_delivery": last.get("server_us_per_delivery"),
        "ledger": {
            "expected": c["expected"],
            "delivered": c["delivered"],
            "missing": c["expected"] - c["delivered"],
            "missing with the connection open": c["missing_open"],
        },
        "lost": losses(c, sampler.drops, o.chat_room_size),
        "closes": {str(code): n for code, n in family(c, "closed").items()},
        "connect_failed": c["connect_failed"],
        "latency_ms": {"delivery": percentiles(tally.histograms["latency"]),
                       "round trip": percentiles(tally.histograms["rtt"])},
        "series": list(sampler.points),
    }


def install_live_view(environment, merged: Callable[[], Tally], targets: dict[str, list[str]]) -> None:
    """The Chat tab, its script and `/chat/stats`, on the web UI; `targets` (name -> base URLs) lets
    the form's Host follow the target chosen."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.template_args["extended_tabs"] = [TAB]
    web_ui.template_args["chat_targets"] = targets
    sampler = Sampler(environment, merged)
    environment.events.test_start.add_listener(sampler.start)
    gevent.spawn(sampler.run_forever)
    app = web_ui.app

    @app.after_request
    def load_tab_script(response):
        if request.endpoint == "locust.index" and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", f'<script src="{SCRIPT_URL}"></script></body>', 1))
        return response

    @app.route(SCRIPT_URL)
    def tab_script():
        return send_file(SCRIPT, mimetype="text/javascript", max_age=0)

    @app.route("/chat/stats")
    def chat_stats():
        return summary(merged(), sampler, environment)
