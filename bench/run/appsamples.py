"""What an app target's run measures beside CPU (bench/run/runner.py): the handshakes its servers accepted,
sampled (a sign-in storm's pace), and on PostgreSQL the database's connections, sampled by state, and the
statements it ran (pg_stat_statements), by kind."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bench.record import DbConnections, Handshakes, Statements
from bench.run.database import Database
from bench.run.serverproc import Server, http_get


def app_probes(servers: Sequence[Server], database: Database | None) -> dict:
    """What the sampler reads beside CPU for an app target: the handshakes its servers accepted so far (a
    sign-in storm's pace), and on PostgreSQL its connections by state (the probe's own query is in the
    database's CPU: a few per second, negligible)."""
    if database is None:
        return {}

    def accepted() -> int | None:
        try:
            return sum(json.loads(http_get(s.base_url + "/stats", timeout=0.25))["connections"]["total"]
                       for s in servers)
        except (OSError, ValueError):
            return None  # busy past the timeout (the sampler must keep its pace): a gap, not a figure

    activity = database.activity()
    return {"handshakes": accepted, **({"db_connections": activity} if activity else {})}


def statements_delta(before: dict[str, list[float]], after: dict[str, list[float]] | None) -> dict | None:
    """The statements the database ran during the run, by kind."""
    if after is None:
        return None
    ran = {}
    for kind, (calls, ms) in after.items():
        calls_before, ms_before = before.get(kind, (0, 0.0))
        if calls > calls_before:
            ran[kind] = Statements(calls=int(calls - calls_before), ms=round(ms - ms_before, 3))
    return ran


def handshake_rate(samples: list[dict]) -> Handshakes | None:
    """Handshakes the servers accepted over the run, and within how long: from the last sample before any new
    TCP connection to the first with every handshake counted (rounded out: at least this fast)."""
    read = [(s["t"], s["handshakes"]) for s in samples if s.get("handshakes") is not None]
    if len(read) < 2:
        return None
    first, last = read[0][1], read[-1][1]
    if last <= first:  # none, or a server restarted mid-run (its count starts again)
        return Handshakes() if last == first else None
    end = min(t for t, n in read if n == last)
    idle = samples[0]["server_sockets"]
    start = max(s["t"] for s in samples if s["t"] <= end and s["server_sockets"] <= idle)
    return Handshakes(accepted=last - first, within_s=round(end - start, 2))


def db_connections(samples: list[dict], before: int | None, after: dict[str, int] | None) -> DbConnections:
    """Connections to the chat database before, during (sampled) and after the run, by state."""
    seen = [(s["t"], s["db_connections"]) for s in samples if s.get("db_connections") is not None]
    after_count = sum(after.values()) if after is not None else None
    counts = [sum(states.values()) for _, states in seen] + [n for n in (before, after_count) if n is not None]
    return DbConnections(
        before=before, after=after_count, after_states=after or {}, peak=max(counts, default=None),
        peak_active=max((states.get("active", 0) for _, states in seen), default=None),
        timeline=[[t, sum(states.values()), states.get("active", 0)] for t, states in seen])
