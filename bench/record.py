"""The run record: what the orchestrator writes and the report reads (results.json)."""

from __future__ import annotations

from bench.targets import TARGETS

NOISY_PCT = 10.0  # steal, or other processes on the servers' CPUs, above this flags a run as noisy
TARGET_ORDER = list(TARGETS)  # every report lists targets in this order


def within_slo(run: dict, slo_p95_ms: float) -> bool:
    """The capacity rule (websocket-shootout's), one for the runner's ramp and the report: the run
    finished, its round-trip p95 is at most the SLO, and it lost nothing."""
    p95 = (run.get("rtt_ms") or {}).get("p95")
    loss = (run.get("ledger") or {}).get("loss_pct") or 0.0
    return run.get("status") == "ok" and p95 is not None and p95 <= slo_p95_ms and loss <= 0
