"""The servers' `/stats` arithmetic (CONTRACT.md), shared by the orchestrator and the Locust side:
read several processes as one, take the difference of two readings, wait until they go quiet."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from collections import Counter
from collections.abc import Callable

COUNTERS = ("messages_in", "bytes_in", "deliveries", "bytes_out", "cpu_seconds")
GAUGES = ("backlog", "rss_bytes")


def sum_stats(snapshots: list[dict]) -> dict:
    """Several processes' /stats as one: counters and gauges added, drops and close codes by key, and
    the app mode's numbers (CONTRACT.md `app`) added at every depth."""
    total: Counter = Counter()
    drops: Counter = Counter()
    closes: Counter = Counter()
    app: dict = {}
    for s in snapshots:
        for key in COUNTERS + GAUGES:
            total[key] += s[key]
        total["connections_open"] += s["connections"]["open"]
        drops.update(s["drops"])
        closes.update(s["close_codes"])
        app = _add(app, s.get("app") or {})
    # when their counters were read (each server's own clock, the moment it read its CPU): one instant for all
    read_at = sum(s["read_at"] for s in snapshots) / len(snapshots) if snapshots else 0.0
    return {**total, "drops": dict(drops), "close_codes": dict(closes), "app": app, "read_at": read_at}


def _add(a: dict, b: dict) -> dict:
    """Numbers added key by key, nested dicts likewise; anything else (a name) kept from the first."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict):
            out[k] = _add(a.get(k) or {}, v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = a.get(k, 0) + v
        else:
            out.setdefault(k, v)
    return out


def _sub(a: dict, b: dict) -> dict:
    return {k: _sub(v, b.get(k) or {}) if isinstance(v, dict)
            else v - b.get(k, 0) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in a.items()}


def read_servers(base_urls: list[str], timeout: float = 5.0, context: ssl.SSLContext | None = None) -> dict | None:
    """Every server's /stats summed and stamped with when it was read; None if one cannot be read
    (it died). `context`: what https:// servers are trusted with (the run's CA)."""
    at_ns = time.time_ns()
    try:
        snapshots = []
        for url in base_urls:
            with urllib.request.urlopen(url + "/stats", timeout=timeout, context=context) as r:
                snapshots.append(json.load(r))
    except (OSError, ValueError):
        return None
    return {**sum_stats(snapshots), "at_ns": at_ns}


def progress(stats: dict) -> tuple:
    """What changes while servers still work through messages: read, delivered, dropped, closed."""
    return (stats["messages_in"], stats["deliveries"], sum(stats["drops"].values()),
            sum(stats["close_codes"].values()))


def diff(after: dict, before: dict) -> dict:
    """What happened between two summed readings: counters subtracted, the backlog gauge as left."""
    d = {k: after[k] - before[k] for k in COUNTERS}
    d["drops"] = {k: v - before["drops"].get(k, 0) for k, v in after["drops"].items()}
    d["close_codes"] = {k: v - before["close_codes"].get(k, 0) for k, v in after["close_codes"].items()
                        if v - before["close_codes"].get(k, 0)}
    d["backlog"] = max(0, after["backlog"] - before["backlog"])  # a gauge: only what this run left
    d["app"] = _sub(after.get("app") or {}, before.get("app") or {})
    for gauge in ("db_connections_open", "storing", "workers"):  # as the run left them, not a difference
        if gauge in d["app"]:
            d["app"][gauge] = after["app"][gauge]
    if "max" in d["app"].get("loop_lag", {}):  # the worst since the server started: kept, not subtracted
        d["app"]["loop_lag"]["max"] = after["app"]["loop_lag"]["max"]
    return d


def wait_quiet(read: Callable[[], dict | None], *, timeout: float, quiet_s: float,
               done: Callable[[dict], bool] = lambda stats: False, poll_s: float = 0.1,
               sleep: Callable[[float], object] = time.sleep) -> tuple[dict | None, bool]:
    """Poll `read()` until the servers have finished with what they were sent: their `progress`
    did not change for `quiet_s`, or `done` holds on a reading that did not change. Returns the
    last reading and whether they finished within `timeout` (False too if one became unreadable)."""
    last = read()
    if last is None:
        return None, False
    seen, changed = progress(last), time.monotonic()
    deadline = changed + timeout
    while time.monotonic() < deadline:
        sleep(poll_s)
        now = read()
        if now is None:
            return last, False
        last = now
        if progress(now) != seen:
            seen, changed = progress(now), time.monotonic()
        elif done(now) or time.monotonic() - changed >= quiet_s:
            return last, True
    return last, False
